// The files of a disk checkpoint directory, shared by the worker that writes them and the
// coordinator side that checks a resume against them before any node starts:
//   README.txt              a marker for people
//   job.json                the manifest of the job that checkpoints there (CheckpointManifest)
//   stage-N/step-S.bin      a stage's state after S steps
//   stage-N/step-S.json     its record (bytes, crc32, SnapshotHeader), renamed into place last:
//                           present = complete
// The comparison itself is pure (domain/checkpoint-manifest.ts); this module reads and writes.

import { accessSync, constants, existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  checkResume,
  ManifestFormatError,
  parseCheckpointManifest,
  resumeNoteText,
  resumeRefusalText,
  type CheckpointDirView,
  type CheckpointManifest,
  type CheckpointStageView,
  type ReadManifest,
} from '../domain/checkpoint-manifest.ts';
import { OptionError } from '../domain/errors.ts';
import type { JobOptions } from '../domain/job-options.ts';
import type { SnapshotHeader } from '../domain/snapshot-slots.ts';

export const CHECKPOINT_MANIFEST_FILE = 'job.json';
export const CHECKPOINT_README_FILE = 'README.txt';
const STAGE_DIR = /^stage-(\d+)$/;
const RECORD_FILE = /^step-(\d+)\.json$/;

export function stageDirOf(root: string, stage: number): string {
  return join(root, `stage-${stage}`);
}

/** Steps with a complete checkpoint in a stage directory (its record is renamed into place last), ascending. */
export function completeCheckpointSteps(stageDir: string): number[] {
  if (!existsSync(stageDir)) return [];
  return readdirSync(stageDir)
    .map((f) => RECORD_FILE.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** The path of a checkpoint's files without the extension: `.bin` (data), `.json` (record). */
export function checkpointBaseOf(stageDir: string, step: number): string {
  return join(stageDir, `step-${String(step).padStart(9, '0')}`);
}

function readHeader(stageDir: string, step: number): SnapshotHeader | null {
  try {
    const record = JSON.parse(readFileSync(`${checkpointBaseOf(stageDir, step)}.json`, 'utf8')) as { header?: SnapshotHeader };
    return record.header && Array.isArray(record.header.tensors) ? record.header : null;
  } catch {
    return null;
  }
}

/** Thrown by `readCheckpointDir` when the manifest exists but cannot be read. */
export class CheckpointManifestError extends Error {
  override readonly name = 'CheckpointManifestError';
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What an existing checkpoint directory holds: its manifest and the stages with complete checkpoints. */
export function readCheckpointDir(root: string): CheckpointDirView {
  const manifestPath = join(root, CHECKPOINT_MANIFEST_FILE);
  let manifest: ReadManifest | null = null;
  if (existsSync(manifestPath)) {
    try {
      manifest = parseCheckpointManifest(readFileSync(manifestPath, 'utf8'));
    } catch (err) {
      const why = err instanceof ManifestFormatError ? err.message : (err as Error).message;
      throw new CheckpointManifestError(manifestPath, `${manifestPath} is not a readable ftrain checkpoint manifest: ${why}`, { cause: err });
    }
  }
  const stages: CheckpointStageView[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const m = STAGE_DIR.exec(entry.name);
    if (!m || !entry.isDirectory()) continue;
    const stageDir = join(root, entry.name);
    const steps = completeCheckpointSteps(stageDir);
    if (steps.length === 0) continue;
    stages.push({ stage: Number(m[1]), steps, newestHeader: readHeader(stageDir, steps[steps.length - 1]!) });
  }
  stages.sort((a, b) => a.stage - b.stage);
  return { manifest, stages };
}

/**
 * Writes the manifest of the job about to checkpoint into `root`, atomically (every stage's
 * worker writes the same content, so concurrent writers are harmless). An existing manifest is
 * kept while the directory holds checkpoints: they are of the job it describes.
 */
export function writeCheckpointManifest(root: string, manifest: CheckpointManifest): void {
  const path = join(root, CHECKPOINT_MANIFEST_FILE);
  if (existsSync(path) && holdsCheckpoints(root)) return;
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(tmp, path);
}

function holdsCheckpoints(root: string): boolean {
  try {
    return readdirSync(root).some((d) => STAGE_DIR.test(d) && completeCheckpointSteps(join(root, d)).length > 0);
  } catch {
    return false;
  }
}

export interface CheckpointDirCheckOptions {
  /**
   * The nodes run on this machine (`ftrain run`): the directory the coordinator sees is theirs,
   * so it must be creatable and writable here. Otherwise (`ftrain coordinator`) the nodes may
   * see another file system; only what is visible here is checked.
   */
  readonly nodesOnThisMachine: boolean;
}

function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks `--checkpoint-dir` before any node starts: the path must be a usable directory, and
 * checkpoints in it must fit the job (domain/checkpoint-manifest.ts says what is refused and
 * what is only noted). Throws an OptionError naming the flag; returns the note lines to print.
 *
 * For `ftrain coordinator` the directory may exist only on the nodes' machines. When it is not
 * visible here, nothing is checked: each node loads its own stage's checkpoint, and a mismatch
 * shows up as it did before this check existed (the stage fails on a tensor of another size, or
 * the run ends because the checkpoints already reach --steps), exit 1 instead of 2.
 */
export function checkCheckpointDir(job: JobOptions, dataSha256: string, options: CheckpointDirCheckOptions): string[] {
  const dir = job.checkpointDir;
  if (dir === null) return [];
  const flag = '--checkpoint-dir';
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!options.nodesOnThisMachine) return [];
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      // The workers create it: its nearest existing ancestor must be a directory they can write.
      const ancestor = nearestExisting(dir);
      if (!statSync(ancestor).isDirectory()) throw new OptionError(flag, `${dir} cannot be created: ${ancestor} is a file, not a directory (give a directory, or a path that does not exist yet)`);
      if (!writable(ancestor)) throw new OptionError(flag, `${dir} cannot be created: ${ancestor} is not writable by this user (give a directory you can write)`);
      return [];
    }
    throw new OptionError(flag, `${dir} cannot be read (${code ?? (err as Error).message}): give a directory you can write`);
  }
  if (!isDirectory) throw new OptionError(flag, `${dir} is a file, not a directory (give a directory, or a path that does not exist yet)`);
  // The workers write checkpoints and the manifest, and the marker when it is missing; a job
  // that only resumes from a directory with its marker writes nothing there.
  const writes = job.checkpointEvery > 0 || !existsSync(join(dir, CHECKPOINT_README_FILE));
  if (options.nodesOnThisMachine && writes && !writable(dir)) throw new OptionError(flag, `${dir} is not writable by this user (give a directory you can write)`);
  let view: CheckpointDirView;
  try {
    view = readCheckpointDir(dir);
  } catch (err) {
    if (err instanceof CheckpointManifestError) throw new OptionError(flag, `${err.message} (remove it, or start a new directory)`);
    throw new OptionError(flag, `${dir} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): give a directory you can read`);
  }
  const check = checkResume(view, job, dataSha256);
  switch (check.kind) {
    case 'fresh':
      return [];
    case 'refuse':
      throw new OptionError(flag, resumeRefusalText(dir, check.problems));
    case 'resume':
      return check.notes.map(resumeNoteText);
  }
}
