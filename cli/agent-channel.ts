// The channel between a node agent (`ftrain node`) and its worker processes: Node's IPC channel,
// the 'ipc' entry of the worker's stdio (fd 4), JSON messages. A worker tells its agent when it
// has registered with the coordinator (the agent times a restart by it) and when it trains (a
// recovery is over: the agent warms a standby then, not while the node restores its stage). A
// standby worker (`ftrain worker --standby`) warms up, says so, and waits, neither listening nor
// registering nor touching the snapshot directory, until the agent tells it to take over; from
// then on it runs exactly as a freshly started worker.
//
// Why IPC: the agent must hear from every worker (registered, ready) and speak to the standby, and
// the channel closing is one more sign that the agent is gone. Node reads IPC messages as soon as
// the process starts and drops those no one listens to yet, so the agent sends `take-over` only
// after the standby said `standby-ready` (sent once it listens); a standby promoted before that is
// told the moment it is ready. The standby's lifeline is the same as every managed child's: its
// stdin is a pipe the agent never writes, whose end means the agent died; the channel's end too.

import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../common/logging.ts';
import { OptionError } from '../domain/errors.ts';
import type { Backend } from '../domain/job-options.ts';

/** The stdio entry that opens the channel: spawn's fd 4, after the exit note's fd 3. */
export const AGENT_CHANNEL_STDIO = 'ipc';

/**
 * Set (to 1) for a worker the agent starts after the last one died: like a standby that took
 * over, it builds and restores the stage its predecessor held while the coordinator halts the
 * other stages (WorkerNodeOptions.successor).
 */
export const SUCCESSOR_ENV = 'FTRAIN_WORKER_SUCCESSOR';

/** What a worker tells its node agent. */
export type WorkerMessage =
  /** A standby is warm and listens for `take-over`. */
  | { readonly type: 'standby-ready'; readonly warmUpMs: number; readonly rssBytes: number; readonly failure: string | null }
  /** The worker registered with the coordinator at `address`. */
  | { readonly type: 'registered'; readonly address: string }
  /** The worker started (or resumed) training `stage`: a recovery is over. */
  | { readonly type: 'training'; readonly stage: number };

/** What a node agent tells its standby worker. */
export type AgentMessage = { readonly type: 'take-over' };

/** Tells the node agent, if this worker has one (without a channel: nothing). Never throws. */
export function tellAgent(message: WorkerMessage): void {
  if (!process.send || !process.connected) return;
  process.send(message, undefined, undefined, () => undefined);
}

/** A message from a worker, or null for anything else (the agent ignores it). */
export function workerMessageOf(raw: unknown): WorkerMessage | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const m = raw as Record<string, unknown>;
  if (m.type === 'registered' && typeof m.address === 'string') return { type: 'registered', address: m.address };
  if (m.type === 'training' && typeof m.stage === 'number') return { type: 'training', stage: m.stage };
  if (m.type === 'standby-ready' && typeof m.warmUpMs === 'number' && typeof m.rssBytes === 'number') {
    return { type: 'standby-ready', warmUpMs: m.warmUpMs, rssBytes: m.rssBytes, failure: typeof m.failure === 'string' ? m.failure : null };
  }
  return null;
}

/** Tells a ready standby to take over; `onFailed` hears if the message could not be sent (it is dying). */
export function tellTakeOver(child: ChildProcess, onFailed: (err: Error) => void): void {
  const message: AgentMessage = { type: 'take-over' };
  if (!child.connected) {
    onFailed(new Error('the channel to the standby is closed'));
    return;
  }
  child.send(message, (err) => {
    if (err) onFailed(err);
  });
}

/**
 * In a standby worker: warms up for `backend`, tells the agent it is ready, and resolves when the
 * agent says to take over. Exits the process (code 0: it held nothing) if the agent goes first.
 * Throws OptionError when there is no agent to wait for.
 */
export async function standBy(backend: Backend, logger: Logger): Promise<void> {
  if (!process.send || process.env.FTRAIN_MANAGED !== '1') throw new OptionError('--standby', "is for the node agent's own use (`ftrain node` starts its standby worker with it)");
  // Listening first, before anything is awaited: a message with no listener is lost.
  let takeOver!: () => void;
  const told = new Promise<void>((resolve) => (takeOver = resolve));
  const onMessage = (m: unknown) => {
    if ((m as Partial<AgentMessage> | null)?.type === 'take-over') takeOver();
  };
  const agentGone = () => process.exit(0);
  process.on('message', onMessage);
  process.on('disconnect', agentGone);
  process.stdin.on('end', agentGone);
  process.stdin.on('close', agentGone);
  process.stdin.resume();
  // Loaded here: the node agent, which reads this module too, does not load tfjs.
  const { warmUp } = await import('../worker/warm-up.ts');
  const warm = await warmUp(backend);
  logger.debug({ backend, warmUpMs: Math.round(warm.ms), failure: warm.failure }, 'standby worker warm: waiting to take over');
  tellAgent({ type: 'standby-ready', warmUpMs: warm.ms, rssBytes: process.memoryUsage().rss, failure: warm.failure });
  await told;
  // From here on the worker is like any other: its parent watch (stdin) is the command line's.
  process.off('message', onMessage);
  process.off('disconnect', agentGone);
  process.stdin.off('end', agentGone);
  process.stdin.off('close', agentGone);
  process.stdin.pause();
}
