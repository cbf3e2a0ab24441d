import { SsdError, oneLine } from '../core/errors.js';
import { FLAG_CONVENTIONS, nearestNames, type Command } from './args.js';

/**
 * Every subcommand, loaded only when it runs: `ssd detect` on a Jetson must not pay for (or even have
 * installed) what `ssd train` imports.
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ default: Command }> }> = {
  train: { summary: 'train an SSD with TensorFlow.js (VOC, COCO or digits data)', load: () => import('./commands/train.js') },
  'export-onnx': { summary: 'export a checkpoint (or a random init) to ONNX', load: () => import('./commands/export-onnx.js') },
  detect: { summary: 'run a model on images: annotated images, COCO results JSON, VOC comp4 files', load: () => import('./commands/detect.js') },
  stream: { summary: 'detect on camera/RTSP/file streams (the main job; no args = built-in demo)', load: () => import('./commands/stream.js') },
  eval: { summary: 'VOC07/VOC12/COCO mAP of detections against ground truth', load: () => import('./commands/eval.js') },
  bench: { summary: 'benchmarks: --core (decode+NMS) or a model (session vs pipeline fps)', load: () => import('./commands/bench.js') },
  quantize: { summary: 'INT8 (QDQ) quantization calibrated on real pictures, guarded by mAP', load: () => import('./commands/quantize.js') },
  import: { summary: 'import published SSD weights (Caffe, torchvision, ssd.pytorch, lufficc) as a checkpoint', load: () => import('./commands/import.js') },
  deploy: { summary: 'bundle the runtime and deploy it to a Jetson over ssh', load: () => import('./commands/deploy.js') },
  devices: { summary: 'list device profiles and which one matches this machine', load: () => import('./commands/devices.js') },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return ['Usage: ssd <command> [options]', '', 'Commands:', ...lines, '', 'Run "ssd <command> --help" for the options of one command.'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 1 : 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    const near = nearestNames(name, Object.keys(COMMANDS));
    console.error(`ssd: unknown command "${name}"${near.length ? ` (did you mean ${near.join(' or ')}?)` : ''}\n\n${usage()}`);
    return 2;
  }
  try {
    const command = (await entry.load()).default;
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(`${command.usage}\n\n${FLAG_CONVENTIONS}`);
      return 0;
    }
    return await command.run(rest);
  } catch (err) {
    // The stack and the chain of causes, for whoever asks.
    if (process.env.SSD_DEBUG === '1') console.error(err);
    // Messages never start with the command's name: this line adds it, once.
    if (err instanceof SsdError) {
      console.error(`ssd ${name}: ${oneLine(err)}`);
      return err.exitCode;
    }
    // Not a known input problem: still one line, with a hint for getting the stack.
    console.error(`ssd ${name}: ${oneLine(err)} (internal error; rerun with SSD_DEBUG=1 for the stack)`);
    return 1;
  }
}
