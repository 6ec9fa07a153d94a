// One error class per condition. Each carries the context a user needs and says what to do.

/** Thrown when a command-line option or job option is missing, malformed or out of range. */
export class OptionError extends Error {
  override readonly name = 'OptionError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** Thrown when the training text cannot be read or cannot fill one batch. */
export class DataError extends Error {
  override readonly name = 'DataError';
  constructor(
    message: string,
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Thrown when the requested tfjs backend cannot be loaded on this machine. */
export class BackendUnavailableError extends Error {
  override readonly name = 'BackendUnavailableError';
  constructor(
    readonly backend: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Thrown when a peer sends a message that breaks the wire contract (wrong stage, step, shape). */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(message: string) {
    super(message);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
