// Exit codes that carry meaning between ftrain processes. A worker exits with one of these when a
// new worker in its place would meet the same fate; its node agent (`ftrain node`) then ends the
// node at once, with the same code, instead of restarting the worker.

/**
 * A bad option or bad data (the message names the flag or the file): every ftrain command. For a
 * worker (its --listen taken, say), a restart would meet the same.
 */
export const EXIT_USAGE = 2;

/**
 * A worker the coordinator no longer knows (declared lost while it was frozen or cut off): its
 * node must not rejoin with its stale state, so the node agent ends the node.
 */
export const EXIT_FENCED = 3;

/**
 * The coordinator refused the registration with a typed refusal (a duplicate node id, an invalid
 * request, ...), or what answers at its address is not an ftrain coordinator. `ftrain node` also
 * exits with it, before starting anything, when another live node agent owns its snapshot
 * directory. (A run that has ended is not a refusal: the worker exits 0.)
 */
export const EXIT_REFUSED = 4;

/** Nothing answered at the coordinator's address for the whole connect timeout. */
export const EXIT_UNREACHABLE = 5;

/** The coordinator's host name does not resolve (or kept failing to, for a bounded time). */
export const EXIT_UNRESOLVED = 6;

/** Worker exits after which a restart cannot help: the node agent ends the node with the same code. */
export const FINAL_WORKER_EXITS: ReadonlySet<number> = new Set([EXIT_USAGE, EXIT_FENCED, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_UNRESOLVED]);
