import { defineConfig } from 'vitest/config';

// Long runs (soak and acceptance-size runs) that CI skips: `npm run bench`.
export default defineConfig({
  test: {
    include: ['test/**/*.soak.test.ts'],
    fileParallelism: false,
    testTimeout: 1_800_000,
    pool: 'forks',
  },
});
