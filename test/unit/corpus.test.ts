import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { checkCorpusFits, firstInvalidUtf8, loadCorpus, microBatchFor } from '../../domain/corpus.ts';
import { DataError } from '../../domain/errors.ts';

describe('corpus', () => {
  const moby = loadCorpus('moby-dick');

  it('bundles Moby-Dick as real English text', () => {
    expect(moby.bytes.length).toBeGreaterThan(1_000_000);
    expect(new TextDecoder().decode(moby.bytes.subarray(0, 200_000))).toContain('Call me Ishmael');
  });

  it('makes the batch of a step a pure function of (seed, step)', () => {
    const a = microBatchFor(moby, 7, 12, 1, 4, 64);
    const b = microBatchFor(moby, 7, 12, 1, 4, 64);
    expect(a.inputs).toEqual(b.inputs);
    expect(microBatchFor(moby, 7, 13, 1, 4, 64).inputs).not.toEqual(a.inputs);
    expect(microBatchFor(moby, 8, 12, 1, 4, 64).inputs).not.toEqual(a.inputs);
    // targets are the inputs shifted by one byte
    expect(a.targets.subarray(0, 63)).toEqual(a.inputs.subarray(1, 64));
  });

  it('refuses a missing file with a clear error', () => {
    expect(() => loadCorpus('/no/such/file.txt')).toThrow(DataError);
    expect(() => loadCorpus('/no/such/file.txt')).toThrow(/does not exist/);
  });

  it('refuses a text too short for one sequence', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ftrain-corpus-'));
    const path = join(dir, 'short.txt');
    writeFileSync(path, 'too short');
    const corpus = loadCorpus(path);
    expect(() => checkCorpusFits(corpus, 64)).toThrow(/too short for one batch/);
    expect(() => checkCorpusFits(corpus, 8)).not.toThrow();
  });
});

describe('corpus text check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ftrain-corpus-text-'));
  const file = (name: string, bytes: Uint8Array | string) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };

  it('loads UTF-8 text of any script', () => {
    const text = 'Call me Ishmael. Ça va, Ahab? Моби Дик, 白鯨, 🐋\n'.repeat(10);
    expect(loadCorpus(file('utf8.txt', text)).bytes.length).toBe(Buffer.byteLength(text));
  });

  it('refuses a binary file, naming it and the first NUL byte', () => {
    const bytes = Buffer.concat([Buffer.from('\x7fELF'), Buffer.from([2, 1, 1, 0]), Buffer.from('rest of a binary')]);
    const path = file('elf', bytes);
    expect(() => loadCorpus(path)).toThrow(DataError);
    expect(() => loadCorpus(path)).toThrow(`data file ${path} is not UTF-8 text: byte 7 is a NUL (0x00); pass --data with a UTF-8 text file`);
  });

  it('refuses text in another encoding, naming the offset of the first invalid byte', () => {
    const path = file('latin1.txt', Buffer.from('Caf\xe9 au lait, and more text after it', 'latin1'));
    expect(() => loadCorpus(path)).toThrow(`data file ${path} is not UTF-8 text: byte 3 (0xe9) begins no valid UTF-8 character; pass --data with a UTF-8 text file`);
    // UTF-16 with a BOM: the BOM's 0xff comes first.
    expect(() => loadCorpus(file('utf16.txt', Buffer.from('\ufeffhello', 'utf16le')))).toThrow(/byte 0 \(0xff\)/);
  });

  it('finds the first invalid sequence exactly where the native check says there is one', () => {
    const utf8ish = fc.array(
      fc.oneof(
        fc.string({ unit: 'grapheme', maxLength: 4 }).map((s) => [...Buffer.from(s)]),
        fc.array(fc.integer({ min: 0x80, max: 0xff }), { minLength: 1, maxLength: 3 }),
      ),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(utf8ish, (chunks) => {
        const bytes = Uint8Array.from(chunks.flat());
        const at = firstInvalidUtf8(bytes);
        expect(at === -1).toBe(isUtf8(bytes));
        if (at >= 0) {
          expect(isUtf8(bytes.subarray(0, at))).toBe(true);
          expect(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, at))).not.toThrow();
          // ... and no character of 1 to 4 bytes starts at `at`.
          for (let k = 1; k <= 4 && at + k <= bytes.length; k++) expect(isUtf8(bytes.subarray(0, at + k))).toBe(false);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
