import { defineConfig } from 'vitest/config';

// Tests by tier: pure unit tests (and the scenario files) run in parallel first; then the
// integration tests, which start real processes on a 2-core machine, one file at a time.
export default defineConfig({
  test: {
    exclude: ['test/**/*.soak.test.ts', 'node_modules/**'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          sequence: { groupOrder: 0 },
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: ['test/**/*.soak.test.ts'],
          fileParallelism: false,
          pool: 'forks',
          sequence: { groupOrder: 1 },
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
