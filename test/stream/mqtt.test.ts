// ssd stream --mqtt against a real Mosquitto broker on 127.0.0.1 (own config file, no persistence):
// a subscriber receives one message per frame; the broker restarts and messages resume.
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { gstAvailable } from '../../runtime/stream/gst.js';
import { parseMqttUrl, topicFor, validateTopic } from '../../runtime/stream/mqtt.js';
import { MOSQUITTO, freePort, runSsdStream, startBroker, stop, tinyModel } from './helpers.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir } from '../helpers/temp-dir.js';

const running: Array<ChildProcess | undefined> = [];
afterAll(async () => { for (const p of running) await stop(p); });


describe('MQTT options', () => {
  it('topics: template with {source}/{host}, or T/<source> when sources share T', () => {
    expect(topicFor('cams/{source}/dets', 'src1', true)).toBe('cams/src1/dets');
    expect(topicFor('cams/dets', 'src1', false)).toBe('cams/dets');
    expect(topicFor('cams/dets', 'src1', true)).toBe('cams/dets/src1');
    expect(() => validateTopic('a/#')).toThrow(/no wildcards/);
    expect(() => parseMqttUrl('http://broker')).toThrow(/scheme must be mqtt/);
    expect(parseMqttUrl('mqtt://broker:1883').port).toBe('1883');
  });
});

describe.skipIf(!gstAvailable() || !existsSync(MOSQUITTO))('MQTT with a Mosquitto broker', () => {
  it('one message per frame at QoS 1; publishing resumes after the broker restarts', async () => {
    const dir = tempDir('ssd-stream-');
    const model = tinyModel(dir);
    const port = await freePort();
    let broker = await startBroker(dir, port);
    running.push(broker);
    const received: Array<{ topic: string; rec: Record<string, unknown> }> = [];
    const sub = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 200 });
    try {
      await new Promise<void>((resolve, reject) => {
        sub.on('connect', () => sub.subscribe('ssd/test/#', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
      });
      sub.on('message', (topic, payload) => received.push({ topic, rec: JSON.parse(payload.toString()) as Record<string, unknown> }));
      const run = runSsdStream(['test://ball?width=160&height=120&fps=30', '--model', model, '--threshold', '0.3',
        '--mqtt', `mqtt://127.0.0.1:${port}`, '--topic', 'ssd/test/{source}', '--qos', '1', '--connect-timeout', '120']);
      running.push(run.proc);
      const messages = (n: number, what: string) => waitFor(() => received.length >= n, what, { detail: run.stderr });
      await messages(10, '10 messages');
      expect(received[0]!.topic).toBe('ssd/test/src0');
      // Every message is the frame's JSON line; frames arrive in order, none twice.
      const frames = received.map((m) => m.rec.frame as number);
      expect(frames.every((f, i) => i === 0 || f > frames[i - 1]!)).toBe(true);
      const m = received[3]!.rec;
      // The stdout line and the MQTT message travel separately: wait for the line too.
      await run.until((lines) => lines.some((l) => l.frame === m.frame), `the JSON line of frame ${String(m.frame)}`);
      expect(m).toEqual(run.lines.find((l) => l.frame === m.frame));

      await stop(broker);
      const lastBefore = received[received.length - 1]!.rec.frame as number;
      // Restart once ssd stream has seen the broker go (its one-line notice), not after a guessed pause.
      await run.until(() => /mqtt: .*retrying every 2 s/.test(run.stderr()), 'ssd stream to notice the broker is gone');
      broker = await startBroker(dir, port);
      running.push(broker);
      const n = received.length;
      await messages(n + 10, 'messages after the broker restart');
      expect(received[received.length - 1]!.rec.frame as number).toBeGreaterThan(lastBefore);
      expect(run.stderr()).toMatch(/mqtt: reconnected to mqtt:\/\/127\.0\.0\.1:\d+/);
      run.proc.kill('SIGTERM');
      expect(await run.exited).toBe(0);
    } finally {
      sub.end(true);
    }
  }, 900_000); // ~6 s idle; the bound ends a hang only
});
