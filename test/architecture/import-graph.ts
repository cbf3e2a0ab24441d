/**
 * A static import-graph walker for the architecture tests: it reads TypeScript sources (no execution),
 * finds every module specifier (static imports, `export ... from`, type-only imports, `import('literal')`,
 * `require('literal')`, `require.resolve('literal')` (also through createRequire and import.meta.resolve),
 * and `new URL('literal.js', import.meta.url)` module references as used for dynamic imports and workers),
 * resolves relative ones to files, and follows them from a set of entry files.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

export interface ImportEdge {
  /** The specifier as written. */
  specifier: string;
  /** Absolute path of the target file for relative specifiers, undefined for packages/builtins. */
  resolved?: string;
  /** True for a relative specifier that resolves to no file. */
  unresolved?: boolean;
}

export interface Violation {
  /** Repo-relative path of the importing file. */
  file: string;
  specifier: string;
  /** Entry file first, importing file last. */
  chain: string[];
}

const MODULE_URL = /new\s+URL\(\s*(['"])([^'"]+\.(?:[cm]?[jt]s))\1\s*,\s*import\.meta\.url\s*\)/g;
/** `require.resolve('x')`, `createRequire(...).resolve('x')`, `import.meta.resolve('x')`: a package found by name. */
const RESOLVE_CALL = /(?:\brequire|\bcreateRequire\([^()]*\)|\bimport\.meta)\.resolve\(\s*(['"])([^'"]+)\1\s*\)/g;

/** Every module specifier of a source file. Comments and ordinary strings are ignored. */
export function moduleSpecifiers(source: string): string[] {
  const info = ts.preProcessFile(source, true, true);
  const found = info.importedFiles.map((f) => f.fileName);
  // Comments must not count: strip them with the scanner before looking for new URL(..., import.meta.url).
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, false, ts.LanguageVariant.Standard, source);
  let code = '';
  for (let kind = scanner.scan(); kind !== ts.SyntaxKind.EndOfFileToken; kind = scanner.scan()) {
    code += kind === ts.SyntaxKind.SingleLineCommentTrivia || kind === ts.SyntaxKind.MultiLineCommentTrivia ? ' ' : scanner.getTokenText();
  }
  for (const m of code.matchAll(MODULE_URL)) found.push(m[2]!);
  for (const m of code.matchAll(RESOLVE_CALL)) found.push(m[2]!);
  return [...new Set(found)];
}

/** Resolves a relative specifier the way NodeNext + tsx do for this repo: `x.js` may be `x.ts`. */
export function resolveRelative(fromFile: string, specifier: string): string | undefined {
  const base = resolve(dirname(fromFile), specifier);
  const candidates = [base];
  const m = /\.([cm]?)js$/.exec(base);
  if (m) candidates.unshift(base.slice(0, -2 - m[1]!.length) + `${m[1]}ts`, base.slice(0, -2 - m[1]!.length) + 'tsx');
  if (!/\.[cm]?[jt]sx?$/.test(base)) candidates.push(`${base}.ts`, join(base, 'index.ts'), `${base}.js`, join(base, 'index.js'));
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

export const isRelative = (s: string): boolean => s.startsWith('./') || s.startsWith('../');

/** The package a bare specifier names: '@scope/pkg/sub' -> '@scope/pkg', 'pkg/sub' -> 'pkg'. */
export function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

export function edgesOf(file: string): ImportEdge[] {
  return moduleSpecifiers(readFileSync(file, 'utf8')).map((specifier) => {
    if (!isRelative(specifier)) return { specifier };
    const target = resolveRelative(file, specifier);
    return target ? { specifier, resolved: target } : { specifier, unresolved: true };
  });
}

/** TypeScript sources under a directory (recursively), skipping declaration files. */
export function sourcesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => /\.(m?ts|tsx)$/.test(f) && !f.endsWith('.d.ts'))
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .sort();
}

export interface WalkResult {
  /** Every reachable file (absolute). */
  reached: Set<string>;
  violations: Violation[];
  /** Relative specifiers that point at no file (the walk cannot see past them). */
  unresolved: Violation[];
}

/**
 * Walks the graph from `entries` and reports every import for which `forbidden(specifier, importer)`
 * returns true, with the chain of files that reaches it.
 */
export function walkImports(root: string, entries: string[], forbidden: (edge: ImportEdge, importer: string) => boolean): WalkResult {
  const parent = new Map<string, string | null>();
  const queue: string[] = [];
  for (const e of entries) {
    const abs = resolve(root, e);
    if (!parent.has(abs)) {
      parent.set(abs, null);
      queue.push(abs);
    }
  }
  const rel = (f: string) => relative(root, f).split(sep).join('/');
  const chainOf = (f: string): string[] => {
    const chain: string[] = [];
    for (let cur: string | null | undefined = f; cur; cur = parent.get(cur)) chain.unshift(rel(cur));
    return chain;
  };
  const violations: Violation[] = [];
  const unresolved: Violation[] = [];
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const edge of edgesOf(file)) {
      if (forbidden(edge, file)) violations.push({ file: rel(file), specifier: edge.specifier, chain: chainOf(file) });
      if (edge.unresolved) unresolved.push({ file: rel(file), specifier: edge.specifier, chain: chainOf(file) });
      if (edge.resolved && !parent.has(edge.resolved)) {
        parent.set(edge.resolved, file);
        queue.push(edge.resolved);
      }
    }
  }
  return { reached: new Set(parent.keys()), violations, unresolved };
}

export const formatViolations = (vs: Violation[]): string =>
  vs.map((v) => `${v.file} imports "${v.specifier}" (reached via ${v.chain.join(' -> ')})`).join('\n');
