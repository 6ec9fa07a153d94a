// Whether every index 0..n-1 satisfies a predicate, asked again after each event that may have
// made one more index satisfy it (a stage became ready): the answer of `Array.every`, but the
// search resumes at the index that failed last time, which most events leave failing. While
// indices only come to satisfy the predicate, the checks of a whole start cost O(n) in all,
// where a scan per event costs O(n²); when some go back, it is a scan as before. The predicate
// is read only, so where the search starts never changes the answer.

export class EveryCursor {
  /** The index that failed last; where the next search starts. */
  private at = 0;

  every(n: number, holds: (i: number) => boolean): boolean {
    for (let k = 0; k < n; k++) {
      const i = (this.at + k) % n;
      if (!holds(i)) {
        this.at = i;
        return false;
      }
    }
    return true;
  }
}
