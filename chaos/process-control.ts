// Signals to processes by pid, the only way chaos touches the nodes it hits.

import { readdirSync, readFileSync } from 'node:fs';

export type SignalResult = 'sent' | 'gone' | 'denied';

export function sendSignal(pid: number, signal: NodeJS.Signals | 0): SignalResult {
  try {
    process.kill(pid, signal);
    return 'sent';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH' ? 'gone' : 'denied';
  }
}

/** True while the process exists (a process of another user counts: it exists). */
export function isAlive(pid: number): boolean {
  return sendSignal(pid, 0) !== 'gone';
}

/** True while any process of the group led by `pgid` exists. */
export function isGroupAlive(pgid: number): boolean {
  return sendSignal(-pgid, 0) !== 'gone';
}

/** A process of a group: its pid, state letter (R, S, T, Z, ...) and command line. */
export interface GroupProcess {
  readonly pid: number;
  readonly state: string;
  readonly argv: readonly string[];
}

/** On Linux, the processes of group `pgid`; elsewhere empty. */
export function groupProcesses(pgid: number): GroupProcess[] {
  const out: GroupProcess[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      // pid (comm) state ppid pgrp ...: comm may hold spaces, so count from its closing parenthesis.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      const argv = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').filter(Boolean);
      out.push({ pid: Number(name), state: fields[0]!, argv });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** On Linux, the processes of group `pgid` as `pid (command, state)`; elsewhere empty. */
export function groupMembers(pgid: number): string[] {
  return groupProcesses(pgid).map(({ pid, state, argv }) => {
    const sub = argv.findIndex((a) => a.endsWith('ftrain.js'));
    return `${pid} (${sub >= 0 ? `ftrain ${argv.slice(sub + 1, sub + 2).join(' ')}` : (argv[0] ?? '?')}, ${state})`;
  });
}

/**
 * Guards against a recycled pid: on Linux, true only if the process's command line mentions
 * ftrain; elsewhere (no /proc) true when the process exists.
 */
export function isFtrainProcess(pid: number): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' && !hasProc() ? isAlive(pid) : false;
  }
  return cmdline.includes('ftrain');
}

let procChecked: boolean | undefined;
function hasProc(): boolean {
  if (procChecked === undefined) {
    try {
      readFileSync('/proc/self/cmdline');
      procChecked = true;
    } catch {
      procChecked = false;
    }
  }
  return procChecked;
}

/** Processes chaos has stopped (SIGSTOP), each woken (SIGCONT) after its time, or all at once. */
export class FrozenProcesses {
  private readonly timers = new Map<number, NodeJS.Timeout>();

  /** Counts the pids as frozen; SIGCONT goes to them after `ms`. */
  add(pids: readonly number[], ms: number): void {
    for (const pid of pids) {
      clearTimeout(this.timers.get(pid));
      this.timers.set(
        pid,
        setTimeout(() => this.thaw(pid), ms),
      );
    }
  }

  get size(): number {
    return this.timers.size;
  }

  thaw(pid: number): void {
    clearTimeout(this.timers.get(pid));
    this.timers.delete(pid);
    sendSignal(pid, 'SIGCONT');
  }

  thawAll(): void {
    for (const pid of [...this.timers.keys()]) this.thaw(pid);
  }
}
