/**
 * Annotated images: the detections drawn as boxes with "label score" tags, as one SVG overlay that
 * sharp composites over the (EXIF-oriented) original. No canvas library, no font files: librsvg,
 * which sharp ships, renders the text.
 */
import sharp from 'sharp';
import { SsdError, oneLine } from '../core/errors.js';
import type { DetectionPixelsXYXY } from '../core/model-contract.js';

/** A colour per class, spread around the hue circle so that neighbouring ids differ. */
export function classColour(classId: number): string {
  return `hsl(${classHue(classId).toFixed(1)},85%,50%)`;
}

function classHue(classId: number): number {
  return (classId * 137.508) % 360;
}

/**
 * classColour as 8-bit [r, g, b], by the CSS hsl() rule: what librsvg and a browser paint for that
 * string (tests look for these pixels in drawn pictures).
 */
export function classColourRgb(classId: number): [number, number, number] {
  const h = Number(classHue(classId).toFixed(1));
  const s = 0.85;
  const l = 0.5;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** The SVG overlay for a width x height picture. */
export function overlaySvg(detections: readonly DetectionPixelsXYXY[], width: number, height: number): string {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const font = Math.max(11, Math.round(Math.min(width, height) / 40));
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">`];
  // Lowest score first so that the strongest detection's tag ends up on top.
  for (const d of [...detections].sort((a, b) => a.score - b.score)) {
    const [x1, y1, x2, y2] = d.box;
    const colour = classColour(d.classId);
    const text = `${d.label} ${d.score.toFixed(2)}`;
    const tagW = Math.round(text.length * font * 0.6 + 6);
    const tagH = font + 6;
    const tagY = y1 - tagH >= 0 ? y1 - tagH : y1;
    parts.push(
      `<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${Math.max(0, x2 - x1).toFixed(1)}" height="${Math.max(0, y2 - y1).toFixed(1)}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>`,
      `<rect x="${x1.toFixed(1)}" y="${tagY.toFixed(1)}" width="${tagW}" height="${tagH}" fill="${colour}"/>`,
      `<text x="${(x1 + 3).toFixed(1)}" y="${(tagY + font + 1).toFixed(1)}" font-family="DejaVu Sans, sans-serif" font-size="${font}" fill="#fff">${escapeXml(text)}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('');
}

export type AnnotatedFormat = 'jpeg' | 'png' | 'webp';

/** The original image with the detections drawn on it, encoded as `format`. */
export async function drawDetections(image: string | Uint8Array, detections: readonly DetectionPixelsXYXY[], format: AnnotatedFormat = 'jpeg'): Promise<Buffer> {
  const name = typeof image === 'string' ? `image ${image}` : 'image buffer';
  try {
    const base = sharp(image, { autoOrient: true });
    const meta = await sharp(image).metadata();
    const width = meta.autoOrient?.width ?? meta.width ?? 0;
    const height = meta.autoOrient?.height ?? meta.height ?? 0;
    const svg = Buffer.from(overlaySvg(detections, width, height));
    const out = base.composite([{ input: svg, top: 0, left: 0 }]);
    return await (format === 'png' ? out.png() : format === 'webp' ? out.webp() : out.jpeg({ quality: 90 })).toBuffer();
  } catch (err) {
    throw new SsdError(`${name}: cannot draw detections (${oneLine(err)})`, { cause: err });
  }
}
