import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectDevice, detectFromEvidence, parseNvidiaSmi, parseTegraRelease } from '../../devices/detect.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'devices');
const noSmi = () => undefined;

describe('detectDevice on a fake root per Jetson', () => {
  const cases: [fixture: string, profile: string, jetpack: string][] = [
    ['jetson-nano', 'jetson-nano', 'JetPack 4'],
    ['jetson-tx2', 'jetson-tx2', 'JetPack 4'],
    ['xavier-nx', 'xavier-nx', 'JetPack 5'],
    ['xavier-agx', 'xavier-agx', 'JetPack 5'],
    ['orin-nano', 'orin-nano', 'JetPack 6'],
    ['orin-nx', 'orin-nx', 'JetPack 6'],
    ['orin-agx', 'orin-agx', 'JetPack 6'],
  ];
  for (const [fixture, profile, jetpack] of cases) {
    it(`${fixture} -> ${profile}`, () => {
      let smiCalls = 0;
      const d = detectDevice({ root: join(FIXTURES, fixture), runNvidiaSmi: () => (smiCalls++, 'should not be asked') });
      expect(d.profile.name).toBe(profile);
      expect(d.evidence.join('\n')).toContain(jetpack);
      expect(d.evidence.join('\n')).toContain('/proc/device-tree/model');
      // A Jetson is identified by its own files; nvidia-smi is not consulted.
      expect(smiCalls).toBe(0);
      // Each fixture's L4T release is the one its profile is written for: no mismatch note.
      expect(d.evidence.some((e) => e.startsWith('note:'))).toBe(false);
    });
  }

  it('an x86 desktop with a GPU -> x86-cuda, from nvidia-smi', () => {
    const d = detectDevice({ root: join(FIXTURES, 'x86-desktop'), runNvidiaSmi: () => 'NVIDIA GeForce RTX 4090, 8.9\n' });
    expect(d.profile.name).toBe('x86-cuda');
    expect(d.evidence.join(' ')).toContain('RTX 4090 (compute 8.9)');
  });

  it('no Jetson files and no nvidia-smi -> cpu', () => {
    const d = detectDevice({ root: join(FIXTURES, 'cpu-only'), runNvidiaSmi: noSmi });
    expect(d.profile.name).toBe('cpu');
  });

  it('a fake root never runs the real nvidia-smi by default', () => {
    expect(detectDevice({ root: join(FIXTURES, 'cpu-only') }).profile.name).toBe('cpu');
  });
});

describe('detectFromEvidence', () => {
  it('Orin Nano is not mistaken for the (older) Jetson Nano', () => {
    expect(detectFromEvidence({ model: 'NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\0' }).profile.name).toBe('orin-nano');
    expect(detectFromEvidence({ model: 'NVIDIA Jetson Nano Developer Kit\0' }).profile.name).toBe('jetson-nano');
  });

  it('falls back to the compatible string when the model is unknown', () => {
    const d = detectFromEvidence({ model: 'Custom Carrier Board\0', compatible: 'acme,carrier\0nvidia,p3767-0000\0nvidia,tegra234\0' });
    expect(d.profile.name).toBe('orin-nx');
    expect(d.evidence.join(' ')).toContain('compatible string matches');
  });

  it('notes an Orin running JetPack 5 (L4T R35) against a JetPack 6 profile', () => {
    const d = detectFromEvidence({
      nvTegraRelease: '# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64',
      model: 'NVIDIA Jetson AGX Orin Developer Kit\0',
    });
    expect(d.profile.name).toBe('orin-agx');
    expect(d.evidence.some((e) => e.startsWith('note:') && e.includes('JetPack 5'))).toBe(true);
  });

  it('an unknown Tegra board uses cpu rather than a guessed CUDA architecture', () => {
    const d = detectFromEvidence({ nvTegraRelease: '# R36 (release), REVISION: 2.0, BOARD: generic', model: 'NVIDIA Jetson Thor\0' });
    expect(d.profile.name).toBe('cpu');
    expect(d.evidence.join(' ')).toContain('not one with a built-in profile');
  });

  it('nvidia-smi failure text is not a GPU', () => {
    expect(detectFromEvidence({ nvidiaSmi: 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.\n' }).profile.name).toBe('cpu');
  });
});

describe('parsers', () => {
  it('parseTegraRelease reads major, revision and board', () => {
    expect(parseTegraRelease('# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: x')).toEqual({
      major: 'R32',
      revision: '7.1',
      board: 't210ref',
    });
    expect(parseTegraRelease('garbage')).toBeUndefined();
  });

  it('parseNvidiaSmi reads one GPU per line', () => {
    expect(parseNvidiaSmi('NVIDIA A100-SXM4-40GB, 8.0\nNVIDIA GeForce GTX 1080, 6.1\n')).toEqual([
      { name: 'NVIDIA A100-SXM4-40GB', computeCap: '8.0' },
      { name: 'NVIDIA GeForce GTX 1080', computeCap: '6.1' },
    ]);
    expect(parseNvidiaSmi('')).toEqual([]);
  });
});
