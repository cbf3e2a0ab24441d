import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { numDefaultBoxes, specByName, SPECS } from '../../core/specs.js';
import { configFiles, knownConfigs, resolveConfig, resolveRunLength, DEFAULT_RECIPE } from '../../train/config.js';
import { tempDir } from '../helpers/temp-dir.js';

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
    const dir = tempDir('ssd-train-config-');
    const file = join(dir, 'mine.json');
    writeFileSync(file, JSON.stringify({ base: 'ssd300', name: 'my-ssd', train: { iterations: 10, batchSize: 2 }, augment: [{ type: 'Resize' }, { type: 'Normalize' }] }));
    const c = resolveConfig(file);
    expect(c.spec.name).toBe('my-ssd');
    expect(c.train.iterations).toBe(10);
    expect(c.train.lr).toBe(1e-3);
    expect(c.augment).toHaveLength(2);
  });

  it('errors name the file and the field', () => {
    const dir = tempDir('ssd-train-config-bad-');
    const write = (name: string, body: unknown) => { const f = join(dir, name); writeFileSync(f, typeof body === 'string' ? body : JSON.stringify(body)); return f; };
    expect(() => resolveConfig('nope')).toThrow(/unknown config "nope"/);
    expect(() => resolveConfig(join(dir, 'missing.json'))).toThrow(/missing\.json: no such file/);
    expect(() => resolveConfig(write('syntax.json', '{ "base": '))).toThrow(SsdError);
    expect(() => resolveConfig(write('nobase.json', { train: {} }))).toThrow(/needs "base"/);
    expect(() => resolveConfig(write('field.json', { base: 'ssd300', train: { lr: 'fast' } }))).toThrow(/field\.json\.train\.lr must be a number/);
    expect(() => resolveConfig(write('unknown.json', { base: 'ssd300', train: { learningRate: 1 } }))).toThrow(/unknown\.json: unknown key train\.learningRate/);
    expect(() => resolveConfig(write('stpes.json', { base: 'ssd300', train: { stpes: [10] } }))).toThrow(/unknown key train\.stpes \(did you mean steps\?\)/);
    expect(() => resolveConfig(write('batch.json', { base: 'ssd300', train: { batchSize: 0 } }))).toThrow(/train\.batchSize must be >= 1/);
    // Spec overrides are validated by the core (the message names the spec field).
    expect(() => resolveConfig(write('size.json', { base: 'ssd300', inputSize: 320 }))).toThrow(/maps\[0\]\.size/);
  });

  it('unknown keys are refused with the nearest known name, naming the file (issue: batchnorm was accepted and ignored)', () => {
    const dir = tempDir('ssd-train-config-keys-');
    const write = (name: string, body: unknown) => { const f = join(dir, name); writeFileSync(f, JSON.stringify(body)); return f; };
    const err = (body: unknown): string => {
      try {
        resolveConfig(write('c.json', body));
      } catch (e) {
        expect(e).toBeInstanceOf(SsdError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    const file = join(dir, 'c.json');
    expect(err({ base: 'ssd300', batchnorm: true })).toBe(`config ${file}: unknown key batchnorm (did you mean batchNorm?)`);
    expect(err({ base: 'ssd300', postprocess: { nmsThresh: 0.5 } })).toBe(`config ${file}: unknown key postprocess.nmsThresh (did you mean nmsThreshold?)`);
    expect(err({ base: 'ssd300', input: { meanRGB: [1, 2, 3] } })).toMatch(/unknown key input\.meanRGB/);
    expect(err({ base: 'ssd300', agument: [] })).toMatch(/unknown key agument \(did you mean augment\?\)/);
    expect(err({ base: 'ssd300', train: { lr: 0.1, batchsize: 4 } })).toMatch(/unknown key train\.batchsize \(did you mean batchSize\?\)/);
    // Inside lists of objects too (layers, sources, maps).
    const tiny = specByName('ssd-tiny');
    const layers = tiny.layers.map((l, i) => (i === 0 ? { ...l, dilatoin: 1 } : l));
    expect(err({ base: 'ssd-tiny', layers })).toMatch(/unknown key layers\[0\]\.dilatoin \(did you mean dilation\?\)/);
    // And the right spelling works.
    expect(resolveConfig(write('ok.json', { base: 'ssd300', batchNorm: true })).spec.batchNorm).toBe(true);
  });

  it('overrides merge deeply into the base: a nested postprocess override keeps its siblings; lists replace', () => {
    const dir = tempDir('ssd-train-config-merge-');
    const file = join(dir, 'merge.json');
    writeFileSync(file, JSON.stringify({ base: 'ssd300', postprocess: { nmsThreshold: 0.5 }, input: { mean: [1, 2, 3] }, labels: ['background', 'cat', 'dog'] }));
    const c = resolveConfig(file);
    const base = specByName('ssd300');
    expect(c.spec.postprocess).toEqual({ ...base.postprocess, nmsThreshold: 0.5 });
    expect(c.spec.input).toEqual({ channelOrder: base.input.channelOrder, mean: [1, 2, 3] });
    expect(c.spec.labels).toEqual(['background', 'cat', 'dog']);
    expect(c.spec.layers).toEqual(base.layers);
    // A chain: a config based on a config file keeps the middle one's choices.
    const chained = join(dir, 'chained.json');
    writeFileSync(chained, JSON.stringify({ base: file, postprocess: { keepTopK: 100 }, train: { lr: 0.01 } }));
    const c2 = resolveConfig(chained);
    expect(c2.spec.postprocess).toEqual({ ...base.postprocess, nmsThreshold: 0.5, keepTopK: 100 });
    expect(c2.spec.input.mean).toEqual([1, 2, 3]);
    expect(c2.train.lr).toBe(0.01);
    // Loading does not change the base config for later users.
    expect(resolveConfig('ssd300').spec.postprocess).toEqual(base.postprocess);
  });

  it('augment is validated when the config is loaded (before any run directory exists)', () => {
    const dir = tempDir('ssd-train-config-augment-');
    const file = join(dir, 'aug.json');
    writeFileSync(file, JSON.stringify({ base: 'ssd300', augment: [{ type: 'Resize' }, { type: 'RandomFlip', prob: 0.5 }] }));
    expect(() => resolveConfig(file)).toThrow(`config ${file}: augment[1]: RandomFlip has no parameter "prob" (known: p)`);
    writeFileSync(file, JSON.stringify({ base: 'ssd300', augment: [{ type: 'Expand', ratioRnge: [1, 2] }] }));
    expect(() => resolveConfig(file)).toThrow(/augment\[0\]: Expand has no parameter "ratioRnge" \(did you mean ratioRange\?\)/);
    writeFileSync(file, JSON.stringify({ base: 'ssd300', augment: [{ type: 'Zoom' }] }));
    expect(() => resolveConfig(file)).toThrow(/augment\[0\]\.type must be one of/);
    writeFileSync(file, JSON.stringify({ base: 'ssd300', augment: { type: 'Resize' } }));
    expect(() => resolveConfig(file)).toThrow(/augment must be a list/);
  });

  it('knownConfigs lists exactly the shipped files and the built-in specs, and each one loads', () => {
    expect(configFiles()).toContain('digits');
    const names = knownConfigs();
    expect(names).toEqual([...configFiles(), ...Object.keys(SPECS)]);
    for (const name of names) expect(resolveConfig(name).spec.name, name).toBeTruthy();
    expect(() => resolveConfig('ssd300-voc')).toThrow(/unknown config "ssd300-voc"/);
    expect(() => resolveConfig('ssd30')).toThrow(/unknown config "ssd30" \(did you mean ssd300 /);
  });

  it('--iterations scales the decay steps with the run (issue: 300 iterations kept steps 3300/3900 of 4200)', () => {
    const digits = resolveConfig('digits').train;
    expect(digits).toMatchObject({ iterations: 4600, steps: [3550, 4200] });
    const r = resolveRunLength(digits, 2000, { iterations: 300 });
    expect(r.recipe.iterations).toBe(300);
    expect(r.recipe.steps).toEqual([232, 274]); // 3550 / 4600 * 300 = 231.5, 4200 / 4600 * 300 = 273.9
    expect(r.recipe.warmup).toBe(digits.warmup);
    expect(r.notes).toEqual(['schedule: --iterations 300: 300 iterations instead of 4600; lr decay steps 3550, 4200 -> 232, 274 (same fractions of the run; --steps sets them)']);
    // Steps given on the command line are taken as they are, and nothing is said.
    expect(resolveRunLength(digits, 2000, { iterations: 300, steps: [100] })).toEqual({ recipe: { ...digits, iterations: 300, steps: [100] }, notes: [] });
    // --epochs: 2 epochs of 2000 images at batch 8 = 500 iterations.
    expect(resolveRunLength(digits, 2000, { epochs: 2 }).recipe).toMatchObject({ iterations: 500, steps: [386, 457] }); // 3550, 4200 of 4600
    // The config's own length: nothing changes.
    expect(resolveRunLength(digits, 2000)).toEqual({ recipe: digits, notes: [] });
    // A recipe in epochs resolves to iterations (SSD recipe: 120k iterations, steps 80k/100k -> 2/3, 5/6).
    const epochs = resolveRunLength({ ...DEFAULT_RECIPE, epochs: 3, batchSize: 10 }, 1000);
    expect(epochs.recipe).toMatchObject({ iterations: 300, steps: [200, 250] });
    expect(epochs.recipe.epochs).toBeUndefined();
  });
});
