// snapshot-manager/wasm/gf256-wasm.ts must be what `npm run wasm:gen` makes of gf256.wat today.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GENERATED_PATH, renderGf256Module } from '../../scripts/wasm-gen.ts';

describe('generated gf256 wasm module', () => {
  it('is up to date with snapshot-manager/wasm/gf256.wat (npm run wasm:gen)', async () => {
    expect(readFileSync(GENERATED_PATH, 'utf8')).toBe(await renderGf256Module());
  });
});
