// Whether a job may resume from a checkpoint directory: the pure comparison (hand-made views,
// with headers built from the real model's parameter specs) and the adapter on real files.

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCheckpointDir, readCheckpointDir, writeCheckpointManifest } from '../../common/checkpoint-dir.ts';
import {
  CHECKPOINT_FORMAT_VERSION,
  checkResume,
  checkpointManifestOf,
  inferJobFromHeaders,
  parseCheckpointManifest,
  resumeRefusalText,
  type CheckpointDirView,
  type CheckpointManifest,
} from '../../domain/checkpoint-manifest.ts';
import { compileJobOptions, type JobOptions, type RawJobOptions } from '../../domain/job-options.ts';
import type { SnapshotHeader } from '../../domain/snapshot-slots.ts';
import { stageParamSpecs } from '../../worker/gpt-stage.ts';
import { refusal } from '../support/refusal.ts';

const SHA = 'a'.repeat(64);

function job(raw: RawJobOptions = {}): JobOptions {
  return compileJobOptions({ nodes: 2, steps: 20, dModel: 32, heads: 2, seqLen: 32, checkpointDir: '/ck', ...raw });
}

/** The header a stage of `j` writes: the model's real parameter names and shapes. */
function headerOf(j: JobOptions, stage: number, step: number): SnapshotHeader {
  let offset = 0;
  const tensors = stageParamSpecs({ stage, numStages: j.stages }, j.model).map((s) => {
    const length = s.shape.reduce((a, b) => a * b, 1);
    const entry = { name: s.name, shape: s.shape, offset, length };
    offset += length * 4;
    return entry;
  });
  return { stage, step, tensors, scalars: { adamT: step, seed: j.seed, gradNorm: 1 } };
}

/** The directory `writer` leaves with checkpoints of `steps` on every stage (newest last). */
function viewOf(writer: JobOptions, steps: number[], manifest: CheckpointManifest | null = checkpointManifestOf(writer, SHA)): CheckpointDirView {
  return {
    manifest: manifest ? { kind: 'current', manifest } : null,
    stages: Array.from({ length: writer.stages }, (_, stage) => ({ stage, steps, newestHeader: headerOf(writer, stage, steps[steps.length - 1]!) })),
  };
}

describe('checkResume', () => {
  it('resumes a matching job from the newest step every stage holds', () => {
    expect(checkResume(viewOf(job(), [10, 15]), job(), SHA)).toEqual({ kind: 'resume', step: 15, notes: [] });
    const skewed: CheckpointDirView = { ...viewOf(job(), [10, 15]), stages: [
      { stage: 0, steps: [15, 20], newestHeader: null },
      { stage: 1, steps: [10, 15], newestHeader: null },
    ] };
    expect(checkResume(skewed, job(), SHA)).toMatchObject({ kind: 'resume', step: 15 });
  });

  it('starts fresh when no stage holds a complete checkpoint, whatever the manifest says', () => {
    expect(checkResume({ manifest: { kind: 'current', manifest: checkpointManifestOf(job({ nodes: 5 }), SHA) }, stages: [] }, job(), SHA)).toEqual({ kind: 'fresh' });
  });

  it.each([
    [{ dModel: 64, heads: 4 }, [['--d-model', 32, 64], ['--heads', 2, 4]]],
    [{ seqLen: 64 }, [['--seq-len', 32, 64]]],
    [{ layersPerStage: 2 }, [['--layers-per-stage', 1, 2]]],
    [{ ffnMult: 2 }, [['--ffn-mult', 4, 2]]],
  ] as const)('refuses another model shape %o, naming each flag and both values', (raw, wanted) => {
    const check = checkResume(viewOf(job(), [10]), job(raw), SHA);
    expect(check).toEqual({ kind: 'refuse', problems: [{ kind: 'model', differences: wanted.map(([flag, there, here]) => ({ flag, there, here })) }] });
  });

  it('refuses another stage count, and a stage directory beyond the job', () => {
    expect(checkResume(viewOf(job(), [10]), job({ nodes: 3 }), SHA)).toEqual({ kind: 'refuse', problems: [{ kind: 'stages', there: 2, here: 3 }] });
    expect(checkResume(viewOf(job(), [10]), job({ nodes: 1 }), SHA)).toEqual({ kind: 'refuse', problems: [{ kind: 'stages', there: 2, here: 1 }] });
    const beyond = viewOf(job(), [10]);
    const stray = { ...beyond, stages: [...beyond.stages, { stage: 2, steps: [10], newestHeader: null }] };
    expect(checkResume(stray, job(), SHA)).toEqual({ kind: 'refuse', problems: [{ kind: 'stages', there: 3, here: 2 }] });
  });

  it('refuses --steps at or below the resume step, not above it, and never a run without --steps', () => {
    expect(checkResume(viewOf(job(), [10, 15]), job({ steps: 15 }), SHA)).toEqual({ kind: 'refuse', problems: [{ kind: 'steps', resumeStep: 15, steps: 15 }] });
    expect(checkResume(viewOf(job(), [10, 15]), job({ steps: 10 }), SHA)).toMatchObject({ kind: 'refuse', problems: [{ kind: 'steps' }] });
    expect(checkResume(viewOf(job(), [10, 15]), job({ steps: 16 }), SHA)).toMatchObject({ kind: 'resume', step: 15 });
    expect(checkResume(viewOf(job(), [10, 15]), job({ steps: null }), SHA)).toMatchObject({ kind: 'resume', step: 15 });
  });

  it('refuses stages that share no checkpoint step', () => {
    const view: CheckpointDirView = { manifest: viewOf(job(), [5]).manifest, stages: [
      { stage: 0, steps: [20, 25], newestHeader: null },
      { stage: 1, steps: [5, 10], newestHeader: null },
    ] };
    expect(checkResume(view, job(), SHA)).toEqual({ kind: 'refuse', problems: [{ kind: 'no-common-step', stepsByStage: [[20, 25], [5, 10]] }] });
    // A stage of the job with no checkpoint at all.
    const half: CheckpointDirView = { ...view, stages: [view.stages[0]!] };
    expect(checkResume(half, job(), SHA)).toMatchObject({ kind: 'refuse', problems: [{ kind: 'no-common-step', stepsByStage: [[20, 25], []] }] });
  });

  it('refuses a manifest of a newer format', () => {
    const view: CheckpointDirView = { manifest: { kind: 'newer', format: CHECKPOINT_FORMAT_VERSION + 1 }, stages: viewOf(job(), [5]).stages };
    expect(checkResume(view, job(), SHA)).toEqual({ kind: 'refuse', problems: [{ kind: 'format', there: CHECKPOINT_FORMAT_VERSION + 1, here: CHECKPOINT_FORMAT_VERSION }] });
  });

  it('notes another seed or other training text, and resumes all the same', () => {
    const check = checkResume(viewOf(job(), [10]), job({ seed: 7, data: '/other.txt' }), 'b'.repeat(64));
    expect(check).toEqual({ kind: 'resume', step: 10, notes: [
      { kind: 'seed', there: 0, here: 7 },
      { kind: 'data', there: 'moby-dick', here: '/other.txt' },
    ] });
  });

  it('judges checkpoints written before the manifest from their records', () => {
    const legacy = (j: JobOptions) => viewOf(j, [10], null);
    expect(checkResume(legacy(job()), job(), SHA)).toEqual({ kind: 'resume', step: 10, notes: [{ kind: 'unrecorded' }] });
    expect(checkResume(legacy(job()), job({ dModel: 64 }), SHA)).toMatchObject({ kind: 'refuse', problems: [{ kind: 'model', differences: [{ flag: '--d-model', there: 32, here: 64 }] }] });
    expect(checkResume(legacy(job()), job({ nodes: 3 }), SHA)).toMatchObject({ kind: 'refuse', problems: [{ kind: 'stages', there: 2, here: 3 }] });
    expect(checkResume(legacy(job({ seed: 4 })), job(), SHA)).toMatchObject({ kind: 'resume', notes: [{ kind: 'seed', there: 4, here: 0 }, { kind: 'unrecorded' }] });
    // --heads leaves the parameter shapes alone: the records cannot tell it.
    expect(checkResume(legacy(job()), job({ heads: 4 }), SHA)).toMatchObject({ kind: 'resume' });
  });
});

describe('inferJobFromHeaders', () => {
  it.each([
    [{ nodes: 1 }],
    [{ nodes: 3, layersPerStage: 2, ffnMult: 2, dModel: 48, heads: 4, seqLen: 16, seed: 9 }],
  ])('reads the stage count, the shape and the seed back from the model of %o', (raw) => {
    const j = job(raw);
    const inferred = inferJobFromHeaders(Array.from({ length: j.stages }, (_, s) => headerOf(j, s, 4)));
    const { heads: _heads, ...shape } = j.model;
    expect(inferred).toEqual({ stages: j.stages, model: shape, seed: j.seed });
  });
});

describe('parseCheckpointManifest', () => {
  it('reads back what a run writes, and refuses what is not a manifest', () => {
    const m = checkpointManifestOf(job(), SHA);
    expect(parseCheckpointManifest(JSON.stringify(m))).toEqual({ kind: 'current', manifest: m });
    expect(parseCheckpointManifest(JSON.stringify({ format: 99, anything: true }))).toEqual({ kind: 'newer', format: 99 });
    expect(() => parseCheckpointManifest('{')).toThrow(/not JSON/);
    expect(() => parseCheckpointManifest(JSON.stringify({ ...m, stages: 'two' }))).toThrow(/stages/);
  });
});

describe('resumeRefusalText', () => {
  it('is one line naming every flag that differs', () => {
    const check = checkResume(viewOf(job(), [10]), job({ nodes: 3, dModel: 64, heads: 2 }), SHA);
    if (check.kind !== 'refuse') throw new Error(check.kind);
    const text = resumeRefusalText('/ck', check.problems);
    expect(text).toBe(
      '/ck holds the checkpoints of a 2-stage job; --nodes 3 here (resume with --nodes 2, or start a new directory); ' +
        'it also holds checkpoints of another model: --d-model 32 there, 64 here (start a new directory, or resume with the same shape)',
    );
  });
});

describe('checkCheckpointDir (files)', () => {
  const root = mkdtempSync(join(tmpdir(), 'ftrain-ckdir-'));
  const local = { nodesOnThisMachine: true };

  /** A directory as a run of `writer` leaves it (records only: the data files are not read). */
  function writeDir(name: string, writer: JobOptions, steps: number[], manifest = true): string {
    const dir = join(root, name);
    for (let stage = 0; stage < writer.stages; stage++) {
      mkdirSync(join(dir, `stage-${stage}`), { recursive: true });
      for (const step of steps) {
        const base = join(dir, `stage-${stage}`, `step-${String(step).padStart(9, '0')}`);
        writeFileSync(`${base}.json`, JSON.stringify({ step, bytes: 0, crc32: 0, header: headerOf(writer, stage, step) }));
      }
      // A torn write: data without its record is no checkpoint.
      writeFileSync(join(dir, `stage-${stage}`, `step-${String(999).padStart(9, '0')}.bin`), '');
    }
    if (manifest) writeCheckpointManifest(dir, checkpointManifestOf(writer, SHA));
    return dir;
  }

  it('refuses a regular file, or a path under one, naming the flag', () => {
    const file = join(root, 'file');
    writeFileSync(file, 'x');
    for (const dir of [file, join(file, 'ck')]) {
      const err = refusal(() => checkCheckpointDir(job({ checkpointDir: dir }), SHA, local));
      expect(err.field).toBe('--checkpoint-dir');
      expect(err.message).toMatch(/is a file, not a directory/);
    }
    // The coordinator of remote nodes still refuses a file it sees at the path.
    expect(refusal(() => checkCheckpointDir(job({ checkpointDir: file }), SHA, { nodesOnThisMachine: false })).field).toBe('--checkpoint-dir');
  });

  it('accepts a path that does not exist yet, and one the coordinator of remote nodes cannot see', () => {
    expect(checkCheckpointDir(job({ checkpointDir: join(root, 'new', 'ck') }), SHA, local)).toEqual([]);
    expect(checkCheckpointDir(job({ checkpointDir: join(root, 'file', 'ck') }), SHA, { nodesOnThisMachine: false })).toEqual([]);
  });

  it('reads only complete checkpoints, and refuses a mismatch with the directory in the line', () => {
    const dir = writeDir('two-stage', job(), [4, 6]);
    expect(readCheckpointDir(dir).stages.map((s) => s.steps)).toEqual([[4, 6], [4, 6]]);
    expect(checkCheckpointDir(job({ checkpointDir: dir }), SHA, local)).toEqual([]);
    const err = refusal(() => checkCheckpointDir(job({ checkpointDir: dir, dModel: 64 }), SHA, local));
    expect(err.message).toBe(`--checkpoint-dir: ${dir} holds checkpoints of another model: --d-model 32 there, 64 here (start a new directory, or resume with the same shape)`);
  });

  it('keeps the manifest of a directory that holds checkpoints, and replaces one that holds none', () => {
    const dir = writeDir('kept', job(), [2]);
    writeCheckpointManifest(dir, checkpointManifestOf(job({ seed: 5 }), SHA));
    expect(JSON.parse(readFileSync(join(dir, 'job.json'), 'utf8')).seed).toBe(0);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    writeCheckpointManifest(empty, checkpointManifestOf(job(), SHA));
    writeCheckpointManifest(empty, checkpointManifestOf(job({ nodes: 3 }), SHA));
    expect(JSON.parse(readFileSync(join(empty, 'job.json'), 'utf8')).stages).toBe(3);
  });

  it('refuses a manifest that cannot be read, naming its file', () => {
    const dir = writeDir('bad-manifest', job(), [2], false);
    writeFileSync(join(dir, 'job.json'), 'not json');
    expect(refusal(() => checkCheckpointDir(job({ checkpointDir: dir }), SHA, local)).message).toMatch(/job\.json is not a readable ftrain checkpoint manifest: not JSON/);
  });
});
