// The coordinator core's scenarios (test/scenario/coordinator/*.txt): events in, the actions
// expected beneath each. FTRAIN_REWRITE=1 rewrites the files from what the core does now, for
// a change that is meant to change the actions; read the diff before committing it.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { rewriteScenarioFile, runScenarioFile } from '../scenario/scenario-harness.ts';

const DIR = fileURLToPath(new URL('../scenario/coordinator', import.meta.url));

describe('coordinator scenarios', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.txt')).sort();
  it('has scenario files', () => expect(files.length).toBeGreaterThan(0));
  it.each(files)('%s', (file) => {
    const path = join(DIR, file);
    const { expected, actual } = runScenarioFile(path);
    if (process.env.FTRAIN_REWRITE === '1' && actual !== expected) rewriteScenarioFile(path, actual);
    else expect(actual).toBe(expected);
  });
});
