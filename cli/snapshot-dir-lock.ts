// A node agent owns its snapshot directory before it starts a snapshot manager there: a lock file
// in it names the agent (pid, and the process's start time where /proc tells it, so that a
// reused pid is not taken for the owner). The file is created whole and atomically (written
// aside, then hard-linked into place, which fails if one is there), so a reader never sees half
// of it. A lock whose owner is dead is taken over; one whose owner lives refuses the claim.
// The agent removes the directory only while the lock still names it: its snapshot manager
// removes the directory itself (lock included) when it stops, and then there is nothing of this
// agent's left to remove, while another agent may already own the path.

import { closeSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { OptionError } from '../domain/errors.ts';

/** The lock file, inside the snapshot directory. */
export const LOCK_FILE = 'node-agent.lock';

/** Claims over a dead owner's lock before giving up (another agent took the path meanwhile). */
const CLAIM_TRIES = 3;

interface LockOwner {
  readonly pid: number;
  readonly nodeId: string;
  /** The owner's start time in clock ticks since boot (/proc/PID/stat), null where unknown. */
  readonly startTicks: string | null;
}

/** Thrown when a live node agent owns the snapshot directory a node was to use. */
export class SnapshotDirTakenError extends Error {
  override readonly name = 'SnapshotDirTakenError';
  constructor(
    readonly dir: string,
    readonly ownerPid: number,
    readonly ownerNodeId: string,
  ) {
    super(
      `the snapshot directory ${dir} belongs to node ${ownerNodeId}, whose node agent (pid ${ownerPid}) is running; ` +
        'pick another --node-id, or another --snapshot-dir',
    );
  }
}

/** The start time of a process in clock ticks since boot, from /proc; null where there is no /proc. */
export function processStartTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The name (field 2) is in parentheses and may hold spaces; field 22, starttime, is the
    // 20th after the closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** True while `owner` runs: its pid exists and, where /proc tells, started when the lock says. */
function ownerAlive(owner: LockOwner): boolean {
  if (owner.pid === process.pid) return false; // a lock from before a restart, with the same pid (a container's)
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = processStartTicks(owner.pid);
  return owner.startTicks === null || now === null || now === owner.startTicks;
}

/** The lock's owner; null when there is no lock; 'garbled' when it is not one this code wrote. */
function readOwner(path: string): LockOwner | null | 'garbled' {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new OptionError('--snapshot-dir', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (!Number.isInteger(o.pid) || (o.pid as number) <= 0) return 'garbled';
    return { pid: o.pid as number, nodeId: typeof o.nodeId === 'string' ? o.nodeId : '?', startTicks: typeof o.startTicks === 'string' ? o.startTicks : null };
  } catch {
    return 'garbled';
  }
}

export class SnapshotDirLock {
  private constructor(
    readonly dir: string,
    private readonly owner: LockOwner,
  ) {}

  private get path(): string {
    return join(this.dir, LOCK_FILE);
  }

  /**
   * Makes this process (`pid`) the owner of `dir`, creating it if needed. Throws
   * SnapshotDirTakenError when a live agent owns it, an OptionError naming --snapshot-dir when
   * the directory cannot be made. Touches nothing in a directory it does not get.
   */
  static claim(dir: string, nodeId: string, pid = process.pid): SnapshotDirLock {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new OptionError('--snapshot-dir', `cannot use ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const owner: LockOwner = { pid, nodeId, startTicks: processStartTicks(pid) };
    const path = join(dir, LOCK_FILE);
    let existing: LockOwner | null | 'garbled' = null;
    for (let tries = 0; tries < CLAIM_TRIES; tries++) {
      existing = readOwner(path);
      if (existing !== null && existing !== 'garbled' && ownerAlive(existing)) throw new SnapshotDirTakenError(dir, existing.pid, existing.nodeId);
      // A dead owner's lock goes (a lock is written whole, so a garbled one is no live agent's).
      // Only two agents taking over the same dead owner's lock in the same instant could both
      // get it: the second would unlink the first's fresh lock.
      if (existing !== null) rmSync(path, { force: true });
      if (SnapshotDirLock.create(path, owner)) return new SnapshotDirLock(dir, owner);
    }
    const last = existing !== null && existing !== 'garbled' ? existing : { pid: 0, nodeId: '?' };
    throw new SnapshotDirTakenError(dir, last.pid, last.nodeId);
  }

  /** Writes the lock aside, then links it into place: false when a lock is there already. */
  private static create(path: string, owner: LockOwner): boolean {
    const aside = `${path}.${owner.pid}.tmp`;
    try {
      const fd = openSync(aside, 'w');
      try {
        writeSync(fd, `${JSON.stringify(owner)}\n`);
      } finally {
        closeSync(fd);
      }
      linkSync(aside, path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new OptionError('--snapshot-dir', `cannot use ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    } finally {
      rmSync(aside, { force: true });
    }
  }

  /** True while the lock file is there and names this owner. */
  owned(): boolean {
    try {
      const o = readOwner(this.path);
      return o !== null && o !== 'garbled' && o.pid === this.owner.pid && o.startTicks === this.owner.startTicks;
    } catch {
      return false;
    }
  }

  /**
   * Removes the directory if this agent still owns it (its snapshot manager did not remove it),
   * or if no one does: a snapshot manager stopped while it started can remove the directory, lock
   * included, and then write its `smp.json` into it again. A directory another agent has claimed
   * since (its lock is there) is left alone.
   */
  removeDir(): void {
    let unowned = false;
    try {
      unowned = readOwner(this.path) === null;
    } catch {
      unowned = false;
    }
    if (this.owned() || unowned) rmSync(this.dir, { recursive: true, force: true });
  }
}
