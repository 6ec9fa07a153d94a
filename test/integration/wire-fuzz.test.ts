// Malformed messages to every RPC of the three services while a run goes on (test/support/
// wire-fuzz.ts): each gets a clear refusal (INVALID_ARGUMENT naming the field for a malformed
// one), no process crashes, and the run ends with the weights of the same run without them.

import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CoordinatorStatusClient } from '../../chaos/coordinator-status.ts';
import type { RunReport } from '../../observability/run-report.ts';
import { SMALL_MODEL, runCli, startCli } from '../support/cli.ts';
import { FUZZED_RPCS, fuzzRun, type FuzzResult } from '../support/wire-fuzz.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-fuzz-'));
// Plaintext and no join token (`--insecure`): the probes speak for every node of the run, which
// with TLS only each node's own certificate may (test/integration/security.test.ts); behind TLS
// the same decoders and refusals answer.
const BASE = ['--nodes', '3', '--spares', '1', '--steps', '10', '--seed', '3', '--backend', 'cpu', '--no-dashboard', '--insecure', ...SMALL_MODEL];
const REFUSALS = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.ALREADY_EXISTS, grpc.status.FAILED_PRECONDITION]);

/** Why an answer is not what its probe must get, or null when it is. */
function wrong(r: FuzzResult): string | null {
  // A call still on its way when the run ended may find the server gone: that says nothing of it.
  if (r.late && (r.code === grpc.status.UNAVAILABLE || r.code === grpc.status.CANCELLED)) return null;
  const refused = REFUSALS.has(r.code) && r.details.length > 0;
  switch (r.expect) {
    case 'invalid':
      // The details name the field (`step: must be ...`), or say the bytes are not a message.
      return r.code === grpc.status.INVALID_ARGUMENT && /^([a-z_]+(\[\d+\])?\.)*[a-z_]+(\[\d+\])?: |^[A-Z][A-Za-z]+: is not a valid ftrain\.v1\.|^(pipe chunk|stage \d+|hop|stale|a new tensor)/.test(r.details) ? null : 'not INVALID_ARGUMENT naming the field';
    case 'refused':
      return refused ? null : 'not a refusal';
    case 'ok':
      return r.code === grpc.status.OK ? null : 'not OK';
    case 'read':
      return r.code === grpc.status.OK || refused ? null : 'neither OK nor a refusal';
  }
}

describe('malformed traffic during a run', () => {
  it('is refused with a clear status on every RPC, crashes nothing, and leaves the weights as without it', async () => {
    const baseline = await runCli(['run', ...BASE, '--report', join(dir, 'baseline.json'), '--log-file', join(dir, 'baseline.log')]);
    expect(baseline.code, baseline.stdout).toBe(0);
    const want = JSON.parse(readFileSync(join(dir, 'baseline.json'), 'utf8')) as RunReport;

    const run = startCli(['run', ...BASE, '--report', join(dir, 'fuzzed.json'), '--log-file', join(dir, 'fuzzed.log')]);
    const port = Number((await run.waitForLine(/^ftrain: coordinator on 127\.0\.0\.1:(\d+)/)).match[1]);
    await run.waitForLine(/^training to step/);
    const status = new CoordinatorStatusClient(`127.0.0.1:${port}`);
    const nodes = (await status.status()).nodes.filter((n) => n.stage !== null).map((n) => ({ nodeId: n.nodeId, stage: n.stage!, address: n.address, smpAddress: n.smpAddress }));
    status.close();
    expect(nodes).toHaveLength(3);
    const ended = () => /^(step 10\/10|finished|FAILED|failed)/m.test(run.stdout());
    const results = await fuzzRun({ coordinator: `127.0.0.1:${port}`, nodes }, { seed: 11, maxCalls: 4000, until: ended });
    const res = await run.result;
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);

    const r = JSON.parse(readFileSync(join(dir, 'fuzzed.json'), 'utf8')) as RunReport;
    expect(r.status).toBe('finished');
    expect(r.failures).toEqual([]);
    expect(r.weightsDigest).toBe(want.weightsDigest);
    // Every node stayed in the run to the end.
    expect(r.nodes!.filter((n) => n.stage !== null).map((n) => n.state)).toEqual(['stopped', 'stopped', 'stopped']);

    expect(results.filter((x) => !x.late).length).toBeGreaterThan(100);
    expect(new Set(results.map((x) => x.rpc))).toEqual(new Set(FUZZED_RPCS));
    const bad = results.filter((x) => wrong(x) !== null).map((x) => `${x.rpc} ${x.variant}: ${wrong(x)} (${grpc.status[x.code]}: ${x.details})`);
    expect([...new Set(bad)]).toEqual([]);
  });
});
