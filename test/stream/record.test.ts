// Clips (runtime/stream/record.ts) in-process, against real GStreamer: the recording branch's text for
// every kind of source, a triggered clip's length (pre-roll + post-roll) and playability checked with
// gst-discoverer-1.0, the no-re-encode path from an RTSP camera, the disk quota and the DIR checks.
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { getProfile } from '../../devices/profiles.js';
import { createPipeline, gstAvailable } from '../../runtime/stream/gst.js';
import { CPU_GST, RECORD_NAME, buildPipeline, withRecordBranch, type PipelineOptions } from '../../runtime/stream/pipelines.js';
import { Recorder, enforceQuota, listClips, prepareRecordDir, type ClipRecord } from '../../runtime/stream/record.js';
import { GstFrameSource } from '../../runtime/stream/source.js';
import { parsePipelineSource, parseSourceUri } from '../../runtime/stream/uri.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';
import { discover, discovererAvailable } from './discover.js';
import { freePort, startRtspServer, stop } from './helpers.js';

const OPTS: PipelineOptions = { gst: CPU_GST, format: 'bgr', width: 96, height: 96 };

describe('recording branch text', () => {
  it('taps H.264 after the parser (no re-encoding) and encodes raw sources', () => {
    const rtsp = parseSourceUri('rtsp://127.0.0.1:8554/cam').desc;
    const r = withRecordBranch(rtsp, OPTS, buildPipeline(rtsp, OPTS))!;
    expect(r.record).toBe(RECORD_NAME);
    expect(r.recordCodec).toBe('h264');
    expect(r.launch).toMatch(/rtph264depay ! h264parse ! tee name=ssdrec_t ! avdec_h264/);
    expect(r.launch).not.toMatch(/x264enc/);
    expect(r.launch).toMatch(/ssdrec_t\. ! queue max-size-buffers=0 [^!]*! h264parse config-interval=-1 ! video\/x-h264,stream-format=byte-stream,alignment=au ! gdppay ! appsink name=ssdrec drop=false/);

    const h265 = withRecordBranch(rtsp, { ...OPTS, codec: 'h265' }, buildPipeline(rtsp, { ...OPTS, codec: 'h265' }))!;
    expect(h265.recordCodec).toBe('h265');
    expect(h265.launch).toMatch(/h265parse ! tee name=ssdrec_t ! avdec_h265.* h265parse config-interval=-1 ! video\/x-h265,/);

    const test = parseSourceUri('test://ball').desc;
    const t = withRecordBranch(test, OPTS, buildPipeline(test, OPTS))!;
    expect(t.launch).toMatch(/^videotestsrc [^!]*! video\/x-raw,[^ ]* ! tee name=ssdrec_t ! queue max-size-buffers=1 leaky=downstream/);
    expect(t.launch).toMatch(/ssdrec_t\. ! queue leaky=downstream max-size-buffers=8 ! videoconvert ! video\/x-raw,format=I420 ! x264enc /);

    const file = { kind: 'file' as const, path: '/tmp/clip.mp4' };
    const f = withRecordBranch(file, { ...OPTS, everyFrame: true }, buildPipeline(file, { ...OPTS, everyFrame: true }))!;
    // A desktop file goes through decodebin (no parser to tap): encoded again, and never leaky.
    expect(f.launch).toMatch(/decodebin ! tee name=ssdrec_t /);
    expect(f.launch).toMatch(/ssdrec_t\. ! queue max-size-buffers=0 [^!]*! videoconvert ! video\/x-raw,format=I420 ! x264enc/);

    const pipe = parsePipelineSource('videotestsrc ! videoconvert ! video/x-raw,format=RGB ! appsink').desc;
    const p = withRecordBranch(pipe, OPTS, buildPipeline(pipe, OPTS))!;
    expect(p.launch).toMatch(/video\/x-raw,format=RGB ! tee name=ssdrec_t ! queue max-size-buffers=1 leaky=downstream ! appsink name=sink/);

    // Every desktop text parses with the installed GStreamer (then is dropped unplayed).
    if (gstAvailable()) for (const b of [r, h265, t, f, p]) createPipeline(b.launch, 'test').stop();
  });

  it('uses the profile encoder and the explicit parser chain on a Jetson', () => {
    const jetson = getProfile('orin-nano').gst;
    const o = { ...OPTS, gst: jetson };
    const file = { kind: 'file' as const, path: '/data/clip.mp4' };
    const f = withRecordBranch(file, { ...o, everyFrame: true }, buildPipeline(file, { ...o, everyFrame: true }))!;
    expect(f.launch).toMatch(/qtdemux ! queue ! h264parse ! tee name=ssdrec_t ! tee name=t ! nvv4l2decoder/);
    expect(f.launch).not.toMatch(/nvv4l2h264enc/);
    const csi = parseSourceUri('csi://0').desc;
    const c = withRecordBranch(csi, o, buildPipeline(csi, o))!;
    expect(c.launch).toMatch(/nvarguscamerasrc [^!]*! video\/x-raw\(memory:NVMM\),[^ ]* ! tee name=ssdrec_t/);
    expect(c.launch).toMatch(/ssdrec_t\. ! queue leaky=downstream max-size-buffers=8 ! nvvidconv ! video\/x-raw\(memory:NVMM\),format=NV12 ! nvv4l2h264enc /);
  });
});

describe('record DIR and quota', () => {
  it('refuses a file, and a path under a file, with one line naming --record', () => {
    const dir = tempDir('ssd-record-');
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    expect(() => prepareRecordDir(file)).toThrow(/^--record .*file: not a directory$/);
    expect(() => prepareRecordDir(join(file, 'sub'))).toThrow(/^--record .*sub: not a directory$/);
    prepareRecordDir(join(dir, 'new', 'deep'));
    expect(existsSync(join(dir, 'new', 'deep'))).toBe(true);
  });

  it('deletes the oldest clips first, never the newest', () => {
    const dir = tempDir('ssd-record-');
    for (const [src, name, age] of [['src0', 'a.mp4', 400], ['src1', 'b.mp4', 300], ['src0', 'c.mp4', 200], ['src1', 'd.mp4', 100]] as const) {
      mkdirSync(join(dir, src), { recursive: true });
      const path = join(dir, src, name);
      writeFileSync(path, Buffer.alloc(1000));
      const t = Date.now() / 1000 - age;
      utimesSync(path, t, t);
    }
    writeFileSync(join(dir, 'src0', 'other.txt'), Buffer.alloc(5000)); // not a clip: never counted or deleted
    expect(listClips(dir).map((c) => c.path.slice(dir.length + 1))).toEqual(['src0/a.mp4', 'src1/b.mp4', 'src0/c.mp4', 'src1/d.mp4']);
    expect(enforceQuota(dir, 2500).map((p) => p.slice(dir.length + 1))).toEqual(['src0/a.mp4', 'src1/b.mp4']);
    expect(readdirSync(join(dir, 'src0')).sort()).toEqual(['c.mp4', 'other.txt']);
    // A quota smaller than one clip keeps the one named.
    expect(enforceQuota(dir, 10, join(dir, 'src1', 'd.mp4')).map((p) => p.slice(dir.length + 1))).toEqual(['src0/c.mp4']);
    expect(listClips(dir).map((c) => c.path.slice(dir.length + 1))).toEqual(['src1/d.mp4']);
  });
});

const running: Array<ChildProcess | undefined> = [];
afterAll(async () => { for (const p of running) await stop(p); });

/** Pulls frames until told to stop, as the scheduler would (the recording branch runs regardless). */
function consume(src: GstFrameSource): { stop: () => void; done: Promise<void> } {
  let stopped = false;
  const done = (async () => {
    while (!stopped) if ((await src.next()) === null) return;
  })();
  return { stop: () => { stopped = true; }, done };
}

describe.skipIf(!gstAvailable() || !discovererAvailable)('clips from real pipelines', () => {
  it('a triggered clip holds the pre-roll and the post-roll, is H.264 and plays (test:// encoded with x264); the quota deletes the older clip', async () => {
    const dir = tempDir('ssd-record-');
    const clips: ClipRecord[] = [];
    const pre = 2;
    const post = 1.5;
    // A quota of one byte: every clip is over it; the newest is kept and the one before it deleted.
    const rec = new Recorder({ dir, preRollS: pre, postRollS: post, maxBytes: 1, log: () => {}, onClip: (c) => clips.push(c) });
    const src = new GstFrameSource('src0', parseSourceUri('test://ball?width=320&height=240&fps=30'), { gst: CPU_GST, format: 'bgr', width: 96, height: 96, recorder: rec, log: () => {} });
    expect(src.built.launch).toMatch(/x264enc/);
    await src.start();
    const c = consume(src);
    try {
      // Wait until the ring holds more than the pre-roll (x264 keyframes every 30 frames = 1 s).
      await waitFor(() => rec.bufferedSeconds('src0') >= pre + 1.1, 'a full pre-roll in the ring');
      rec.trigger('src0', 'test event');
      expect(rec.recording('src0')).toBe(true);
      await waitFor(() => clips.length === 1, 'the clip to finish at its post-roll');
      checkFirst(clips[0]!);
      rec.trigger('src0', 'second');
      await waitFor(() => clips.length === 2, 'the second clip');
    } finally {
      c.stop();
      src.close();
      await rec.close();
    }
    expect(existsSync(clips[0]!.path)).toBe(false);
    expect(listClips(dir).map((x) => x.path)).toEqual([clips[1]!.path]);
    expect(discover(clips[1]!.path).codec).toMatch(/^H\.264/);
  }, 600_000);

  function checkFirst(clip: ClipRecord): void {
    const pre = 2;
    const post = 1.5;
    const dir = clip.path.slice(0, clip.path.indexOf('/src0/'));
    expect(clip).toMatchObject({ type: 'clip', source: 'src0', uri: 'test://ball?width=320&height=240&fps=30', reason: 'test event', complete: true });
    expect(clip.path).toMatch(new RegExp(`^${dir}/src0/\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d\\.\\d{3}Z-test_event\\.mp4$`));
    expect(existsSync(`${clip.path}.part`)).toBe(false);
    const d = discover(clip.path);
    expect(d.error).toBeUndefined();
    expect(d.codec).toMatch(/^H\.264/);
    // From the last keyframe at least `pre` before the trigger (keyframes 1 s apart) to `post` after it.
    expect(d.duration).toBeGreaterThanOrEqual(pre + post - 0.1);
    expect(d.duration).toBeLessThanOrEqual(pre + post + 1.2);
    expect(Math.abs(d.duration - clip.duration_s)).toBeLessThan(0.1);
    expect(clip.bytes).toBeGreaterThan(0);
  }

  it('records an RTSP camera without re-encoding and finishes the clip when the camera drops', async () => {
    const dir = tempDir('ssd-record-');
    const clips: ClipRecord[] = [];
    const lines: string[] = [];
    const server = await startRtspServer(await freePort(), 600);
    running.push(server.proc);
    const rec = new Recorder({ dir, preRollS: 1, postRollS: 600, log: (l) => lines.push(l), onClip: (c) => clips.push(c) });
    const src = new GstFrameSource('cam', parseSourceUri(server.url), {
      gst: CPU_GST, format: 'bgr', width: 96, height: 96, recorder: rec, connectTimeoutMs: 120_000,
      backoff: { initialMs: 60_000, maxMs: 60_000 }, log: (l) => lines.push(l),
    });
    expect(src.built.launch).not.toMatch(/x264enc|openh264enc/);
    expect(src.built.launch).toMatch(/h264parse ! tee name=ssdrec_t/);
    await src.start();
    const c = consume(src);
    try {
      await waitFor(() => rec.bufferedSeconds('cam') >= 1.6, 'a full pre-roll in the ring');
      rec.trigger('cam', 'door');
      // Some video after the trigger, then the camera goes away mid-clip (the post-roll is 10 minutes).
      await waitFor(() => rec.bufferedSeconds('cam') >= 2.5, 'more video');
      await stop(server.proc);
      await waitFor(() => clips.length === 1, 'the clip to be finished after the drop', { detail: () => lines.join('\n') });
      expect(lines.join('\n')).toMatch(/reconnecting in/);
    } finally {
      c.stop();
      src.close();
      await rec.close();
    }
    const clip = clips[0]!;
    expect(clip).toMatchObject({ source: 'cam', reason: 'door', complete: true });
    const d = discover(clip.path);
    expect(d.error).toBeUndefined();
    expect(d.codec).toMatch(/^H\.264/);
    expect(d.duration).toBeGreaterThan(1);
    expect(Math.abs(d.duration - clip.duration_s), `${d.duration} vs ${clip.duration_s}`).toBeLessThan(0.2);
  }, 600_000);
});
