import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { saveCheckpoint } from '../../core/checkpoint.js';
import { SsdError } from '../../core/errors.js';
import { numDefaultBoxes } from '../../core/specs.js';
import { IMPORT_FORMATS, importWeights, type ImportFormat } from '../../train/import/index.js';
import { choiceFlag, parseFlags, type Command } from '../args.js';

const USAGE = `Usage: ssd import FILE [--prototxt deploy.prototxt] --out DIR [--format ${IMPORT_FORMATS.join('|')}] [--json]

Reads published SSD weights and writes a checkpoint (DIR/checkpoint.ssdckpt) that ssd export-onnx and
the other commands accept, with a spec carrying the source's conventions (input colour order and
mean, default boxes, class list, L2Norm scale, postprocess thresholds). Nothing from the file is
executed; no Python is needed. docs/import.md lists the published files.

Formats (detected unless --format is given: Caffe with --prototxt, PyTorch layouts from key names):
  caffe         the paper's .caffemodel with its deploy.prototxt (PriorBox, Normalize, DetectionOutput)
  torchvision   torch.save(torchvision.models.detection.ssd300_vgg16(...).state_dict())
  ssd-pytorch   amdegroot/ssd.pytorch (ssd300_mAP_77.43_v2.pth)
  lufficc       lufficc/SSD (vgg_ssd300_voc0712.pth, vgg_ssd512_voc0712.pth; {"model": state_dict})
PyTorch files may be zip (torch >= 1.6) or the legacy format; a bare state dict or one under
"model" / "state_dict".

Options:
  --prototxt F   the Caffe model's deploy.prototxt (required for .caffemodel files)
  --out DIR      directory for the checkpoint (created if missing; its parent must exist)
  --format F     force the layout: ${IMPORT_FORMATS.join(', ')}
  --json         print { out, format, spec, classes, priors, unused } as JSON
  -h, --help     this text

Then: ssd export-onnx --checkpoint DIR --out model.onnx [--fp16], ssd deploy ... (docs/import.md).`;

const command: Command = {
  name: 'import',
  summary: 'import published SSD weights (Caffe, torchvision, ssd.pytorch, lufficc) as a checkpoint',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseFlags('import', argv, { out: { type: 'string' }, format: { type: 'string' }, prototxt: { type: 'string' }, json: { type: 'boolean' } });
    if (positionals.length !== 1) throw new SsdError(positionals.length ? `give one weights file, not ${positionals.length}` : 'give the weights file to import (ssd import FILE --out DIR)');
    if (!values.out) throw new SsdError('--out DIR is required');
    const format = values.format === undefined ? undefined : choiceFlag<ImportFormat>('format', values.format, IMPORT_FORMATS, 'caffe');
    const out = resolve(values.out);
    if (existsSync(out) && !statSync(out).isDirectory()) throw new SsdError(`--out ${values.out}: exists and is not a directory`);
    if (!existsSync(dirname(out))) throw new SsdError(`--out ${values.out}: directory ${dirname(out)} does not exist`);
    const file = positionals[0]!;
    if (!existsSync(file)) throw new SsdError(`${file}: no such file`);
    // Read and convert everything before touching --out: a bad file leaves nothing behind.
    if (values.prototxt !== undefined && !existsSync(values.prototxt)) throw new SsdError(`--prototxt ${values.prototxt}: no such file`);
    const result = importWeights(file, { format, prototxt: values.prototxt });
    mkdirSync(out, { recursive: true });
    const path = saveCheckpoint(out, result.checkpoint);
    const spec = result.spec;
    if (values.json) {
      console.log(JSON.stringify({ out: path, format: result.format, container: result.container, spec: spec.name, classes: spec.labels.length, priors: numDefaultBoxes(spec), unused: result.unused }));
    } else {
      console.error(`import: ${file}: ${result.format} (${result.container} container${result.wrapper ? `, state dict under "${result.wrapper}"` : ''})`);
      console.error(`import: ${spec.name}: ${spec.labels.length} classes, ${numDefaultBoxes(spec)} default boxes, input ${spec.input.channelOrder.toUpperCase()} minus ${spec.input.mean.map((m) => +m.toFixed(3)).join('/')}`);
      if (result.unused.length) console.error(`import: ${result.unused.length} tensors not used: ${result.unused.slice(0, 5).join(', ')}${result.unused.length > 5 ? ', ...' : ''}`);
      console.log(path);
    }
    return 0;
  },
};
export default command;
