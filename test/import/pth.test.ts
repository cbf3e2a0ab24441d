// The PyTorch .pth reader (train/import/pth.ts, pickle.ts, zip.ts) on files written by torch.save itself
// (fixtures from test/import/fixtures/make-pth-fixtures.py, Debian's torch 1.13): values, strided views,
// dtypes, both containers, refusal of anything executable, and fuzzing with every truncation and byte
// corruption of the small files (a one-line SsdError or a valid result, never a crash or a hang).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { readPth, type PthFile } from '../../train/import/pth.js';
import { unpickle } from '../../train/import/pickle.js';
import { crc32, openZip } from '../../train/import/zip.js';

const fixture = (name: string): Uint8Array => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const expected = JSON.parse(readFileSync(new URL('./fixtures/small.json', import.meta.url), 'utf8')) as Record<string, { shape: number[]; values: number[] }>;

function checkSmall(file: PthFile): void {
  expect(file.wrapper).toBe('model');
  expect([...file.tensors.keys()]).toEqual(Object.keys(expected));
  for (const [name, want] of Object.entries(expected)) {
    const t = file.tensors.get(name)!;
    expect(t.shape, name).toEqual(want.shape);
    expect(t.data.length, name).toBe(want.values.length);
    // float32 values are exact; float64 ones are rounded to float32.
    want.values.forEach((v, i) => expect(Math.abs(t.data[i]! - v), `${name}[${i}]`).toBeLessThanOrEqual(Math.abs(v) * 1e-7));
  }
}

/** Runs the reader; returns 'ok' or the error line. Any error that is not a one-line SsdError fails. */
function outcome(bytes: Uint8Array): string {
  try {
    readPth(bytes, 'f.pth');
    return 'ok';
  } catch (err) {
    if (!(err instanceof SsdError)) throw new Error(`not an SsdError: ${String(err)}`, { cause: err });
    if (err.message.includes('\n')) throw new Error(`not one line: ${err.message}`);
    return err.message;
  }
}

describe('readPth on torch.save files', () => {
  it('reads the zip container: dtypes, 0-dim, transposed and offset views, {"model": ...}', () => {
    const f = readPth(fixture('small-zip.pth'), 'small-zip.pth');
    expect(f.container).toBe('zip');
    checkSmall(f);
  });

  it('reads the legacy container (torch < 1.6, as ssd.pytorch and lufficc published)', () => {
    const f = readPth(fixture('small-legacy.pth'), 'small-legacy.pth');
    expect(f.container).toBe('legacy');
    checkSmall(f);
  });

  it('refuses a pickle that names os.system, in one line, without running it', () => {
    expect(() => readPth(fixture('evil.pth'), 'evil.pth')).toThrow(/^evil\.pth.*unsupported pickle global (posix|os)\.system/);
  });

  it('refuses what is not a checkpoint', () => {
    expect(outcome(new TextEncoder().encode('hello world'))).toMatch(/not a PyTorch checkpoint/);
    expect(outcome(new Uint8Array(0))).toMatch(/not a PyTorch checkpoint/);
  });

  it('checks CRCs (crc32 of "123456789" is cbf43926)', () => {
    expect(crc32(new TextEncoder().encode('123456789')).toString(16)).toBe('cbf43926');
  });
});

describe('fuzzing', () => {
  for (const name of ['small-zip.pth', 'small-legacy.pth']) {
    it(`${name}: every truncation is a one-line error`, () => {
      const bytes = fixture(name);
      for (let n = 0; n < bytes.length; n++) expect(outcome(bytes.subarray(0, n)), `${n} bytes`).not.toBe('ok');
    });

    it(`${name}: every single-byte corruption is a one-line error or a valid read`, () => {
      const bytes = fixture(name);
      const messages = new Set<string>();
      for (let i = 0; i < bytes.length; i++) {
        for (const mask of [0xff, 0x01, 0x80]) {
          const bad = Uint8Array.from(bytes);
          bad[i] = bad[i]! ^ mask;
          messages.add(outcome(bad).replace(/\d+/g, 'N'));
        }
      }
      expect(messages.size).toBeGreaterThan(3);
    });
  }

  it('the unpickler alone on every truncation of data.pkl', () => {
    const zip = openZip(fixture('small-zip.pth'), 'z');
    const name = [...zip.entries.keys()].find((n) => n.endsWith('/data.pkl'))!;
    const pkl = zip.read(name);
    const pid = () => ({ kind: 'storage' as const, dtype: 'float32' as const, key: '0', numel: 100, location: 'cpu' });
    expect(() => unpickle(pkl, 'p', pid)).not.toThrow();
    for (let n = 0; n < pkl.length; n++) expect(() => unpickle(pkl.subarray(0, n), 'p', pid)).toThrow(SsdError);
  });
});
