/**
 * Writes the MNIST digit-detection dataset in VOC layout (train/digits-dataset.ts does the work).
 * Usage: npx tsx scripts/make-digits-dataset.ts --out data/digits --train 2000 --test 300 [--seed 1]
 *        [--image-size 128] [--min-digits 1] [--max-digits 5] [--min-digit-size 20] [--max-digit-size 56] [--format jpg|png]
 */
import { resolve } from 'node:path';
import { intFlag, choiceFlag, parseFlags } from '../cli/args.js';
import { DIGIT_SCENE_DEFAULTS } from '../core/datasets/digits.js';
import { SsdError, oneLine } from '../core/errors.js';
import { makeDigitsDataset, type MakeDigitsOptions } from '../train/digits-dataset.js';

async function cli(argv: string[]): Promise<number> {
  const cmd = 'make-digits-dataset';
  const { values } = parseFlags(cmd, argv, {
    out: { type: 'string' },
    train: { type: 'string' },
    test: { type: 'string' },
    seed: { type: 'string' },
    'image-size': { type: 'string' },
    'min-digits': { type: 'string' },
    'max-digits': { type: 'string' },
    'min-digit-size': { type: 'string' },
    'max-digit-size': { type: 'string' },
    format: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) {
    console.log('Usage: npx tsx scripts/make-digits-dataset.ts --out DIR [--train 2000] [--test 300] [--seed 1] [--image-size 128] [--min-digits 1] [--max-digits 5] [--min-digit-size 20] [--max-digit-size 56] [--format jpg|png]');
    return 0;
  }
  if (!values.out) throw new SsdError('--out DIR is required');
  const d = DIGIT_SCENE_DEFAULTS;
  const started = Date.now();
  const opts: MakeDigitsOptions = {
    outDir: resolve(values.out),
    train: intFlag('train', values.train, 2000, 0),
    test: intFlag('test', values.test, 300, 0),
    seed: intFlag('seed', values.seed, 1, 0, 2 ** 32 - 1),
    imageSize: intFlag('image-size', values['image-size'], d.imageSize, 16, 4096),
    minDigits: intFlag('min-digits', values['min-digits'], d.minDigits, 0, 50),
    maxDigits: intFlag('max-digits', values['max-digits'], d.maxDigits, 0, 50),
    minDigitSize: intFlag('min-digit-size', values['min-digit-size'], d.minDigitSize, 4, 4096),
    maxDigitSize: intFlag('max-digit-size', values['max-digit-size'], d.maxDigitSize, 4, 4096),
    format: choiceFlag('format', values.format, ['jpg', 'png'] as const, 'jpg'),
    onProgress: (done, total) => {
      if (done % 100 === 0 || done === total) {
        const pct = Math.round((100 * done) / total);
        const bar = '#'.repeat(Math.round(pct / 4)).padEnd(25, '.');
        process.stderr.write(`\r[${bar}] ${done}/${total} images ${pct}%`);
        if (done === total) process.stderr.write('\n');
      }
    },
  };
  const res = await makeDigitsDataset(opts);
  console.log(`wrote ${res.train} train + ${res.test} test images to ${res.root} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

{
  cli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`make-digits-dataset: ${oneLine(err).replace(/^make-digits-dataset: /, '')}`);
      process.exit(err instanceof SsdError ? err.exitCode : 1);
    },
  );
}
