import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { numDefaultBoxes, specByName } from '../../core/specs.js';
import { resolveConfig } from '../../train/config.js';
import { tempDir } from './helpers.js';

describe('training configs', () => {
  it('built-in spec names get the SSD-SPEC recipe', () => {
    const c = resolveConfig('ssd300');
    expect(c.spec.inputSize).toBe(300);
    expect(numDefaultBoxes(c.spec)).toBe(8732);
    expect(c.train).toMatchObject({ lr: 1e-3, momentum: 0.9, weightDecay: 5e-4, batchSize: 32, steps: [80_000, 100_000], iterations: 120_000, gamma: 0.1 });
    expect(c.augment.map((s) => s.type)).toEqual(['PhotoMetricDistortion', 'Expand', 'MinIoURandomCrop', 'RandomFlip', 'Resize', 'Normalize']);
  });

  it('the digits config (train/configs/digits.json) builds on ssd-digits', () => {
    const c = resolveConfig('digits');
    expect(c.spec.name).toBe('ssd-digits');
    expect(c.spec.labels).toEqual(specByName('ssd-digits').labels);
    // Mirrored digits are not digits: the digits recipe never flips.
    expect(c.augment.find((s) => s.type === 'RandomFlip')).toMatchObject({ p: 0 });
  });

  it('a JSON file with base + overrides + train + augment', () => {
    const dir = tempDir('config');
    const file = join(dir, 'mine.json');
    writeFileSync(file, JSON.stringify({ base: 'ssd300', name: 'my-ssd', train: { iterations: 10, batchSize: 2 }, augment: [{ type: 'Resize' }, { type: 'Normalize' }] }));
    const c = resolveConfig(file);
    expect(c.spec.name).toBe('my-ssd');
    expect(c.train.iterations).toBe(10);
    expect(c.train.lr).toBe(1e-3);
    expect(c.augment).toHaveLength(2);
  });

  it('errors name the file and the field', () => {
    const dir = tempDir('config-bad');
    const write = (name: string, body: unknown) => { const f = join(dir, name); writeFileSync(f, typeof body === 'string' ? body : JSON.stringify(body)); return f; };
    expect(() => resolveConfig('nope')).toThrow(/unknown config "nope"/);
    expect(() => resolveConfig(join(dir, 'missing.json'))).toThrow(/missing\.json: no such file/);
    expect(() => resolveConfig(write('syntax.json', '{ "base": '))).toThrow(SsdError);
    expect(() => resolveConfig(write('nobase.json', { train: {} }))).toThrow(/needs "base"/);
    expect(() => resolveConfig(write('field.json', { base: 'ssd300', train: { lr: 'fast' } }))).toThrow(/field\.json\.train\.lr must be a number/);
    expect(() => resolveConfig(write('unknown.json', { base: 'ssd300', train: { learningRate: 1 } }))).toThrow(/unknown field train\.learningRate/);
    expect(() => resolveConfig(write('batch.json', { base: 'ssd300', train: { batchSize: 0 } }))).toThrow(/train\.batchSize must be >= 1/);
    // Spec overrides are validated by the core (the message names the spec field).
    expect(() => resolveConfig(write('size.json', { base: 'ssd300', inputSize: 320 }))).toThrow(/maps\[0\]\.size/);
  });
});
