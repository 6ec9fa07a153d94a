// The job a checkpoint directory belongs to, and whether a new job may resume from it.
//
// A run that checkpoints writes a manifest of its job (stage count, model shape, seed, data)
// into the directory. Before any node starts, the coordinator reads the directory (the adapter
// in common/checkpoint-dir.ts) and `checkResume` compares what it found with the new job:
//   refuse  what cannot work: another stage count or model shape (the tensors do not fit), a
//           --steps at or below the newest checkpoint (nothing to train), stages with no
//           checkpoint step in common (a fresh start would mix with the old files), a newer format;
//   note    what works but differs: another --seed (the remaining steps draw other batches than
//           the first run would have) or other training text (training goes on, on that text).
// A directory written before manifests existed is judged from its checkpoint records: their
// tensor shapes give --d-model, --seq-len, --layers-per-stage, --ffn-mult and the stage count,
// their scalars the seed; --heads and the data cannot be told from them.

import type { JobOptions, ModelOptions } from './job-options.ts';
import type { SnapshotHeader } from './snapshot-slots.ts';

/** The manifest format this ftrain writes and reads. */
export const CHECKPOINT_FORMAT_VERSION = 1;

export interface CheckpointManifest {
  readonly format: number;
  readonly stages: number;
  readonly model: ModelOptions;
  readonly seed: number;
  /** `--data` as the writing job gave it (for messages). */
  readonly data: string;
  /** sha256 of the training text; null when the writer did not know it. */
  readonly dataSha256: string | null;
}

/** One stage directory of a checkpoint directory: its complete checkpoints. */
export interface CheckpointStageView {
  readonly stage: number;
  /** Steps with a complete checkpoint (record present), ascending. */
  readonly steps: readonly number[];
  /** The header of the newest record, or null when it could not be read. */
  readonly newestHeader: SnapshotHeader | null;
}

/** A manifest as read: one this ftrain understands, or one of a newer format it cannot. */
export type ReadManifest =
  | { readonly kind: 'current'; readonly manifest: CheckpointManifest }
  | { readonly kind: 'newer'; readonly format: number };

/** What the adapter found in a checkpoint directory. */
export interface CheckpointDirView {
  /** null: no manifest (written before manifests existed, or no checkpoint yet). */
  readonly manifest: ReadManifest | null;
  /** Stage directories holding at least one complete checkpoint, by stage. */
  readonly stages: readonly CheckpointStageView[];
}

/** A model-shape flag and the field it sets. */
const MODEL_FLAGS = [
  ['--d-model', 'dModel'],
  ['--seq-len', 'seqLen'],
  ['--heads', 'heads'],
  ['--layers-per-stage', 'layersPerStage'],
  ['--ffn-mult', 'ffnMult'],
] as const satisfies readonly (readonly [string, keyof ModelOptions])[];

export type ModelFlag = (typeof MODEL_FLAGS)[number][0];

/** Why a job cannot resume from the directory. */
export type ResumeProblem =
  | { readonly kind: 'format'; readonly there: number; readonly here: number }
  | { readonly kind: 'stages'; readonly there: number; readonly here: number }
  | { readonly kind: 'model'; readonly differences: readonly { readonly flag: ModelFlag; readonly there: number; readonly here: number }[] }
  | { readonly kind: 'no-common-step'; readonly stepsByStage: readonly (readonly number[])[] }
  | { readonly kind: 'steps'; readonly resumeStep: number; readonly steps: number };

/** What differs from the job that wrote the checkpoints, without stopping the resume. */
export type ResumeNote =
  | { readonly kind: 'seed'; readonly there: number; readonly here: number }
  | { readonly kind: 'data'; readonly there: string; readonly here: string }
  | { readonly kind: 'unrecorded' };

export type ResumeCheck =
  /** No complete checkpoint in the directory: the job starts at step 0. */
  | { readonly kind: 'fresh' }
  /** The job resumes from the checkpoint of `step` (the newest step every stage holds). */
  | { readonly kind: 'resume'; readonly step: number; readonly notes: readonly ResumeNote[] }
  | { readonly kind: 'refuse'; readonly problems: readonly ResumeProblem[] };

/** The manifest of a job that checkpoints. */
export function checkpointManifestOf(job: JobOptions, dataSha256: string | null): CheckpointManifest {
  return { format: CHECKPOINT_FORMAT_VERSION, stages: job.stages, model: { ...job.model }, seed: job.seed, data: job.data, dataSha256 };
}

/** Thrown by `parseCheckpointManifest` when the text is not a manifest. */
export class ManifestFormatError extends Error {
  override readonly name = 'ManifestFormatError';
}

function wholeNumber(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new ManifestFormatError(`${field} is not a whole number`);
  return value;
}

/** Parses a manifest; of a manifest of a newer format only its format is read (checkResume refuses it). */
export function parseCheckpointManifest(text: string): ReadManifest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new ManifestFormatError(`not JSON (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null) throw new ManifestFormatError('not a JSON object');
  const o = v as Record<string, unknown>;
  const format = wholeNumber(o.format, 'format');
  const model = (typeof o.model === 'object' && o.model !== null ? o.model : {}) as Record<string, unknown>;
  if (format > CHECKPOINT_FORMAT_VERSION) return { kind: 'newer', format };
  const manifest: CheckpointManifest = {
    format,
    stages: wholeNumber(o.stages, 'stages'),
    model: {
      seqLen: wholeNumber(model.seqLen, 'model.seqLen'),
      dModel: wholeNumber(model.dModel, 'model.dModel'),
      heads: wholeNumber(model.heads, 'model.heads'),
      layersPerStage: wholeNumber(model.layersPerStage, 'model.layersPerStage'),
      ffnMult: wholeNumber(model.ffnMult, 'model.ffnMult'),
    },
    seed: wholeNumber(o.seed, 'seed'),
    data: typeof o.data === 'string' ? o.data : '',
    dataSha256: typeof o.dataSha256 === 'string' ? o.dataSha256 : null,
  };
  return { kind: 'current', manifest };
}

/** What the job that wrote the checkpoints can be told from the records alone (no manifest). */
export interface InferredJob {
  /** From the stage whose record holds the head: the last stage. */
  readonly stages: number | null;
  readonly model: Partial<ModelOptions>;
  readonly seed: number | null;
}

/** Reads the shape of the writing job from checkpoint headers (the model's parameter names and shapes). */
export function inferJobFromHeaders(headers: readonly SnapshotHeader[]): InferredJob {
  let stages: number | null = null;
  let seed: number | null = null;
  const model: { -readonly [K in keyof ModelOptions]?: ModelOptions[K] } = {};
  for (const h of headers) {
    const shape = (name: string) => h.tensors.find((t) => t.name === name)?.shape;
    if (shape('head')) stages = h.stage + 1;
    const pos = shape('pos_emb');
    if (pos?.length === 2) model.seqLen = pos[0]!;
    const gain = h.tensors.find((t) => /^block\d+\.ln1\.gain$/.test(t.name) || t.name === 'ln_f.gain')?.shape;
    if (gain?.length === 1) model.dModel = gain[0]!;
    const blocks = new Set(h.tensors.flatMap((t) => /^block(\d+)\./.exec(t.name)?.[1] ?? []));
    if (blocks.size > 0) model.layersPerStage = blocks.size;
    const w1 = h.tensors.find((t) => /^block\d+\.mlp\.w1$/.test(t.name))?.shape;
    if (w1?.length === 2 && w1[0]! > 0) model.ffnMult = w1[1]! / w1[0]!;
    if (typeof h.scalars.seed === 'number') seed = h.scalars.seed;
  }
  return { stages, model, seed };
}

/** The newest step every stage of `stages` holds, as the coordinator core picks it. */
export function newestCommonStep(view: CheckpointDirView, stages: number): number | null {
  const sets = Array.from({ length: stages }, (_, s) => new Set(view.stages.find((v) => v.stage === s)?.steps ?? []));
  const common = [...(sets[0] ?? [])].filter((step) => sets.every((set) => set.has(step)));
  return common.length > 0 ? Math.max(...common) : null;
}

/** Compares a checkpoint directory with the job that would resume from it. */
export function checkResume(view: CheckpointDirView, job: JobOptions, dataSha256: string): ResumeCheck {
  if (view.stages.length === 0) return { kind: 'fresh' };
  if (view.manifest?.kind === 'newer') return { kind: 'refuse', problems: [{ kind: 'format', there: view.manifest.format, here: CHECKPOINT_FORMAT_VERSION }] };
  const m = view.manifest?.manifest ?? null;
  const inferred = inferJobFromHeaders(view.stages.flatMap((s) => (s.newestHeader ? [s.newestHeader] : [])));
  const problems: ResumeProblem[] = [];

  // A stage directory beyond the recorded count is a stage of a larger job all the same.
  const highestStage = Math.max(...view.stages.map((s) => s.stage)) + 1;
  const stagesThere = Math.max(m?.stages ?? inferred.stages ?? 0, highestStage);
  if (stagesThere !== job.stages) problems.push({ kind: 'stages', there: stagesThere, here: job.stages });

  const modelThere: Partial<ModelOptions> = m?.model ?? inferred.model;
  const differences = MODEL_FLAGS.flatMap(([flag, field]) => {
    const there = modelThere[field];
    return there !== undefined && there !== job.model[field] ? [{ flag, there, here: job.model[field] }] : [];
  });
  if (differences.length > 0) problems.push({ kind: 'model', differences });

  // Which step the job would resume from only means something for the same stages.
  let resumeStep: number | null = null;
  if (stagesThere === job.stages) {
    resumeStep = newestCommonStep(view, job.stages);
    if (resumeStep === null) {
      problems.push({ kind: 'no-common-step', stepsByStage: Array.from({ length: job.stages }, (_, s) => view.stages.find((v) => v.stage === s)?.steps ?? []) });
    } else if (job.steps !== null && resumeStep >= job.steps) {
      problems.push({ kind: 'steps', resumeStep, steps: job.steps });
    }
  }
  if (problems.length > 0 || resumeStep === null) return { kind: 'refuse', problems };

  const notes: ResumeNote[] = [];
  // The records say which seed wrote the checkpoints resumed from; the manifest, the job that began the directory.
  const seedThere = inferred.seed ?? m?.seed ?? null;
  if (seedThere !== null && seedThere !== job.seed) notes.push({ kind: 'seed', there: seedThere, here: job.seed });
  if (m?.dataSha256 && m.dataSha256 !== dataSha256) notes.push({ kind: 'data', there: m.data, here: job.data });
  if (!m) notes.push({ kind: 'unrecorded' });
  return { kind: 'resume', step: resumeStep, notes };
}

function stepList(steps: readonly number[]): string {
  return steps.length === 0 ? 'none' : steps.join(', ');
}

/** What a problem says after "DIR holds" (or "it also holds"). */
function problemText(p: ResumeProblem): string {
  switch (p.kind) {
    case 'format':
      return `a manifest of checkpoint format ${p.there}; this ftrain reads format ${p.here} (use a newer ftrain, or start a new directory)`;
    case 'stages':
      return `the checkpoints of a ${p.there}-stage job; --nodes ${p.here} here (resume with --nodes ${p.there}, or start a new directory)`;
    case 'model':
      return `checkpoints of another model: ${p.differences.map((d) => `${d.flag} ${d.there} there, ${d.here} here`).join(', ')} (start a new directory, or resume with the same shape)`;
    case 'no-common-step':
      return `checkpoints with no step that every stage has (${p.stepsByStage.map((s, i) => `stage ${i}: ${stepList(s)}`).join('; ')}): nothing can be resumed, and a new run would mix its checkpoints with them (start a new directory)`;
    case 'steps':
      return `checkpoints that reach step ${p.resumeStep}; --steps ${p.steps} would have nothing to train: give --steps above ${p.resumeStep}`;
  }
}

/** The one line that refuses a resume: `DIR holds ...; it also holds ...`. */
export function resumeRefusalText(dir: string, problems: readonly ResumeProblem[]): string {
  return `${dir} holds ${problems.map(problemText).join('; it also holds ')}`;
}

/** A line the run prints before it starts, for a difference that does not stop the resume. */
export function resumeNoteText(n: ResumeNote): string {
  switch (n.kind) {
    case 'seed':
      return `note: --seed ${n.here} here, ${n.there} in the run that wrote the checkpoints: the steps still to train draw other batches than an uninterrupted run would`;
    case 'data':
      return `note: --data ${n.here} here, ${n.there} (another text) in the run that began the checkpoints: training goes on from the checkpoint, on the text given here`;
    case 'unrecorded':
      return 'note: these checkpoints predate the job manifest (job.json): their stage count, model shape and seed were checked from their records; --heads and --data cannot be';
  }
}
