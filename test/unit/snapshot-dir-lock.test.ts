// A node agent owns its snapshot directory through a lock file: a live owner refuses the claim
// and nothing of its directory changes; a dead owner's lock (or a reused pid's) is taken over; the
// directory is removed only by the agent that still owns it.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, SnapshotDirLock, SnapshotDirTakenError, processStartTicks } from '../../cli/snapshot-dir-lock.ts';

const root = mkdtempSync(join(tmpdir(), 'ftrain-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
const freshDir = () => join(root, `d${n++}`);

/** A pid that no process has any more. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

function listing(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((name) => `${name} ${statSync(join(dir, name)).mtimeMs} ${readFileSync(join(dir, name), 'utf8')}`);
}

describe('SnapshotDirLock', () => {
  it('creates the directory and a lock that names its owner', () => {
    const dir = freshDir();
    const lock = SnapshotDirLock.claim(dir, 'n1');
    const written = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'));
    expect(written).toEqual({ pid: process.pid, nodeId: 'n1', startTicks: processStartTicks(process.pid) });
    expect(readdirSync(dir)).toEqual([LOCK_FILE]);
    expect(lock.owned()).toBe(true);
  });

  it('refuses a directory a live agent owns, and changes nothing in it', () => {
    const dir = freshDir();
    // The parent of this test process stands for the live agent.
    SnapshotDirLock.claim(dir, 'live', process.ppid);
    writeFileSync(join(dir, 'slot-0.bin'), 'snapshot bytes');
    const before = listing(dir);
    let thrown: unknown;
    try {
      SnapshotDirLock.claim(dir, 'live');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SnapshotDirTakenError);
    expect(thrown).toMatchObject({ dir, ownerPid: process.ppid, ownerNodeId: 'live' });
    expect((thrown as Error).message).toBe(`the snapshot directory ${dir} belongs to node live, whose node agent (pid ${process.ppid}) is running; pick another --node-id, or another --snapshot-dir`);
    expect(listing(dir)).toEqual(before);
  });

  it("takes over a dead agent's lock, a garbled lock, and one whose pid now belongs to another process", () => {
    const dead = freshDir();
    mkdirSync(dead);
    writeFileSync(join(dead, LOCK_FILE), JSON.stringify({ pid: deadPid(), nodeId: 'gone', startTicks: null }));
    expect(SnapshotDirLock.claim(dead, 'n1').owned()).toBe(true);

    const garbled = freshDir();
    mkdirSync(garbled);
    writeFileSync(join(garbled, LOCK_FILE), '{"pid":');
    expect(SnapshotDirLock.claim(garbled, 'n1').owned()).toBe(true);

    const reused = freshDir();
    mkdirSync(reused);
    writeFileSync(join(reused, LOCK_FILE), JSON.stringify({ pid: process.ppid, nodeId: 'old', startTicks: 'not-its-start-time' }));
    if (processStartTicks(process.ppid) !== null) expect(SnapshotDirLock.claim(reused, 'n1').owned()).toBe(true);
  });

  it('removes the directory only while it still owns it', () => {
    const dir = freshDir();
    const lock = SnapshotDirLock.claim(dir, 'n1');
    lock.removeDir();
    expect(existsSync(dir)).toBe(false);

    // Its snapshot manager removed the directory on the way out, and another agent took the path.
    const taken = freshDir();
    const first = SnapshotDirLock.claim(taken, 'n1');
    rmSync(taken, { recursive: true });
    SnapshotDirLock.claim(taken, 'n1', process.ppid);
    writeFileSync(join(taken, 'smp.json'), '{}');
    expect(first.owned()).toBe(false);
    first.removeDir();
    expect(readdirSync(taken).sort()).toEqual([LOCK_FILE, 'smp.json']);
  });

  it('removes what its snapshot manager left behind in a directory no one owns', () => {
    // Stopped while it started, the manager removed the directory (lock included), then wrote
    // its smp.json into it again.
    const dir = freshDir();
    const lock = SnapshotDirLock.claim(dir, 'n1');
    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    writeFileSync(join(dir, 'smp.json'), '{}');
    lock.removeDir();
    expect(existsSync(dir)).toBe(false);
  });

  it('names --snapshot-dir when the directory cannot be made', () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    expect(() => SnapshotDirLock.claim(join(file, 'snapshots'), 'n1')).toThrow(/^--snapshot-dir: cannot use .*a-file\/snapshots: ENOTDIR$/);
  });
});
