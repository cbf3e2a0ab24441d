import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Heavy opt-in suites (full SSD300 training, soaks) live under test/slow and run with SSD_SLOW=1.
    exclude: process.env.SSD_SLOW === '1' ? [] : ['test/slow/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: run files in two workers; tests that start servers pick free ports.
    pool: 'forks',
    maxWorkers: 2,
  },
});
