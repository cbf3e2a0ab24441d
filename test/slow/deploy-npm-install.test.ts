/**
 * Opt-in (SSD_SLOW=1): what a device does on its first deploy, here: `npm install --omit=dev` of the
 * runtime bundle's own package.json (offline, from this machine's npm cache; gstreamer-superficial is
 * compiled by node-gyp), then the bundle runs on its own node_modules and finds the same detections as
 * the TypeScript checkout. About 30-60 s.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { specByName } from '../../core/specs.js';
import { buildProfiles } from '../../devices/profiles.js';
import { buildBundle } from '../../deploy/bundle.js';
import { buildOnnxModel } from '../../export/build.js';
import { tempDir } from '../helpers/temp-dir.js';

const REPO = join(import.meta.dirname, '..', '..');
const tmp = tempDir('ssd-npm-bundle-');

describe('the runtime bundle installs with npm and runs on its own dependencies', () => {
  it('npm install --omit=dev --offline, then ssd detect matches the checkout', async () => {
    const model = join(tmp, 'm.onnx');
    writeFileSync(model, buildOnnxModel({ spec: specByName('ssd-tiny'), seed: 3 }));
    const image = join(tmp, 'img.png');
    await sharp({ create: { width: 200, height: 150, channels: 3, background: { r: 240, g: 240, b: 240 } } })
      .composite([{ input: Buffer.from('<svg width="60" height="80"><rect width="60" height="80" fill="black"/></svg>'), left: 70, top: 30 }])
      .png()
      .toFile(image);
    const out = join(tmp, 'bundle');
    const profile = buildProfiles(join(tmp, 'cache')).find((p) => p.name === 'cpu')!;
    await buildBundle({
      repoRoot: REPO,
      outDir: out,
      profile,
      modelPath: model,
      service: { serviceName: 'ssd', baseDir: tmp, profileName: 'cpu', nodePath: process.execPath, sources: ['test://'], streamArgs: [] },
    });
    const npm = spawnSync('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--no-package-lock', '--offline'], {
      cwd: out,
      encoding: 'utf8',
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
      timeout: 400_000,
    });
    expect(npm.status, npm.stderr).toBe(0);
    expect(existsSync(join(out, 'node_modules', '@tensorflow'))).toBe(false);
    expect(existsSync(join(out, 'node_modules', 'onnxruntime-node'))).toBe(true);

    const deployedJson = join(tmp, 'deployed.json');
    execFileSync(process.execPath, ['bin/ssd.js', 'detect', 'model/model.onnx', image, '--coco-results', deployedJson, '--threshold', '0.05'], { cwd: out, stdio: 'ignore' });
    const refJson = join(tmp, 'ref.json');
    execFileSync(process.execPath, [join(REPO, 'bin/ssd.js'), 'detect', model, image, '--coco-results', refJson, '--threshold', '0.05', '--device', 'cpu'], { cwd: REPO, stdio: 'ignore' });
    expect(JSON.parse(readFileSync(deployedJson, 'utf8'))).toEqual(JSON.parse(readFileSync(refJson, 'utf8')));
  }, 600_000);
});
