/**
 * `ssd import`: a published SSD weights file -> a checkpoint (core/checkpoint.ts) whose spec carries
 * the source's conventions. Readers are TypeScript only (no Python at run time): pth.ts (PyTorch zip
 * and legacy containers, pickle.ts for the data.pkl subset), layouts.ts (key layouts and conventions).
 */
import { readFileSync, statSync } from 'node:fs';
import type { Checkpoint } from '../../core/checkpoint.js';
import { SsdError } from '../../core/errors.js';
import { importCaffe } from './caffe.js';
import { importStateDict, PTH_FORMATS, type ImportedModel, type PthFormat } from './layouts.js';
import { readPth } from './pth.js';
import { looksLikeZip } from './zip.js';

export { detectPthFormat, importStateDict, pthSpec, torchvisionCocoLabels, PTH_FORMATS, TORCHVISION_SSD_MEAN, type ImportedModel, type PthFormat } from './layouts.js';
export { readPth, type PthFile } from './pth.js';
export { caffeSpec, importCaffe, readCaffemodel } from './caffe.js';

export const IMPORT_FORMATS = ['caffe', ...PTH_FORMATS] as const;
export type ImportFormat = 'caffe' | PthFormat;

export interface ImportResult extends Omit<ImportedModel, 'format'> {
  format: ImportFormat;
  container: string;
  wrapper: string;
  checkpoint: Checkpoint;
}

function readInput(file: string, what: string): Buffer {
  try {
    if (!statSync(file).isFile()) throw new SsdError(`${what} ${file}: not a file`);
    return readFileSync(file);
  } catch (err) {
    if (err instanceof SsdError) throw err;
    throw new SsdError(`${what} ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
}

/**
 * Reads `file` and returns the checkpoint to write. The format is detected unless given: a Caffe
 * model when a prototxt is given (or the file is not a PyTorch container), else from the state dict's keys.
 */
export function importWeights(file: string, opts: { format?: ImportFormat; prototxt?: string } = {}): ImportResult {
  const bytes = readInput(file, 'weights');
  const isPth = looksLikeZip(bytes) || (bytes.length >= 2 && bytes[0] === 0x80);
  const format = opts.format ?? (opts.prototxt !== undefined || !isPth ? 'caffe' : undefined);
  if (format === 'caffe') {
    if (opts.prototxt === undefined) throw new SsdError(`${file}: a Caffe model needs its deploy.prototxt (--prototxt FILE) for the default boxes and postprocess`);
    if (isPth) throw new SsdError(`${file}: is a PyTorch checkpoint, not a Caffe model`);
    const text = readInput(opts.prototxt, '--prototxt').toString('utf8');
    const { spec, weights, unused } = importCaffe(bytes, text, file, opts.prototxt);
    return { spec, weights, unused, format: 'caffe', container: 'caffemodel', wrapper: '', checkpoint: { spec, weights } };
  }
  if (opts.prototxt !== undefined) throw new SsdError(`--prototxt is for Caffe models; ${file} is a PyTorch checkpoint`);
  const pth = readPth(bytes, file);
  const model = importStateDict(pth.tensors, file, format);
  return { ...model, container: pth.container, wrapper: pth.wrapper, checkpoint: { spec: model.spec, weights: model.weights } };
}
