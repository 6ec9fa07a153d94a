// The lowest and highest of a set of numbers that move one at a time: the slots' last steps, whose
// minimum is the steps every slot has completed and whose maximum the step under way. A step
// report moves one slot's step on by one: kept here in O(1), where a scan of every slot per
// report would cost O(slots) and O(slots²) per step at a thousand nodes. The owner builds it anew
// (`of`) after any other change, and when `move` says it can no longer tell.

export class StepExtent {
  private constructor(
    /** The lowest value; Infinity for none (as Math.min of nothing). */
    public min: number,
    /** The highest value; -Infinity for none. */
    public max: number,
    /** How many values equal `min`, and `max`. */
    private atMin: number,
    private atMax: number,
  ) {}

  static of(values: readonly number[]): StepExtent {
    let min = Infinity;
    let max = -Infinity;
    let atMin = 0;
    let atMax = 0;
    for (const v of values) {
      if (v < min) [min, atMin] = [v, 1];
      else if (v === min) atMin += 1;
      if (v > max) [max, atMax] = [v, 1];
      else if (v === max) atMax += 1;
    }
    return new StepExtent(min, max, atMin, atMax);
  }

  /**
   * One value changes from `from` (which must be one of the set) to `to`. False when the extent
   * is no longer known (the last value at the minimum or maximum moved inward): build it anew.
   */
  move(from: number, to: number): boolean {
    if (from === to) return true;
    if (to < this.min) [this.min, this.atMin] = [to, 1];
    else if (to === this.min) this.atMin += 1;
    if (to > this.max) [this.max, this.atMax] = [to, 1];
    else if (to === this.max) this.atMax += 1;
    if (from === this.min && --this.atMin === 0) return false;
    if (from === this.max && --this.atMax === 0) return false;
    return true;
  }
}
