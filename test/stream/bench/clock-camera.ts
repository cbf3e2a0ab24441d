/**
 * A stand-in IP camera for the latency benchmark: every frame carries the wall-clock time at which it
 * was made ("glass time"), written as 32 black/white 32x32 blocks (Date.now() mod 2^32, MSB first,
 * 8 per row) in its top-left corner, H.264-encoded (x264, zerolatency) and sent as RTP over UDP to
 * 127.0.0.1:PORT, like a camera's stream. Run in its own process so that its timer is not delayed by
 * the detector's JS thread.
 *   node --import tsx test/stream/bench/clock-camera.ts PORT [--fps 30] [--width 320 --height 240] [--seconds 60]
 */
import { createPipeline, type GstAppSrc } from '../../../runtime/stream/gst.js';

export const BLOCK = 32;
export const BITS = 32;

/** Writes `value` (32 bits) into an RGB frame of width `w`. */
export function writeClock(rgb: Buffer, w: number, value: number): void {
  for (let bit = 0; bit < BITS; bit++) {
    const on = ((value >>> (BITS - 1 - bit)) & 1) === 1;
    const bx = (bit % 8) * BLOCK;
    const by = Math.floor(bit / 8) * BLOCK;
    for (let y = by; y < by + BLOCK; y++) rgb.fill(on ? 255 : 0, (y * w + bx) * 3, (y * w + bx + BLOCK) * 3);
  }
}

/** Reads the clock back from a decoded frame scaled by (sx, sy) from the camera's (the blocks are grey). */
export function readClock(data: Uint8Array, stride: number, sx = 1, sy = 1): number {
  let v = 0;
  for (let bit = 0; bit < BITS; bit++) {
    const x = Math.floor(((bit % 8) * BLOCK + BLOCK / 2) * sx);
    const y = Math.floor((Math.floor(bit / 8) * BLOCK + BLOCK / 2) * sy);
    const i = y * stride + x * 3;
    const luma = (data[i]! + data[i + 1]! + data[i + 2]!) / 3;
    v = v * 2 + (luma > 127 ? 1 : 0);
  }
  return v;
}

/** Full wall-clock ms from the 32 low bits, given a nearby wall-clock time. */
export function unwrapClock(low32: number, near: number): number {
  const base = near - (near % 2 ** 32);
  let t = base + low32;
  if (t > near + 2 ** 31) t -= 2 ** 32;
  return t;
}

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  const arg = (name: string, d: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : d;
  };
  const fps = arg('fps', 30);
  const width = arg('width', 320);
  const height = arg('height', 240);
  const seconds = arg('seconds', 60);
  const p = createPipeline(
    `appsrc name=src is-live=true format=time do-timestamp=true caps=video/x-raw,format=RGB,width=${width},height=${height},framerate=${fps}/1`
    + ' ! videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=2000 key-int-max=30'
    + ` ! rtph264pay config-interval=1 pt=96 ! udpsink host=127.0.0.1 port=${port} sync=false`, 'clock camera');
  const src = p.findChild('src') as GstAppSrc;
  p.play();
  // A textured background so the encoder has real work; the clock blocks on top.
  const background = Buffer.alloc(width * height * 3);
  for (let i = 0; i < background.length; i++) background[i] = (i * 7919) % 251;
  const t0 = performance.now();
  let n = 0;
  const tick = () => {
    const frame = Buffer.from(background);
    writeClock(frame, width, Date.now() % 2 ** 32);
    src.push(frame);
    n++;
    if (performance.now() - t0 > seconds * 1000) {
      p.stop();
      process.exit(0);
    }
    // Scheduled against the start time, so the rate holds at `fps` on average.
    setTimeout(tick, Math.max(0, t0 + (n * 1000) / fps - performance.now()));
  };
  tick();
}

if (process.argv[1]?.endsWith('clock-camera.ts')) void main();
