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

interface ProcEntry extends GroupProcess {
  readonly ppid: number;
  readonly pgrp: number;
}

/** On Linux, every process (pid, parent, group, state, command line); elsewhere empty. */
function allProcesses(withArgv: (pgrp: number, ppid: number) => boolean): ProcEntry[] {
  const out: ProcEntry[] = [];
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
      const ppid = Number(fields[1]);
      const pgrp = Number(fields[2]);
      const argv = withArgv(pgrp, ppid) ? readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').filter(Boolean) : [];
      out.push({ pid: Number(name), state: fields[0]!, argv, ppid, pgrp });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const strip = ({ pid, state, argv }: ProcEntry): GroupProcess => ({ pid, state, argv });

/** On Linux, the processes of group `pgid`; elsewhere empty. */
export function groupProcesses(pgid: number): GroupProcess[] {
  return allProcesses((pgrp) => pgrp === pgid)
    .filter((p) => p.pgrp === pgid)
    .map(strip);
}

/** On Linux, the processes descended from `root` (its children, theirs, ...), whatever their group; elsewhere empty. */
export function descendantProcesses(root: number): GroupProcess[] {
  const all = allProcesses(() => true);
  const children = new Map<number, ProcEntry[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: ProcEntry[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out.map(strip);
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
