// The OptionError a call throws, for tests of what options and specs refuse; any other outcome fails the test.

import { OptionError } from '../../domain/errors.ts';

export function refusal(fn: () => unknown): OptionError {
  try {
    fn();
  } catch (err) {
    if (err instanceof OptionError) return err;
    throw err;
  }
  throw new Error('no OptionError thrown');
}
