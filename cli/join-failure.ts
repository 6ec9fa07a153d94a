// A node that cannot join: which failures a restart cannot help (an exit code of
// domain/exit-codes.ts each), the progress lines while it waits, and the one line that says why
// it gave up. Under a node agent, the worker hands that line to the agent (the exit note, on a
// pipe of its own) instead of printing it: the agent ends the node first, then prints it, last.

import { closeSync, writeSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_UNRESOLVED } from '../domain/exit-codes.ts';
import { RefusedError, RunEndedError } from '../domain/refusal.ts';
import { CoordinatorUnreachableError, CoordinatorUnresolvedError, type RegisterWait, type ResolveWait } from '../worker/coordinator-address.ts';
import { SnapshotDirTakenError } from './snapshot-dir-lock.ts';

/** The environment variable that gives a worker the fd of its exit note (set by the node agent). */
export const EXIT_NOTE_FD_ENV = 'FTRAIN_EXIT_NOTE_FD';
/** The flag a managed snapshot manager names when it cannot listen (the node agent's, not its own --listen). */
export const LISTEN_FLAG_ENV = 'FTRAIN_LISTEN_FLAG';
/** The fd the node agent opens for the exit note. */
export const EXIT_NOTE_FD = 3;

/** At most one progress line this often while waiting (the first failure is said at once). */
export const PROGRESS_EVERY_MS = 5000;

/** The exit code of an error that a restart cannot help, or null (a crash, or a run that ended). */
export function joinFailureCode(err: unknown): number | null {
  if (err instanceof RunEndedError) return null;
  if (err instanceof RefusedError || err instanceof SnapshotDirTakenError) return EXIT_REFUSED;
  if (err instanceof CoordinatorUnreachableError) return EXIT_UNREACHABLE;
  if (err instanceof CoordinatorUnresolvedError) return EXIT_UNRESOLVED;
  return null;
}

function inSeconds(ms: number): string {
  return `${Math.max(0, Math.ceil(ms / 1000))} s`;
}

/** Progress lines for a person watching a node wait for its coordinator, each starting with `prefix`. */
export function waitingLines(prefix: string, write: (line: string) => void): { registerWait(w: RegisterWait): void; resolveWait(w: ResolveWait): void } {
  let lastAtMs = -Infinity;
  const say = (line: string) => {
    const now = Date.now();
    if (now - lastAtMs < PROGRESS_EVERY_MS) return;
    lastAtMs = now;
    write(`${prefix}: ${line}`);
  };
  return {
    registerWait: (w) => say(`waiting for the coordinator at ${w.address} (attempt ${w.attempt}: ${w.failure}); retrying, giving up in ${inSeconds(w.timeoutMs - w.waitedMs)}`),
    resolveWait: (w) => say(`the coordinator's host name "${w.host}" did not resolve (${w.code}); retrying, giving up in ${inSeconds(w.timeoutMs - w.waitedMs)}`),
  };
}

/**
 * Says why the worker gives up: to its node agent through the exit note when it has one (true),
 * else not at all (false: the caller prints the line).
 */
export function writeExitNote(message: string): boolean {
  const fd = Number(process.env[EXIT_NOTE_FD_ENV]);
  if (!Number.isInteger(fd) || fd < 3) return false;
  try {
    writeSync(fd, message);
    closeSync(fd);
    return true;
  } catch {
    return false;
  }
}

/**
 * Collects the exit note a worker writes on `stream` (read from the start, so the pipe never
 * fills). The function returned waits, at most `waitMs`, for the stream to end, then gives the
 * note, or null if there is none.
 */
export function exitNoteOf(stream: Readable): (waitMs: number) => Promise<string | null> {
  let text = '';
  let ended = false;
  const waiters: (() => void)[] = [];
  const end = () => {
    ended = true;
    for (const w of waiters.splice(0)) w();
  };
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => (text += d));
  stream.once('end', end);
  stream.once('close', end);
  stream.once('error', end);
  return (waitMs) =>
    new Promise((resolve) => {
      const note = () => (text.trim() === '' ? null : text.trim());
      if (ended) return resolve(note());
      const timer = setTimeout(() => resolve(note()), waitMs);
      waiters.push(() => {
        clearTimeout(timer);
        resolve(note());
      });
    });
}
