// export-onnx's verification sees a photo exactly as the runtime does: the same decode (EXIF
// orientation applied) and the core's one resize, not a sharp resize of its own.
import sharp from 'sharp';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeModelInput } from '../../core/preprocess.js';
import { loadImageRGB } from '../../export/verify.js';
import { decodeImage } from '../../runtime/preprocess.js';
import { tempDir } from '../helpers/temp-dir.js';
import { tiny } from './helpers.js';

describe('verify --image preprocessing', () => {
  it('equals the runtime decode + core warp, EXIF rotation included', async () => {
    const spec = tiny();
    const W = 157, H = 83;
    const px = new Uint8Array(W * H * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 37 + (i % 3) * 91) % 256;
    const path = join(tempDir('ssd-verify-pre-'), 'rotated.jpg');
    await sharp(px, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(path);
    const got = await loadImageRGB(path, spec);
    const frame = await decodeImage(path);
    expect([frame.width, frame.height]).toEqual([H, W]);
    const want = new Uint8Array(spec.inputSize * spec.inputSize * 3);
    writeModelInput(frame, { layout: 'uint8-nhwc', inputSize: spec.inputSize, input: spec.input }, 'warp', want, 0);
    expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
  });

  it('an unreadable file is one line naming it', async () => {
    await expect(loadImageRGB('/nonexistent/x.jpg', tiny())).rejects.toThrow(/--image \/nonexistent\/x\.jpg: cannot read it as an image/);
  });
});
