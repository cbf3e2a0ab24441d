import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { parsePipelineSource, parseSourceUri, redactUri } from '../../runtime/stream/uri.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('source URIs as jetson-inference users write them', () => {
  it('rtsp:// keeps credentials on the wire and hides the password everywhere else', () => {
    const s = parseSourceUri('rtsp://admin:s3cr3t@192.168.1.20:554/stream1');
    expect(s.desc).toEqual({ kind: 'rtsp', url: 'rtsp://admin:s3cr3t@192.168.1.20:554/stream1', transport: 'tcp' });
    expect(s.display).toBe('rtsp://admin:***@192.168.1.20:554/stream1');
    expect(s.live).toBe(true);
    expect(parseSourceUri('rtspu://cam/x').desc).toEqual({ kind: 'rtsp', url: 'rtsp://cam/x', transport: 'udp' });
    expect(parseSourceUri('rtspt://cam/x').desc).toMatchObject({ url: 'rtsp://cam/x', transport: 'tcp' });
  });

  it('rtp:// as jetson-inference writes it: @ for any local address, or an address (multicast group)', () => {
    expect(parseSourceUri('rtp://@:5000')).toMatchObject({ desc: { kind: 'rtp', address: undefined, port: 5000 }, live: true });
    expect(parseSourceUri('rtp://239.1.1.1:5004').desc).toEqual({ kind: 'rtp', address: '239.1.1.1', port: 5004 });
    expect(() => parseSourceUri('rtp://@:99999')).toThrow(/expected rtp:\/\/@:PORT/);
    expect(() => parseSourceUri('rtp://host')).toThrow(/expected rtp:\/\/@:PORT/);
  });

  it('files: file:// or a plain path, video extensions only, must exist', () => {
    const dir = tempDir('ssd-uri-');
    const clip = join(dir, 'clip.mp4');
    writeFileSync(clip, 'x');
    expect(parseSourceUri(clip)).toMatchObject({ desc: { kind: 'file', path: clip }, live: false });
    expect(parseSourceUri(`file://${clip}`).desc).toEqual({ kind: 'file', path: clip });
    expect(() => parseSourceUri(join(dir, 'missing.mkv'))).toThrow(/missing\.mkv: file not found/);
    const txt = join(dir, 'notes.txt');
    writeFileSync(txt, 'x');
    expect(() => parseSourceUri(txt)).toThrow(/not a video file extension \(\.txt\)/);
  });

  it('v4l2: /dev/videoN and v4l2:///dev/videoN; a missing device is an error naming it', () => {
    expect(() => parseSourceUri('/dev/video97')).toThrow(/\/dev\/video97 does not exist/);
    expect(() => parseSourceUri('v4l2:///dev/video97')).toThrow(/\/dev\/video97 does not exist/);
    expect(() => parseSourceUri('v4l2:///dev/sda')).toThrow(/expected a device like \/dev\/video0/);
  });

  it('csi://N with capture mode parameters', () => {
    expect(parseSourceUri('csi://0').desc).toEqual({ kind: 'csi', sensorId: 0, mode: {} });
    expect(parseSourceUri('csi://1?width=1920&height=1080&fps=30').desc).toEqual({ kind: 'csi', sensorId: 1, mode: { width: 1920, height: 1080, fps: 30 } });
    expect(() => parseSourceUri('csi://0?width=abc')).toThrow(/width must be a whole number/);
    expect(() => parseSourceUri('csi://0?gain=3')).toThrow(/unknown parameter "gain"/);
  });

  it('test:// with an optional pattern', () => {
    expect(parseSourceUri('test://').desc).toEqual({ kind: 'test', pattern: 'smpte', mode: {} });
    expect(parseSourceUri('test://ball?width=300&height=300').desc).toEqual({ kind: 'test', pattern: 'ball', mode: { width: 300, height: 300 } });
    expect(() => parseSourceUri('test://nosuch')).toThrow(/unknown test pattern "nosuch"/);
  });

  it('unknown schemes and junk are one-line SsdErrors', () => {
    for (const bad of ['http://cam/x.mjpg', 'foo:bar', '']) {
      let err: unknown;
      try {
        parseSourceUri(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SsdError);
      expect((err as Error).message).not.toContain('\n');
    }
  });

  it('--pipeline must end in an appsink', () => {
    expect(parsePipelineSource('videotestsrc ! videoconvert ! video/x-raw,format=RGB ! appsink').desc.kind).toBe('pipeline');
    expect(() => parsePipelineSource('videotestsrc ! autovideosink')).toThrow(/must end in an appsink/);
  });

  it('redaction also covers URLs inside pipeline text', () => {
    expect(redactUri('rtspsrc location=rtsp://u:p@h/x ! fakesink')).toBe('rtspsrc location=rtsp://u:***@h/x ! fakesink');
  });
});
