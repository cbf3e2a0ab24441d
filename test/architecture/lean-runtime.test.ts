// The deployable runtime must never load TensorFlow.js (house rule; issue #2 "Project setup"), and core/
// must stay dependency-free so that train, export and runtime can all import it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { formatViolations, isRelative, moduleSpecifiers, sourcesUnder, walkImports, type ImportEdge } from './import-graph.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUNTIME_COMMANDS = ['detect', 'stream', 'bench', 'devices', 'deploy'].map((c) => `cli/commands/${c}.ts`);

const isTensorflow = (e: ImportEdge): boolean => e.specifier === '@tensorflow' || e.specifier.startsWith('@tensorflow/');

function runtimeEntries(root: string): string[] {
  return [
    ...['runtime', 'devices', 'core'].flatMap((d) => sourcesUnder(join(root, d))),
    ...RUNTIME_COMMANDS.map((f) => join(root, f)).filter((f) => sourcesUnder(dirname(f)).includes(f)),
  ];
}

/** core/** may import node: builtins, other core modules and fast-xml-parser (the VOC XML reader); nothing else. */
function coreRule(root: string) {
  const coreDir = join(root, 'core') + sep;
  return (e: ImportEdge): boolean => {
    if (e.specifier.startsWith('node:') || e.specifier === 'fast-xml-parser') return false;
    if (isRelative(e.specifier)) return e.resolved !== undefined && !e.resolved.startsWith(coreDir);
    return true;
  };
}

describe('lean runtime: nothing reachable from runtime/, devices/, core/ or the runtime commands imports @tensorflow/*', () => {
  it('the real tree is clean', () => {
    const entries = runtimeEntries(ROOT);
    expect(entries.length).toBeGreaterThan(10);
    expect(entries.map((f) => relative(ROOT, f).split(sep).join('/'))).toEqual(expect.arrayContaining(['core/specs.ts', 'cli/commands/detect.ts']));
    const { violations, unresolved, reached } = walkImports(ROOT, entries, isTensorflow);
    expect(formatViolations(violations)).toBe('');
    expect(formatViolations(unresolved)).toBe('');
    expect(reached.size).toBeGreaterThanOrEqual(entries.length);
  });

  it('core/** imports only node: builtins, core modules and fast-xml-parser', () => {
    const core = sourcesUnder(join(ROOT, 'core'));
    const { violations } = walkImports(ROOT, core, coreRule(ROOT));
    expect(formatViolations(violations)).toBe('');
  });
});

describe('the checker itself (on a temporary fixture tree)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ssd-arch-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
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
    ].join('\n');
    expect(moduleSpecifiers(src).sort()).toEqual(['../c.js', './a.js', './b.js', './lazy.js', './side-effect.js', './worker.js']);
  });

  it('fails on a violation two hops away, behind a dynamic import and an export-from, and names the chain', () => {
    write('runtime/index.ts', "export { run } from './run.js';\n");
    write('runtime/run.ts', "export async function run() { return (await import('../shared/helper.js')).help(); }\n");
    write('shared/helper.ts', "import type { Tensor } from '@tensorflow/tfjs-core';\nexport const help = (t?: Tensor) => t;\n");
    write('core/ok.ts', "import { readFileSync } from 'node:fs';\nimport { XMLParser } from 'fast-xml-parser';\nimport { x } from './sub/x.js';\n");
    write('core/sub/x.ts', 'export const x = 1;\n');
    const { violations } = walkImports(tmp, [join(tmp, 'runtime/index.ts')], isTensorflow);
    expect(violations).toEqual([{ file: 'shared/helper.ts', specifier: '@tensorflow/tfjs-core', chain: ['runtime/index.ts', 'runtime/run.ts', 'shared/helper.ts'] }]);
    expect(formatViolations(violations)).toMatch(/shared\/helper\.ts imports "@tensorflow\/tfjs-core" \(reached via runtime\/index\.ts -> runtime\/run\.ts -> shared\/helper\.ts\)/);
    // The same walk over a clean tree passes.
    expect(walkImports(tmp, [join(tmp, 'core/ok.ts')], isTensorflow).violations).toEqual([]);
  });

  it('the core rule rejects packages, bare builtins and relative imports leaving core/', () => {
    write('core/bad.ts', "import fs from 'fs';\nimport sharp from 'sharp';\nimport { t } from '../train/t.js';\nimport { x } from './sub/x.js';\n");
    write('train/t.ts', 'export const t = 1;\n');
    const { violations } = walkImports(tmp, [join(tmp, 'core/bad.ts')], coreRule(tmp));
    expect(violations.map((v) => v.specifier).sort()).toEqual(['../train/t.js', 'fs', 'sharp']);
    expect(walkImports(tmp, [join(tmp, 'core/ok.ts')], coreRule(tmp)).violations).toEqual([]);
  });

  it('reports relative imports it cannot resolve (the walk would be blind past them)', () => {
    write('runtime/broken.ts', "import { gone } from './gone.js';\n");
    const { unresolved } = walkImports(tmp, [join(tmp, 'runtime/broken.ts')], isTensorflow);
    expect(unresolved.map((v) => v.specifier)).toEqual(['./gone.js']);
  });
});
