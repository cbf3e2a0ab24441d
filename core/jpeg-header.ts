/**
 * What a JPEG file's header says about decoding it, read from its markers up to the first scan:
 * frame type and size, components, sample precision, EXIF orientation, whether it carries an ICC
 * profile. imageio/decode.ts uses it to choose a decoder without decoding (libjpeg-turbo for plain
 * 8-bit YCbCr/greyscale pictures, sharp for everything that needs colour management or rotation).
 * Pure byte parsing; a file this cannot read is simply "not a plain JPEG" and goes to sharp, which
 * then says what is wrong with it.
 */

export interface JpegHeader {
  /** The SOFn marker byte (0xc0 baseline, 0xc1 extended, 0xc2 progressive, 0xc3 lossless, ...). */
  frameMarker: number;
  width: number;
  height: number;
  /** Bits per sample (8 for nearly every JPEG; 12 and 16 exist). */
  precision: number;
  /** 1 greyscale, 3 YCbCr (or RGB), 4 CMYK/YCCK. */
  components: number;
  /** EXIF orientation 1-8 (1 when absent or unreadable). */
  orientation: number;
  /** An embedded ICC profile (APP2 "ICC_PROFILE"). */
  icc: boolean;
}

const SOI = 0xd8;
const SOS = 0xda;
const EOI = 0xd9;
/** SOF0-SOF15 except DHT (c4), JPG (c8) and DAC (cc). */
const isFrameMarker = (m: number): boolean => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

const ascii = (b: Uint8Array, at: number, text: string): boolean => {
  if (at + text.length > b.length) return false;
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
};

/** EXIF orientation from an APP1 payload (starting after "Exif\0\0"), or 1. */
function exifOrientation(b: Uint8Array, start: number, end: number): number {
  const view = new DataView(b.buffer, b.byteOffset + start, end - start);
  if (view.byteLength < 8) return 1;
  const tiff = view.getUint16(0);
  const little = tiff === 0x4949; // "II"
  if (!little && tiff !== 0x4d4d) return 1; // "MM"
  if (view.getUint16(2, little) !== 42) return 1;
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > view.byteLength) return 1;
  const entries = view.getUint16(ifd, little);
  for (let i = 0; i < entries; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > view.byteLength) return 1;
    if (view.getUint16(e, little) !== 0x0112) continue;
    // SHORT (type 3), count 1: the value sits in the first two bytes of the value field.
    const value = view.getUint16(e + 2, little) === 3 ? view.getUint16(e + 8, little) : 1;
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}

/** The header of a JPEG, or undefined when the bytes are not one (or end before its frame header). */
export function readJpegHeader(bytes: Uint8Array): JpegHeader | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== SOI) return undefined;
  let orientation = 1;
  let icc = false;
  let frame: Pick<JpegHeader, 'frameMarker' | 'width' | 'height' | 'precision' | 'components'> | undefined;
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) { at++; continue; } // fill byte
    if (marker === SOS || marker === EOI) break;
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { at += 2; continue; } // no length
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    const start = at + 4;
    const end = at + 2 + length;
    if (length < 2 || end > bytes.length) return undefined;
    if (isFrameMarker(marker) && frame === undefined) {
      if (length < 8) return undefined;
      frame = {
        frameMarker: marker,
        precision: bytes[start]!,
        height: (bytes[start + 1]! << 8) | bytes[start + 2]!,
        width: (bytes[start + 3]! << 8) | bytes[start + 4]!,
        components: bytes[start + 5]!,
      };
    } else if (marker === 0xe1 && ascii(bytes, start, 'Exif\0\0')) {
      orientation = exifOrientation(bytes, start + 6, end);
    } else if (marker === 0xe2 && ascii(bytes, start, 'ICC_PROFILE\0')) {
      icc = true;
    }
    at = end;
  }
  return frame === undefined ? undefined : { ...frame, orientation, icc };
}
