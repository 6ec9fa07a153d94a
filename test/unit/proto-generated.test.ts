// proto/generated must be what proto-loader-gen-types makes of proto/ftrain.proto today.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

describe('generated proto types', () => {
  it('are up to date with proto/ftrain.proto (npm run proto:gen)', () => {
    const out = mkdtempSync(join(tmpdir(), 'ftrain-proto-'));
    const bin = join(root, 'node_modules', '.bin', 'proto-loader-gen-types');
    execFileSync(bin, ['--longs=Number', '--enums=String', '--defaults', '--oneofs', '--grpcLib=@grpc/grpc-js', '-O', out, 'proto/ftrain.proto'], { cwd: root });
    const committed = join(root, 'proto', 'generated');
    const fresh = listFiles(out).map((f) => relative(out, f)).sort();
    expect(listFiles(committed).map((f) => relative(committed, f)).sort()).toEqual(fresh);
    for (const f of fresh) expect(readFileSync(join(committed, f), 'utf8'), f).toBe(readFileSync(join(out, f), 'utf8'));
  });
});
