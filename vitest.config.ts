import { defineConfig } from 'vitest/config';

// Integration tests start real processes on a 2-core machine: run files one at a time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/**/*.soak.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
  },
});
