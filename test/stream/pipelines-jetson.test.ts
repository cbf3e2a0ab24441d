// Jetson source chains (issue 14, item 7): explicit demux/parse/decoder chains as jetson-utils builds
// them, MJPEG cameras on nvv4l2decoder mjpeg=1, and a probe that never holds a decoder (NVMM) buffer.
import { describe, expect, it } from 'vitest';
import { getProfile, PROFILES } from '../../devices/profiles.js';
import { buildPipeline, CPU_GST, declaredSourceSize, JETSON_DEMUXERS } from '../../runtime/stream/pipelines.js';
import { parseSourceUri, type SourceDesc } from '../../runtime/stream/uri.js';

const gst = getProfile('orin-nx').gst;
const model = { width: 300, height: 300 };
const file = (path: string): SourceDesc => ({ kind: 'file', path });
const v4l2 = (mode: Extract<SourceDesc, { kind: 'v4l2' }>['mode']): SourceDesc => ({ kind: 'v4l2', device: '/dev/video0', mode });

/** The element just before the probe's branch starts (what the tee follows). */
function teeInput(launch: string): string {
  const before = launch.slice(0, launch.indexOf(' ! tee name=t'));
  return before.split(' ! ').at(-1)!;
}

describe('Jetson file and camera chains', () => {
  it('every Jetson profile decodes MJPEG in hardware; desktop profiles leave it to decodebin', () => {
    for (const p of PROFILES) expect(p.gst.mjpegDecoder, p.name).toBe(p.gst.nvmm ? 'nvv4l2decoder mjpeg=1' : undefined);
  });

  it('files: the container\'s demuxer, the codec\'s parser, nvv4l2decoder; no decodebin', () => {
    const mp4 = buildPipeline(file('/v/a.mp4'), { gst, format: 'bgr', everyFrame: true, ...model });
    expect(mp4.launch).toBe(
      'filesrc location="/v/a.mp4" ! qtdemux ! queue ! h264parse ! tee name=t ! nvv4l2decoder ! queue max-size-buffers=1'
      + ' ! nvvidconv ! video/x-raw,format=BGRx,width=300,height=300 ! videoconvert ! video/x-raw,format=BGR'
      + ' ! appsink name=sink drop=false max-buffers=1 sync=false t. ! appsink name=probe drop=true max-buffers=1 sync=false async=false',
    );
    expect(buildPipeline(file('/v/a.mkv'), { gst, format: 'rgb', codec: 'h265', ...model }).launch).toMatch(/^filesrc location="\/v\/a\.mkv" ! matroskademux ! queue ! h265parse ! tee name=t ! nvv4l2decoder ! /);
    expect(buildPipeline(file('/v/a.ts'), { gst, format: 'rgb' }).launch).toMatch(/ ! tsdemux ! queue ! h264parse ! nvv4l2decoder ! /);
    // Elementary streams: the parser from the extension, whatever --codec says.
    expect(buildPipeline(file('/v/a.h265'), { gst, format: 'rgb', codec: 'h264' }).launch).toMatch(/^filesrc location="\/v\/a\.h265" ! h265parse ! nvv4l2decoder/);
    for (const ext of Object.keys(JETSON_DEMUXERS)) expect(buildPipeline(file(`/v/a.${ext}`), { gst, format: 'rgb', ...model }).launch, ext).not.toContain('decodebin');
    // VP8/VP9 (webm) and Theora (ogv) are not H.26x: decodebin still picks for them.
    expect(buildPipeline(file('/v/a.webm'), { gst, format: 'rgb' }).launch).toContain('decodebin');
    // The desktop keeps decodebin.
    expect(buildPipeline(file('/v/a.mp4'), { gst: CPU_GST, format: 'rgb' }).launch).toContain('! decodebin');
  });

  it('MJPEG USB camera: image/jpeg caps, jpegparse, nvv4l2decoder mjpeg=1, and the mode fixes the size (no probe)', () => {
    const cam = buildPipeline(v4l2({ width: 1280, height: 720, fps: 30, format: 'mjpeg' }), { gst, format: 'bgr', ...model });
    expect(cam.launch).toBe(
      'v4l2src device="/dev/video0" ! image/jpeg,width=1280,height=720,framerate=30/1 ! jpegparse ! nvv4l2decoder mjpeg=1'
      + ' ! queue max-size-buffers=1 leaky=downstream ! nvvidconv ! video/x-raw,format=BGRx,width=300,height=300 ! videoconvert ! video/x-raw,format=BGR'
      + ' ! appsink name=sink drop=true max-buffers=1 sync=false',
    );
    expect(cam.probe).toBeUndefined();
    expect(declaredSourceSize(v4l2({ width: 1280, height: 720, format: 'mjpeg' }))).toEqual({ width: 1280, height: 720 });
    // Without a size the probe takes jpegparse's caps, before the decoder.
    const any = buildPipeline(v4l2({ format: 'mjpeg' }), { gst, format: 'bgr', ...model });
    expect(teeInput(any.launch)).toBe('jpegparse');
    expect(any.launch).toContain('tee name=t ! nvv4l2decoder mjpeg=1 ! queue');
  });

  it('raw USB camera: its caps straight into nvvidconv; no format given keeps decodebin', () => {
    expect(buildPipeline(v4l2({ width: 640, height: 480, format: 'raw' }), { gst, format: 'rgb', ...model }).launch).toMatch(
      /^v4l2src device="\/dev\/video0" ! video\/x-raw,width=640,height=480 ! queue max-size-buffers=1 leaky=downstream ! nvvidconv ! /,
    );
    expect(buildPipeline(v4l2({}), { gst, format: 'rgb', ...model }).launch).toContain('decodebin');
    // (v4l2://...?format= is parsed only for a device that exists; csi:// and test:// have no format.)
    expect(() => parseSourceUri('csi://0?format=mjpeg')).toThrow(/unknown parameter "format"/);
  });

  it('no Jetson pipeline puts the probe after the hardware decoder', () => {
    const descs: SourceDesc[] = [
      { kind: 'rtsp', url: 'rtsp://cam/x', transport: 'tcp' } as SourceDesc,
      file('/v/a.mp4'), file('/v/a.h264'), v4l2({ format: 'mjpeg' }),
    ];
    for (const d of descs) {
      for (const codec of ['h264', 'h265'] as const) {
        const b = buildPipeline(d, { gst, format: 'bgr', codec, ...model });
        expect(b.probe, JSON.stringify(d)).toBe('probe');
        expect(teeInput(b.launch), b.launch).toMatch(/^(h264parse|h265parse|jpegparse)$/);
      }
    }
  });
});
