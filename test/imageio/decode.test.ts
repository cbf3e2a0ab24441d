// imageio/decode.ts, the one decode of training, export verification and the runtime: plain JPEGs
// through our libjpeg-turbo addon (imageio/turbojpeg), bit-identical to sharp's decode, everything
// that needs rotation or colour management through sharp; the SSD_JPEG_DECODER switch; errors that
// name the input.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { PictureError, decodePicture, jpegDecoder } from '../../imageio/decode.js';
import { ImageSource } from '../../train/data-loader.js';
import { decodeImage } from '../../runtime/preprocess.js';
import { tempDir } from '../helpers/temp-dir.js';
import { patternRgb } from '../runtime/helpers.js';

const tmp = tempDir('ssd-imageio-');
const raw = (w: number, h: number) => sharp(patternRgb(w, h), { raw: { width: w, height: h, channels: 3 } });
/** Noise: every DCT coefficient busy, where IDCT variants (ISLOW vs IFAST) differ most. */
const noisy = (w: number, h: number) => sharp(Buffer.from(Array.from({ length: w * h * 3 }, (_, i) => (Math.imul(i + 7, 2654435761) >>> 24) & 255)), { raw: { width: w, height: h, channels: 3 } });
const sharpRgb = async (jpeg: Uint8Array) => sharp(jpeg).toColourspace('srgb').raw().toBuffer();

afterEach(() => { delete process.env.SSD_JPEG_DECODER; });

describe('decodePicture', () => {
  it('a plain JPEG goes to libjpeg-turbo and decodes to exactly the pixels sharp gives (baseline, progressive, 4:2:0 and 4:4:4, greyscale, q50-q100)', async () => {
    expect(jpegDecoder()).toEqual({ name: 'libjpeg-turbo' });
    const jpegs = [
      await noisy(97, 61).jpeg({ quality: 90 }).toBuffer(),
      await noisy(97, 61).jpeg({ quality: 50 }).toBuffer(),
      await noisy(97, 61).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer(),
      await noisy(64, 48).jpeg({ progressive: true }).toBuffer(),
      await noisy(64, 48).toColourspace('b-w').jpeg().toBuffer(),
      await raw(64, 48).jpeg({ quality: 75 }).toBuffer(),
    ];
    for (const jpeg of jpegs) {
      const pic = await decodePicture(jpeg);
      expect(pic.decoder).toBe('libjpeg-turbo');
      expect(pic.data.length).toBe(pic.width * pic.height * 3);
      // The same libjpeg-turbo ISLOW IDCT and fancy upsampling as sharp's mozjpeg: which decoder ran
      // changes the speed, never the pixels. (A FASTDCT decoder misses this by up to ~6 levels.)
      expect(Buffer.from(pic.data).equals(await sharpRgb(jpeg))).toBe(true);
    }
  });

  it('a picture over 1 MP decodes on the pool (the async call): the same pixels', async () => {
    const jpeg = await raw(1400, 800).jpeg().toBuffer();
    const pic = await decodePicture(jpeg);
    expect(pic.decoder).toBe('libjpeg-turbo');
    expect(Buffer.from(pic.data).equals(await sharpRgb(jpeg))).toBe(true);
  });

  it('EXIF rotation, an ICC profile, CMYK and PNG go to sharp, upright 8-bit sRGB', async () => {
    const rotated = await decodePicture(await raw(40, 20).jpeg().withMetadata({ orientation: 6 }).toBuffer());
    expect([rotated.decoder, rotated.width, rotated.height]).toEqual(['sharp', 20, 40]);
    const p3Jpeg = await raw(40, 20).jpeg().withIccProfile('p3').toBuffer();
    const p3 = await decodePicture(p3Jpeg);
    expect(p3.decoder).toBe('sharp');
    // Why it must: sharp converts the Display P3 values to sRGB, libjpeg alone would not.
    const uncorrected = createRequire(import.meta.url)('ssd-turbojpeg') as { decodeSync(b: Uint8Array): { data: Buffer } };
    expect(Buffer.from(p3.data).equals(uncorrected.decodeSync(p3Jpeg).data)).toBe(false);
    const cmyk = await decodePicture(await raw(40, 20).toColourspace('cmyk').jpeg().toBuffer());
    expect([cmyk.decoder, cmyk.data.length]).toEqual(['sharp', 40 * 20 * 3]);
    const png = await decodePicture(await raw(40, 20).png().toBuffer());
    expect([png.decoder, png.data.length]).toEqual(['sharp', 40 * 20 * 3]);
    expect(Buffer.from(png.data).equals(Buffer.from(patternRgb(40, 20)))).toBe(true);
  });

  it('SSD_JPEG_DECODER=sharp sends plain JPEGs to sharp; a bad value is one line naming it', async () => {
    const jpeg = await raw(32, 32).jpeg().toBuffer();
    process.env.SSD_JPEG_DECODER = 'sharp';
    expect(jpegDecoder()).toEqual({ name: 'sharp', why: 'SSD_JPEG_DECODER=sharp' });
    const pic = await decodePicture(jpeg);
    expect(pic.decoder).toBe('sharp');
    expect(Buffer.from(pic.data).equals(await sharp(jpeg).raw().toBuffer())).toBe(true);
    process.env.SSD_JPEG_DECODER = 'turbo';
    await expect(decodePicture(jpeg)).rejects.toThrow('SSD_JPEG_DECODER=turbo: expected libjpeg-turbo (the default) or sharp');
  });

  it('a JPEG cut after its header fails in both decoders: a PictureError naming the input, reason apart', async () => {
    const jpeg = await raw(64, 48).jpeg().toBuffer();
    const cut = jpeg.subarray(0, jpeg.length >> 1);
    const err = await decodePicture(cut).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(PictureError);
    expect((err as PictureError).message).toMatch(/^image buffer \(\d+ bytes\): cannot decode \(/);
    expect((err as PictureError).reason).toMatch(/^cannot decode/);
    await expect(decodePicture(join(tmp, 'missing.jpg'))).rejects.toThrow(`image ${join(tmp, 'missing.jpg')}: file not found`);
  });

  it('training, export verification and the runtime decode a file to the same pixels', async () => {
    const path = join(tmp, 'same.jpg');
    writeFileSync(path, await raw(50, 30).jpeg({ quality: 80 }).toBuffer());
    const runtime = await decodeImage(path);
    const train = await new ImageSource().load(path);
    expect(Buffer.from(train!.dataHWC).equals(Buffer.from(runtime.data))).toBe(true);
    expect((await decodePicture(path)).decoder).toBe('libjpeg-turbo');
  });
});
