// pts is each frame's own buffer timestamp (runtime/stream/gdp.ts), not the pipeline position at the
// pull: a 10 fps file's frame k reports (k - 1) / 10 s exactly, whatever the consumer's pace.
import { afterAll, describe, expect, it } from 'vitest';
import type { Frame } from '../../runtime/stream/frame.js';
import { gdpPayloaderAvailable, parseCapsString, parseGdpPacket, videoCapsOfGdp, withGdpPayloader } from '../../runtime/stream/gdp.js';
import { gstAvailable } from '../../runtime/stream/gst.js';
import { CPU_GST } from '../../runtime/stream/pipelines.js';
import { GstFrameSource } from '../../runtime/stream/source.js';
import { parsePipelineSource, parseSourceUri } from '../../runtime/stream/uri.js';
import { testVideo } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import { WAIT_MS } from '../helpers/wait.js';

function packet(type: number, payload: Buffer, ptsNs: bigint): Buffer {
  const h = Buffer.alloc(62);
  h[0] = 1;
  h.writeUInt16BE(type, 4);
  h.writeUInt32BE(payload.length, 6);
  h.writeBigUInt64BE(ptsNs, 10);
  return Buffer.concat([h, payload]);
}

describe('GDP packets', () => {
  it('header fields, payload and a missing timestamp', () => {
    const p = parseGdpPacket(packet(1, Buffer.from([7, 8, 9]), 300_000_000n))!;
    expect(p.type).toBe(1);
    expect([...p.payload]).toEqual([7, 8, 9]);
    expect(p.pts).toBeCloseTo(0.3, 12);
    expect(parseGdpPacket(packet(1, Buffer.alloc(0), 0xffffffffffffffffn))!.pts).toBeNull();
    expect(parseGdpPacket(Buffer.alloc(10))).toBeUndefined();
  });

  it('video caps from the streamheader caps packet', () => {
    const text = 'video/x-raw, width=(int)96, height=(int)64, interlace-mode=(string)progressive, framerate=(fraction)10/1, format=(string)BGR\0';
    expect(parseCapsString(text)).toEqual({ name: 'video/x-raw', width: 96, height: 64, framerate: '10/1', format: 'BGR' });
    const caps = { name: 'application/x-gdp', streamheader: [packet(64, Buffer.from('x'), 0n), packet(2, Buffer.from(text), 0n)] };
    expect(videoCapsOfGdp(caps)).toMatchObject({ width: 96, height: 64, format: 'BGR' });
  });

  it('gdppay goes before the frame appsink only', () => {
    const launch = 'filesrc location=a.mp4 ! decodebin ! tee name=t ! queue ! videoconvert ! appsink name=sink drop=false max-buffers=1 sync=false t. ! appsink name=probe drop=true';
    expect(withGdpPayloader(launch, 'sink')).toEqual({
      launch: 'filesrc location=a.mp4 ! decodebin ! tee name=t ! queue ! videoconvert ! gdppay ! appsink name=sink drop=false max-buffers=1 sync=false t. ! appsink name=probe drop=true',
      gdp: true,
    });
    expect(withGdpPayloader('videotestsrc ! appsink drop=true name=out', 'out').launch).toBe('videotestsrc ! gdppay ! appsink drop=true name=out');
    expect(withGdpPayloader('videotestsrc ! appsink name=sinker', 'sink').gdp).toBe(false);
  });
});

const sources: GstFrameSource[] = [];
afterAll(() => { for (const s of sources) s.close(); });

describe.skipIf(!gstAvailable() || !gdpPayloaderAvailable())('buffer timestamps from real pipelines', { timeout: 2 * WAIT_MS }, () => {
  it('a 10 fps file: frame k reports (k - 1) / 10 s', async () => {
    const clip = testVideo(tempDir('ssd-pts-'), 25, 160, 120, 10);
    const s = new GstFrameSource('s0', parseSourceUri(clip), { gst: CPU_GST, format: 'bgr', width: 96, height: 96, connectTimeoutMs: WAIT_MS, stallTimeoutMs: WAIT_MS, log: () => {} });
    sources.push(s);
    await s.start();
    const frames: Frame[] = [];
    for (let f = await s.next(); f; f = await s.next()) {
      frames.push(f);
      // A slow consumer every few frames: the reported time must not move with the pace of pulls.
      if (f.seq % 5 === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(frames).toHaveLength(25);
    frames.forEach((f, i) => expect(f.pts).toBeCloseTo(i / 10, 6));
    expect([frames[0]!.width, frames[0]!.height, frames[0]!.format, frames[0]!.sourceWidth]).toEqual([96, 96, 'bgr', 160]);
    expect(frames[3]!.data.length).toBe(96 * 96 * 3);
  });

  it('a live --pipeline source: buffer timestamps a whole number of frame intervals apart', async () => {
    const s = new GstFrameSource('s1', parsePipelineSource('videotestsrc is-live=true ! video/x-raw,format=RGB,width=32,height=24,framerate=5/1 ! appsink'), {
      gst: CPU_GST, format: 'rgb', connectTimeoutMs: WAIT_MS, stallTimeoutMs: WAIT_MS, log: () => {},
    });
    sources.push(s);
    await s.start();
    const pts: number[] = [];
    for (let k = 0; k < 3; k++) pts.push((await s.next())!.pts!);
    s.close();
    // A live source's clock starts where the pipeline's running time was: steps, not values, are on the grid.
    for (const d of [pts[1]! - pts[0]!, pts[2]! - pts[1]!]) {
      expect(d).toBeGreaterThan(0);
      expect(Math.abs(d * 5 - Math.round(d * 5))).toBeLessThan(1e-6);
    }
  });
});
