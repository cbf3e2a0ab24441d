import { detectDevice } from '../../devices/detect.js';
import { existsSync } from 'node:fs';
import { SsdError } from '../../core/errors.js';
import { getProfile, listProfiles } from '../../devices/profiles.js';
import type { DeviceProfile } from '../../devices/types.js';
import { intFlag, numberFlag, parseFlags, type Command } from '../args.js';

const USAGE = `Usage: ssd devices [--json] [--root DIR]
       ssd devices --check --model MODEL.onnx [--device NAME] [--runs N] [--min-fps X] [--json]

Lists the built-in device profiles (execution providers, GStreamer elements, CUDA architecture,
suggested input size and precision, known limits) and marks the one that matches this machine,
detected from /etc/nv_tegra_release, /proc/device-tree/model and nvidia-smi.

--check opens the model on this machine and prints a pass/fail table of what really happens: the
provider onnxruntime runs it on, FP16 in effect (TensorRT engines built with FP16), an engine cache hit
on a second start, the model's fps, and the GStreamer elements the profile's pipelines need. Exit
status 1 when a row fails (scripts/jetson/check.sh runs it on a device).

Options:
  --json        one JSON object: { detected, evidence, profiles } (with --check: { device, rows })
  --check       the on-device pass/fail check (needs --model)
  --model PATH  the exported model to check with
  --device NAME the profile to hold the machine to (default: detected)
  --runs N      timed inference runs for the fps row (default 20)
  --min-fps X   fail the fps row below X (default: any rate passes)
  --root DIR    read the detection files under DIR instead of / (a copy of a device's files)
  -h, --help    this text`;

function providerLine(p: DeviceProfile): string {
  return p.providers.map((s) => s.name).join(' -> ');
}

const command: Command = {
  name: 'devices',
  summary: 'list device profiles and which one matches this machine',
  usage: USAGE,
  async run(argv) {
    const { values } = parseFlags('devices', argv, {
      json: { type: 'boolean' }, root: { type: 'string' }, check: { type: 'boolean' }, model: { type: 'string' },
      device: { type: 'string' }, runs: { type: 'string' }, 'min-fps': { type: 'string' },
    }, false);
    const detection = detectDevice(values.root === undefined ? {} : { root: values.root });
    if (values.check) {
      if (!values.model) throw new SsdError('--check needs --model MODEL.onnx (the exported model to check with)');
      if (!existsSync(values.model)) throw new SsdError(`--model ${values.model}: file not found`);
      const profile = values.device ? getProfile(values.device) : detection.profile;
      const runs = intFlag('runs', values.runs, 20, 1, 100_000);
      const minFps = numberFlag('min-fps', values['min-fps'], 0, 0, 1e6);
      // Loaded only for --check: listing profiles must not need onnxruntime.
      const { runDeviceCheck, formatCheckTable } = await import('../../runtime/device-check.js');
      const rows = await runDeviceCheck({ profile, modelPath: values.model, runs, minFps });
      if (values.json) console.log(JSON.stringify({ device: profile.name, detected: detection.profile.name, rows }, null, 2));
      else {
        console.log(`ssd devices --check: device ${profile.name}${values.device ? '' : ' (detected)'}, model ${values.model}`);
        console.log(formatCheckTable(rows));
      }
      return rows.some((r) => r.result === 'fail') ? 1 : 0;
    }
    for (const flag of ['model', 'runs', 'min-fps', 'device'] as const) {
      if (values[flag] !== undefined) throw new SsdError(`--${flag} needs --check`);
    }
    const profiles = listProfiles();
    if (values.json) {
      console.log(JSON.stringify({ detected: detection.profile.name, evidence: detection.evidence, profiles }, null, 2));
      return 0;
    }
    const width = Math.max(...profiles.map((p) => p.name.length));
    const lines: string[] = [];
    for (const p of profiles) {
      const mark = p.name === detection.profile.name ? '*' : ' ';
      lines.push(`${mark} ${p.name.padEnd(width)}  ${p.description}`);
      const facts = [
        `providers ${providerLine(p)}`,
        p.cudaArch !== undefined ? `sm_${p.cudaArch}` : undefined,
        `input ${p.suggestedInputSize} ${p.suggestedPrecision}`,
        `export --postprocess ${p.suggestedPostprocess}`,
        `decode ${p.gst.h264Decoder}`,
      ].filter((f): f is string => f !== undefined);
      lines.push(`  ${' '.repeat(width)}  ${facts.join(', ')}`);
      for (const limit of p.limits) lines.push(`  ${' '.repeat(width)}  - ${limit}`);
    }
    lines.push('', `This machine: ${detection.profile.name} (${detection.evidence.join('; ')})`);
    console.log(lines.join('\n'));
    return 0;
  },
};
export default command;
