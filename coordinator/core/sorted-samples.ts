// A multiset of numbers kept sorted, for the median of every stage's recent step times: a sample
// goes in and the one it pushes out of its stage's window goes, each a binary search and one
// move of the array. Sorting every stage's samples again at each report cost a millisecond per
// report at a thousand stages (snapshot-interval.ts).

export class SortedSamples {
  private readonly sorted: number[] = [];

  get size(): number {
    return this.sorted.length;
  }

  add(value: number): void {
    this.sorted.splice(this.upperBound(value), 0, value);
  }

  /** Takes one sample equal to `value` out; false when there is none. */
  delete(value: number): boolean {
    const i = this.upperBound(value) - 1;
    if (i < 0 || this.sorted[i] !== value) return false;
    this.sorted.splice(i, 1);
    return true;
  }

  clear(): void {
    this.sorted.length = 0;
  }

  /** As snapshot-interval.ts's `median` of the same samples: the middle one, or the mean of the two middle ones; null for none. */
  median(): number | null {
    const n = this.sorted.length;
    if (n === 0) return null;
    const mid = n >> 1;
    return n % 2 === 1 ? this.sorted[mid]! : (this.sorted[mid - 1]! + this.sorted[mid]!) / 2;
  }

  /** The first index whose sample is greater than `value`. */
  private upperBound(value: number): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! <= value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
