/**
 * The backends the training suite runs on. `tensorflow` (tfjs-node, installed by
 * `npm run setup -- --tensorflow`, which `.ci/run` does) runs wherever its package is installed; its
 * cases are skipped, with the reason in their title, only when the package is not installed. Installed
 * but failing to load is a failure, and so is any other backend running when tensorflow was asked for.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { describe, expect } from 'vitest';
import { selectBackend, type BackendName } from '../../train/backend.js';

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(`${pkg}/package.json`);
    return true;
  } catch {
    return false;
  }
}

export const TENSORFLOW_INSTALLED = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');
const SKIP_NOTE = ' [skipped: @tensorflow/tfjs-node is not installed; npm run setup -- --tensorflow installs it]';

/** Activates `name` and fails the test unless exactly that backend now runs. */
export async function useBackend(name: BackendName): Promise<void> {
  await selectBackend(name, { log: () => {} });
  expect(tf.getBackend(), `asked for backend ${name}`).toBe(name);
}

/** True when `backend`'s cases must be skipped: tensorflow without a tfjs-node package. */
export function backendMissing(backend: BackendName): boolean {
  return backend === 'tensorflow' && !TENSORFLOW_INSTALLED;
}

/** A test title that says why it is skipped, when it is. */
export function onBackend(backend: BackendName, title: string): string {
  return `${title}${backendMissing(backend) ? SKIP_NOTE : ''}`;
}

/**
 * `describe` per backend; the tensorflow block is skipped (and says why in its title) only when no
 * tfjs-node package is installed.
 */
export function describeOnBackends(backends: readonly BackendName[], title: (backend: BackendName) => string, body: (backend: BackendName) => void): void {
  for (const backend of backends) {
    describe.skipIf(backendMissing(backend))(onBackend(backend, title(backend)), () => body(backend));
  }
}
