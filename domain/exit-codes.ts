// Exit codes that carry meaning between ftrain processes.

/**
 * A worker the coordinator no longer knows (declared lost while it was frozen or cut off): its
 * node must not rejoin with its stale state, so the node agent ends the node.
 */
export const EXIT_FENCED = 3;
