import { describe, expect, it } from 'vitest';
import { getProfile } from '../../devices/profiles.js';
import { createPipeline, gstAvailable } from '../../runtime/stream/gst.js';
import { buildPipeline, CPU_GST, quote } from '../../runtime/stream/pipelines.js';
import { parseSourceUri, type SourceDesc } from '../../runtime/stream/uri.js';

const rtsp: SourceDesc = { kind: 'rtsp', url: 'rtsp://u:p@10.0.0.2/live', transport: 'tcp' };
const rtp: SourceDesc = { kind: 'rtp', port: 5000 };
const file: SourceDesc = { kind: 'file', path: '/data/clip "1".mp4' };
const v4l2: SourceDesc = { kind: 'v4l2', device: '/dev/video0', mode: {} };
const csi: SourceDesc = { kind: 'csi', sensorId: 0, mode: {} };
const test: SourceDesc = { kind: 'test', pattern: 'ball', mode: { width: 320, height: 240, fps: 15 } };
const model = { width: 300, height: 300 };

describe('desktop (CPU) pipelines', () => {
  const gst = getProfile('cpu').gst;
  it('the cpu profile uses the libav decoder and videoconvert', () => {
    expect(gst).toMatchObject({ h264Decoder: 'avdec_h264', nvmm: false });
  });

  it('RTSP: TCP, small jitter buffer, H.264 depay/parse/decode, scale to the model, newest frame only, probe for the camera size', () => {
    const b = buildPipeline(rtsp, { gst, format: 'bgr', ...model, rtspLatencyMs: 100 });
    expect(b.launch).toBe(
      'rtspsrc location="rtsp://u:p@10.0.0.2/live" protocols=tcp latency=100 drop-on-latency=true ! rtph264depay ! h264parse ! avdec_h264'
      + ' ! tee name=t ! queue max-size-buffers=1 leaky=downstream ! videoconvert ! videoscale ! video/x-raw,format=BGR,width=300,height=300'
      + ' ! appsink name=sink drop=true max-buffers=1 sync=false t. ! appsink name=probe drop=true max-buffers=1 sync=false async=false',
    );
    expect(b).toMatchObject({ sink: 'sink', probe: 'probe' });
    expect(buildPipeline(rtsp, { gst, format: 'rgb', codec: 'h265' }).launch).toContain('rtph265depay ! h265parse ! avdec_h265');
  });

  it('RTP/UDP: caps for the payload, a jitter buffer, depay/parse/decode', () => {
    expect(buildPipeline(rtp, { gst, format: 'bgr', ...model }).launch).toMatch(
      /^udpsrc port=5000 caps="application\/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000" ! rtpjitterbuffer latency=200 drop-on-latency=true ! rtph264depay ! h264parse ! avdec_h264 ! tee name=t ! /,
    );
    expect(buildPipeline({ kind: 'rtp', address: '239.1.1.1', port: 5004 }, { gst, format: 'bgr', codec: 'h265' }).launch)
      .toContain('udpsrc port=5004 address=239.1.1.1 caps="application/x-rtp,media=video,encoding-name=H265,payload=96,clock-rate=90000" ! rtpjitterbuffer latency=200 drop-on-latency=true ! rtph265depay ! h265parse ! avdec_h265');
  });

  it('files: decodebin, every frame (no drop, no leaky queue), quoted path', () => {
    const b = buildPipeline(file, { gst, format: 'rgb', ...model, everyFrame: true });
    expect(b.launch).toMatch(/^filesrc location="\/data\/clip \\"1\\"\.mp4" ! decodebin ! tee name=t ! queue max-size-buffers=1 ! /);
    expect(b.launch).toContain('appsink name=sink drop=false max-buffers=1 sync=false');
    expect(b.launch).not.toContain('leaky');
  });

  it('test:// and csi:// know their size from their caps: no probe branch', () => {
    const b = buildPipeline(test, { gst, format: 'rgb', ...model });
    expect(b.launch).toBe('videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 ! queue max-size-buffers=1 leaky=downstream ! videoconvert ! videoscale ! video/x-raw,format=RGB,width=300,height=300 ! appsink name=sink drop=true max-buffers=1 sync=false');
    expect(b.probe).toBeUndefined();
  });

  it('without a model size the frame keeps the source size', () => {
    expect(buildPipeline(v4l2, { gst, format: 'rgb' }).launch).toBe('v4l2src device="/dev/video0" ! decodebin ! queue max-size-buffers=1 leaky=downstream ! videoconvert ! videoscale ! video/x-raw,format=RGB ! appsink name=sink drop=true max-buffers=1 sync=false');
  });

  it('a v4l2 mode accepts raw or MJPEG', () => {
    const b = buildPipeline({ kind: 'v4l2', device: '/dev/video1', mode: { width: 640, height: 480, fps: 30 } }, { gst, format: 'rgb' });
    expect(b.launch).toContain('capsfilter caps="video/x-raw,width=640,height=480,framerate=30/1;image/jpeg,width=640,height=480,framerate=30/1" ! decodebin');
  });

  it('--pipeline text is kept; an unnamed final appsink is named and made leaky', () => {
    expect(buildPipeline({ kind: 'pipeline', launch: 'videotestsrc ! videoconvert ! video/x-raw,format=RGB ! appsink' }, { gst, format: 'rgb' }))
      .toEqual({ launch: 'videotestsrc ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink drop=true max-buffers=1 sync=false', sink: 'sink' });
    expect(buildPipeline({ kind: 'pipeline', launch: 'videotestsrc ! appsink name=out max-buffers=2' }, { gst, format: 'rgb' }))
      .toEqual({ launch: 'videotestsrc ! appsink name=out max-buffers=2', sink: 'out' });
  });

  it.skipIf(!gstAvailable())('every desktop pipeline parses with the installed GStreamer (all elements exist)', () => {
    for (const desc of [rtsp, rtp, { kind: 'file', path: '/tmp/x.mp4' } as SourceDesc, v4l2, test]) {
      for (const everyFrame of [false, true]) {
        const b = buildPipeline(desc, { gst, format: 'bgr', ...model, everyFrame });
        const p = createPipeline(b.launch, 'test');
        expect(p.findChild(b.sink)).toBeDefined();
        if (b.probe) expect(p.findChild(b.probe)).toBeDefined();
        p.stop();
      }
    }
  });
});

describe('Jetson pipelines', () => {
  const gst = getProfile('orin-nano').gst;
  it('the Jetson profiles use the hardware decoder, nvvidconv and NVMM memory', () => {
    expect(gst).toMatchObject({ h264Decoder: 'nvv4l2decoder', convert: 'nvvidconv', csiSource: 'nvarguscamerasrc', nvmm: true });
  });

  it('RTSP: nvv4l2decoder, nvvidconv scales in NVMM to BGRx, videoconvert drops the pad byte at model size', () => {
    const b = buildPipeline(rtsp, { gst, format: 'bgr', ...model });
    expect(b.launch).toBe(
      // The probe hangs off the parser (coded size in its caps), never holding one of the decoder's NVMM buffers.
      'rtspsrc location="rtsp://u:p@10.0.0.2/live" protocols=tcp latency=200 drop-on-latency=true ! rtph264depay ! h264parse'
      + ' ! tee name=t ! nvv4l2decoder ! queue max-size-buffers=1 leaky=downstream ! nvvidconv ! video/x-raw,format=BGRx,width=300,height=300 ! videoconvert ! video/x-raw,format=BGR'
      + ' ! appsink name=sink drop=true max-buffers=1 sync=false t. ! appsink name=probe drop=true max-buffers=1 sync=false async=false',
    );
  });

  it('CSI: nvarguscamerasrc in NVMM at the requested mode (default 1280x720@30), RGBA for RGB models', () => {
    expect(buildPipeline(csi, { gst, format: 'rgb', ...model }).launch).toBe(
      'nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! queue max-size-buffers=1 leaky=downstream'
      + ' ! nvvidconv ! video/x-raw,format=RGBA,width=300,height=300 ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink drop=true max-buffers=1 sync=false',
    );
    const hd = buildPipeline({ kind: 'csi', sensorId: 1, mode: { width: 1920, height: 1080, fps: 60 } }, { gst, format: 'bgr', ...model });
    expect(hd.launch).toContain('nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=60/1');
  });

  it('H.265 uses the same hardware decoder', () => {
    expect(buildPipeline(rtsp, { gst, format: 'bgr', codec: 'h265' }).launch).toContain('rtph265depay ! h265parse ! nvv4l2decoder');
  });

  it('csi:// on a profile without a CSI element is refused by the source, not built', () => {
    expect(CPU_GST.csiSource).toBeUndefined();
    expect(() => buildPipeline(parseSourceUri('csi://0').desc, { gst: CPU_GST, format: 'rgb' })).toThrow();
  });
});

describe('quoting for gst_parse_launch', () => {
  it('escapes quotes and backslashes', () => {
    expect(quote('a "b" \\c')).toBe('"a \\"b\\" \\\\c"');
  });
});
