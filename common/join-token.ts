// The job's join token as a member or a tool is given it: a file (`--join-token-file`), a flag
// (`--join-token`, visible in the process list), or the FTRAIN_JOIN_TOKEN environment variable
// (how a node agent hands it to its worker). The coordinator compares it at Register
// (coordinator/admission.ts).

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OptionError } from '../domain/errors.ts';

/** The environment variable a join token may come in (children of a node agent get it so: not on their command line). */
export const JOIN_TOKEN_ENV = 'FTRAIN_JOIN_TOKEN';
/** The shortest token accepted: guessing one must be hopeless. */
export const MIN_TOKEN_LENGTH = 16;

export interface JoinTokenFlags {
  readonly joinToken?: string;
  readonly joinTokenFile?: string;
}

/** The join token the flags give: the file, the flag, or the environment; null when none. */
export function givenJoinToken(v: JoinTokenFlags): string | null {
  if (v.joinTokenFile !== undefined && v.joinToken !== undefined) throw new OptionError('--join-token', 'give the token once: --join-token-file or --join-token, not both');
  let token: string;
  let field: string;
  if (v.joinTokenFile !== undefined) {
    field = '--join-token-file';
    try {
      token = readFileSync(v.joinTokenFile, 'utf8').trim();
    } catch (err) {
      throw new OptionError(field, `cannot read ${v.joinTokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else if (v.joinToken !== undefined) {
    field = '--join-token';
    token = v.joinToken.trim();
  } else {
    const env = process.env[JOIN_TOKEN_ENV];
    if (env === undefined || env.trim() === '') return null;
    field = JOIN_TOKEN_ENV;
    token = env.trim();
  }
  if (token.length < MIN_TOKEN_LENGTH) throw new OptionError(field, `a join token must have at least ${MIN_TOKEN_LENGTH} characters, this one has ${token.length}`);
  if (/\s/.test(token)) throw new OptionError(field, 'a join token must not contain white space');
  return token;
}

/** A new random join token (192 bits, URL-safe). */
export function newJoinToken(): string {
  return randomBytes(24).toString('base64url');
}

