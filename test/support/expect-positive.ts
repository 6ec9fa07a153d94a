// A bench figure that must be a finite number above zero; the failure names the field and its value.

import { expect } from 'vitest';

export function expectPositive(value: unknown, field: string): void {
  expect(typeof value, field).toBe('number');
  expect(Number.isFinite(value as number) && (value as number) > 0, `${field} = ${String(value)}`).toBe(true);
}
