// /healthz while the model loads (issue 14, item 5): the page is up before Detector.load, and a first
// TensorRT start builds its engine for minutes; the health check says so instead of failing.
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { StreamHttpServer, type StreamPhase } from '../../runtime/stream/http-server.js';
import { StreamMetrics } from '../../runtime/stream/metrics.js';

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('/healthz phases', () => {
  it('"loading model", then "building engine" (200, not ready), then the sources once running', async () => {
    let phase: StreamPhase = 'loading model';
    const server = new StreamHttpServer({
      address: { host: '127.0.0.1', port: 0 }, metrics: new StreamMetrics(), log: () => {}, phase: () => phase,
      sources: () => [],
    });
    const { port } = await server.listen();
    try {
      const url = `http://127.0.0.1:${port}/healthz`;
      const loading = await get(url);
      expect(loading.status).toBe(200);
      expect(JSON.parse(loading.body)).toEqual({ status: 'loading model', ready: false, sources: [] });
      phase = 'building engine';
      const building = await get(url);
      expect(building.status).toBe(200);
      expect(JSON.parse(building.body)).toMatchObject({ status: 'building engine', ready: false });
      phase = 'running';
      expect(JSON.parse((await get(url)).body)).toMatchObject({ status: 'ok', sources: [] });
    } finally {
      await server.close();
    }
  });
});
