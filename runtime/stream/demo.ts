/**
 * The built-in demo: `ssd stream` with no source and no model. A camera-like source of MNIST digits
 * (test split: digits the model never saw) composed into wide scenes by core/datasets/digits.ts; a
 * 256x256 window pans across each scene and back, then the next scene comes. Frames are made on
 * demand for the current instant at 15 fps, so the demo has the same newest-frame behaviour as a
 * camera and needs no camera, no GStreamer plugin, no download.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderDigitScene, type DigitScene } from '../../core/datasets/digits.js';
import type { Frame, FrameSource, SourceStats } from './frame.js';

/**
 * The model the demo runs: the small digit SSD trained by the project (see docs/train.md). Referenced
 * as a URL so that the deploy bundle sees it and ships it beside the runtime.
 */
export const DEMO_MODEL_PATH = fileURLToPath(new URL('../../models/digits-ssd.onnx', import.meta.url));

export const DEMO_URI = 'demo://digits';

export interface DemoOptions {
  width?: number;
  height?: number;
  fps?: number;
  /** Scene width as a multiple of the window width. */
  sceneScale?: number;
  /** Seconds per pan across a scene and back. */
  secondsPerScene?: number;
  seed?: number;
  /** Stop after this many scenes (undefined: forever). */
  scenes?: number;
}

export function demoModelAvailable(): boolean {
  return existsSync(DEMO_MODEL_PATH);
}

export class DemoSource implements FrameSource {
  readonly display = DEMO_URI;
  readonly live = true;
  readonly stats: SourceStats = { state: 'connecting', frames: 0, dropped: 0, reconnects: 0 };
  private readonly w: number;
  private readonly h: number;
  private readonly fps: number;
  private readonly sceneW: number;
  private readonly period: number;
  private readonly seed: number;
  private t0 = 0;
  private lastTick = -1;
  private scene: { index: number; scene: DigitScene } | undefined;
  private closed = false;
  private sleeping: { timer: NodeJS.Timeout; resolve: () => void } | undefined;

  constructor(readonly id: string, private readonly opts: DemoOptions = {}) {
    // Square, as the digits model was trained on square scenes (recall 0.82 against 0.76 at 320x240).
    this.w = opts.width ?? 256;
    this.h = opts.height ?? 256;
    this.fps = opts.fps ?? 15;
    this.sceneW = Math.round(this.w * (opts.sceneScale ?? 2));
    this.period = (opts.secondsPerScene ?? 8) * 1000;
    this.seed = opts.seed ?? 7;
  }

  async start(): Promise<void> {
    this.t0 = performance.now();
    this.sceneAt(0);
    this.stats.state = 'playing';
  }

  async next(): Promise<Frame | null> {
    if (this.closed || this.stats.state === 'ended') return null;
    let tick = Math.floor(((performance.now() - this.t0) * this.fps) / 1000);
    if (tick <= this.lastTick) {
      const due = this.t0 + ((this.lastTick + 1) * 1000) / this.fps;
      await this.sleep(due - performance.now());
      if (this.closed) return null;
      tick = Math.max(this.lastTick + 1, Math.floor(((performance.now() - this.t0) * this.fps) / 1000));
    }
    if (this.lastTick >= 0) this.stats.dropped += tick - this.lastTick - 1;
    this.lastTick = tick;
    const ms = (tick * 1000) / this.fps;
    const index = Math.floor(ms / this.period);
    if (this.opts.scenes !== undefined && index >= this.opts.scenes) {
      this.stats.state = 'ended';
      return null;
    }
    const { scene } = this.sceneAt(index);
    // Ping-pong pan: 0 -> max -> 0 over one period.
    const phase = (ms % this.period) / this.period;
    const maxX = this.sceneW - this.w;
    const x0 = Math.round(maxX * (phase < 0.5 ? phase * 2 : 2 - phase * 2));
    const data = Buffer.allocUnsafe(this.w * this.h * 3);
    const row = this.w * 3;
    for (let y = 0; y < this.h; y++) {
      const src = (y * this.sceneW + x0) * 3;
      data.set(scene.rgb.subarray(src, src + row), y * row);
    }
    this.stats.frames++;
    return {
      sourceId: this.id, seq: this.stats.frames, pts: ms / 1000, captureMs: Date.now(), captureMono: performance.now(),
      data, width: this.w, height: this.h, format: 'rgb', stride: row, sourceWidth: this.w, sourceHeight: this.h,
    };
  }

  prefetch(): void {}

  close(): void {
    this.closed = true;
    this.stats.state = 'closed';
    if (this.sleeping) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.resolve();
      this.sleeping = undefined;
    }
  }

  private sceneAt(index: number): { index: number; scene: DigitScene } {
    if (this.scene?.index !== index) {
      const scene = renderDigitScene(this.seed * 1000 + index, {
        width: this.sceneW, height: this.h, split: 'test',
        minDigits: 5, maxDigits: 10, minDigitSize: Math.round(this.h * 0.2), maxDigitSize: Math.round(this.h * 0.45),
      });
      this.scene = { index, scene };
    }
    return this.scene;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.sleeping = undefined; resolve(); }, Math.max(0, ms));
      this.sleeping = { timer, resolve };
    });
  }
}
