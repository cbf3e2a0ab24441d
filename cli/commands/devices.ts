import { detectDevice } from '../../devices/detect.js';
import { listProfiles } from '../../devices/profiles.js';
import type { DeviceProfile } from '../../devices/types.js';
import { parseFlags, type Command } from '../args.js';

const USAGE = `Usage: ssd devices [--json] [--root DIR]

Lists the built-in device profiles (execution providers, GStreamer elements, CUDA architecture,
suggested input size and precision, known limits) and marks the one that matches this machine,
detected from /etc/nv_tegra_release, /proc/device-tree/model and nvidia-smi.

Options:
  --json        one JSON object: { detected, evidence, profiles }
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
    const { values } = parseFlags('devices', argv, { json: { type: 'boolean' }, root: { type: 'string' } }, false);
    const detection = detectDevice(values.root === undefined ? {} : { root: values.root });
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
