// The on-device check (issue 14): `ssd devices --check` / scripts/jetson/check.sh. Here (no GPU) it
// must report the CPU honestly: PASS on the cpu profile, FAIL naming why on a Jetson profile.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { getProfile } from '../../devices/profiles.js';
import { formatCheckTable, gstElementsOf, runDeviceCheck, type CheckRow } from '../../runtime/device-check.js';
import { writeTinyModel } from '../runtime/helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

const REPO = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const model = writeTinyModel(tempDir('ssd-check-'));

async function check(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // Engine caches of the Jetson profiles go to a temp dir, not this machine's home.
  const env = { ...process.env, SSD_CACHE_DIR: tempDir('ssd-check-cache-') };
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd: REPO, env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('ssd devices --check', () => {
  it('cpu profile: the provider in use is the one it asks for; GPU rows are skipped, not passed', async () => {
    const r = await check('bash', [join(REPO, 'scripts/jetson/check.sh'), '--model', model, '--device', 'cpu', '--runs', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { device: string; rows: CheckRow[] };
    expect(out.device).toBe('cpu');
    const row = (name: string) => out.rows.find((x) => x.check === name)!;
    expect(row('provider in use')).toMatchObject({ result: 'pass', detail: 'cpu' });
    expect(row('fp16 in effect').result).toBe('skip');
    expect(row('engine cache hit on 2nd start').result).toBe('skip');
    expect(row('model fps')).toMatchObject({ result: 'pass', detail: expect.stringMatching(/^\d+\.\d fps on cpu \(3 runs/) });
    expect(out.rows.map((x) => x.check)).toContain('GStreamer elements');
  }, 600_000); // a child process opening a model twice: seconds idle; the bound ends a hang only

  it('a Jetson profile on this machine: FAIL, with the provider that really runs and why TensorRT and CUDA were skipped', async () => {
    const r = await check(process.execPath, [join(REPO, 'bin/ssd.js'), 'devices', '--check', '--model', model, '--device', 'orin-nano', '--runs', '2']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ssd devices --check: device orin-nano, model /m);
    expect(r.stdout).toMatch(/^provider in use +FAIL +cpu \(profile orin-nano prefers tensorrt\); skipped tensorrt: .*; cuda: /m);
    expect(r.stdout).toMatch(/^fp16 in effect +FAIL +not on TensorRT \(runs on cpu\)$/m);
    expect(r.stdout).toMatch(/^engine cache hit on 2nd start +FAIL /m);
    expect(r.stdout).toMatch(/^GStreamer elements +FAIL +missing .*nvv4l2decoder/m);
  }, 600_000); // a child process opening a model: seconds idle; the bound ends a hang only

  it('bad input is one line', async () => {
    const noModel = await check(process.execPath, [join(REPO, 'bin/ssd.js'), 'devices', '--check']);
    expect(noModel.code).not.toBe(0);
    expect(noModel.stderr.trim()).toBe('ssd devices: --check needs --model MODEL.onnx (the exported model to check with)');
    const stray = await check(process.execPath, [join(REPO, 'bin/ssd.js'), 'devices', '--model', model]);
    expect(stray.stderr.trim()).toBe('ssd devices: --model needs --check');
  }, 600_000);
});

describe('runDeviceCheck', () => {
  it('the GStreamer row lists what the profile\'s pipelines need and what is missing', async () => {
    const orin = getProfile('orin-nx');
    const need = gstElementsOf(orin);
    expect(need).toEqual(expect.arrayContaining(['nvv4l2decoder', 'nvvidconv', 'nvarguscamerasrc', 'jpegparse', 'qtdemux', 'h264parse', 'appsink']));
    const rows = await runDeviceCheck({ profile: getProfile('cpu'), modelPath: model, runs: 1, hasElement: (n) => n !== 'avdec_h265' });
    expect(rows.at(-1)).toEqual({ check: 'GStreamer elements', result: 'fail', detail: expect.stringMatching(/^missing avdec_h265 of \d+$/) });
    const none = await runDeviceCheck({ profile: getProfile('cpu'), modelPath: model, runs: 1, hasElement: () => undefined });
    expect(none.at(-1)!.detail).toMatch(/gst-inspect-1\.0 not found \(sudo apt-get install gstreamer1\.0-tools\)/);
    const slow = await runDeviceCheck({ profile: getProfile('cpu'), modelPath: model, runs: 1, minFps: 1e6, hasElement: () => true });
    expect(slow.find((r) => r.check === 'model fps')).toMatchObject({ result: 'fail', detail: expect.stringContaining('needs >= 1000000') });
    expect(formatCheckTable(slow).split('\n')[0]).toMatch(/^check +result +detail$/);
  }, 600_000);
});
