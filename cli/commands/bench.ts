import { SsdError } from '../../core/errors.js';
import { benchModel, formatModelBench } from '../../runtime/bench.js';
import { GRAPH_OPTIMIZATION_LEVELS, type GraphOptimizationLevel } from '../../runtime/session.js';
import { choiceFlag, intFlag, numberFlag, parseFlags, type Command } from '../args.js';

const USAGE = `Usage: ssd bench MODEL.onnx [options]
       ssd bench --core [--json]

MODEL.onnx: times the model alone (bare session.run on a ready tensor) and in the full pipeline
(decode + resize + tensor, run, decode + NMS, boxes in pixels; the next frame is prepared while the
current one is inferred), in alternating rounds of the same run. Prints p50/p95 latency per stage,
both throughputs and their ratio.

--core: times the core's decode + NMS for SSD300 (8732 boxes x 21 classes) against a straightforward
reference implementation (what "npm run bench" runs).

Options:
  --frames N         frames per mode (default 40)
  --rounds N         alternating rounds the frames are split into (default: one per 5 frames)
  --threads N        onnxruntime intra-op threads (default: the profile's, else one per core)
  --device NAME      device profile (see "ssd devices"; default: detected)
  --graph-opt LEVEL  ${GRAPH_OPTIMIZATION_LEVELS.join(', ')} (default all)
  --image FILE       decode this image every frame (default: a synthetic 640x480 JPEG)
  --raw              feed raw 640x480 RGB frames instead (the stream path, no sharp)
  --shrink-on-load   with --image: decode a JPEG >= 2x/4x/8x the input at 1/2, 1/4, 1/8 size
  --threshold T      postprocessing score threshold (default 0.5)
  --main-thread      run the graph on the JS thread (no overlap possible) instead of a worker
  --no-spin          onnxruntime's idle threads block instead of spin-waiting (frees CPU for decoding)
  --json             print one JSON object (session_fps, pipeline_fps, ratio, per-stage p50/p95)
  -h, --help         this help`;

const OPTIONS = {
  core: { type: 'boolean' },
  json: { type: 'boolean' },
  frames: { type: 'string' },
  rounds: { type: 'string' },
  threads: { type: 'string' },
  device: { type: 'string' },
  'graph-opt': { type: 'string' },
  image: { type: 'string' },
  raw: { type: 'boolean' },
  'shrink-on-load': { type: 'boolean' },
  threshold: { type: 'string' },
  'main-thread': { type: 'boolean' },
  'no-spin': { type: 'boolean' },
} as const;

const command: Command = {
  name: 'bench',
  summary: 'benchmarks: --core (decode+NMS) or a model (session vs pipeline fps)',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseFlags('bench', argv, OPTIONS);
    if (values.core) {
      if (positionals.length) throw new SsdError('--core takes no model');
      // Loaded only for --core: the model benchmark does not need it.
      const { runCoreBench, formatCoreBench } = await import('../../core/postprocess-bench.js');
      const result = await runCoreBench();
      console.log(values.json ? JSON.stringify(result) : formatCoreBench(result));
      return 0;
    }
    const [model, ...extra] = positionals;
    if (!model) throw new SsdError('missing MODEL.onnx or --core (see "ssd bench --help")');
    if (extra.length) throw new SsdError(`one model at a time (got also ${extra.join(', ')})`);
    if (values.raw && values.image) throw new SsdError('--raw and --image exclude each other');
    if (values['shrink-on-load'] && !values.image) throw new SsdError('--shrink-on-load needs --image FILE (libvips shrinks a JPEG on load only when it reads the file)');
    const frames = intFlag('frames', values.frames, 40, 1, 100000);
    const rounds = intFlag('rounds', values.rounds, Math.ceil(frames / 5), 1, 1000);
    const threads = values.threads === undefined ? undefined : intFlag('threads', values.threads, 0, 1, 1024);
    const threshold = numberFlag('threshold', values.threshold, 0.5, 0, 1);
    const graphOptimization = choiceFlag<GraphOptimizationLevel>('graph-opt', values['graph-opt'], GRAPH_OPTIMIZATION_LEVELS, 'all');
    const progress = process.stderr.isTTY;
    const result = await benchModel(model, {
      frames, rounds, threads, device: values.device, graphOptimization, image: values.image, raw: values.raw, threshold, shrinkOnLoad: values['shrink-on-load'],
      thread: values['main-thread'] ? 'main' : 'worker',
      spinWait: values['no-spin'] ? false : undefined,
      // With --json, stdout holds the JSON object only.
      log: (line) => (values.json ? console.error(line) : console.log(line)),
      onProgress: progress ? (done, total) => process.stderr.write(`\r\x1b[K[${done}/${total}] frames per mode`) : undefined,
    });
    if (progress) process.stderr.write('\r\x1b[K');
    console.log(values.json ? JSON.stringify(result) : formatModelBench(result));
    return 0;
  },
};
export default command;
