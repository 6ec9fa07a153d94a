import { describe, expect, it } from 'vitest';
import { joinHint } from '../../cli/join-hint.ts';
import { hostOf, isLoopbackHost, isWildcardHost } from '../../domain/host-port.ts';

describe('the join hint of ftrain coordinator', () => {
  it('names the listen host when it is a specific address', () => {
    expect(joinHint('10.0.0.5', 7070, 'vm')).toBe('nodes join with: ftrain node --coordinator 10.0.0.5:7070');
    expect(joinHint('coord.example', 7070, 'vm')).toBe('nodes join with: ftrain node --coordinator coord.example:7070');
  });

  it('names this machine for a wildcard address, which no node can dial', () => {
    for (const host of ['0.0.0.0', '::', '[::]']) expect(joinHint(host, 7070, 'vm')).toMatch(/^nodes join with: ftrain node --coordinator vm:7070 /);
  });

  it('says that only nodes on this machine can join a loopback address', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '[::1]']) {
      const hint = joinHint(host, 7070, 'vm');
      expect(hint).toContain(`ftrain node --coordinator ${host}:7070`);
      expect(hint).toContain('only nodes on this machine can join');
      expect(hint).not.toContain('vm:');
    }
    expect(joinHint('10.0.0.5', 7070, 'vm')).not.toContain('only nodes');
  });

  it('reads hosts as the listen flag gives them', () => {
    expect(hostOf('[::1]:7070')).toBe('[::1]');
    expect(hostOf('0.0.0.0:0')).toBe('0.0.0.0');
    expect(isLoopbackHost('[::1]')).toBe(true);
    expect(isLoopbackHost('128.0.0.1')).toBe(false);
    expect(isWildcardHost('[::]')).toBe(true);
    expect(isWildcardHost('127.0.0.1')).toBe(false);
  });
});
