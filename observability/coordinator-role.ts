// What the coordinator's HTTP side says of the coordinator it runs in: alone (its state in its
// process), leading (under which term, and whether its store answers), or standing by (and who
// leads, with the URL of that leader's dashboard). Fed by the coordinator's role and store events
// (coordinator-leadership.ts says when they come); read by the dashboard server, its metrics and
// the standby page. It changes nothing in the coordinator.

import type { RoleChange } from '../coordinator/coordinator-leadership.ts';

/** The leader as a standby knows it. */
export interface KnownLeader {
  readonly id: string;
  /** host:port nodes reach it at. */
  readonly address: string;
  readonly term: number;
  /** Its dashboard page; null when it publishes none (started without a dashboard). */
  readonly dashboardUrl: string | null;
}

export type CoordinatorRoleState =
  /** No store: this coordinator alone, always deciding. */
  | { readonly role: 'single' }
  /** Leading under `term`; `storeUnreachable`: why the store cannot be reached (decisions wait), null while it answers. */
  | { readonly role: 'leader'; readonly id: string; readonly term: number; readonly storeUnreachable: string | null }
  /** Standing by; `leader` null while no coordinator leads. */
  | { readonly role: 'standby'; readonly id: string; readonly leader: KnownLeader | null };

export const SINGLE_COORDINATOR: CoordinatorRoleState = Object.freeze({ role: 'single' });

/** Whether the coordinator decides: alone, or leading. */
export function decides(state: CoordinatorRoleState): boolean {
  return state.role !== 'standby';
}

export class CoordinatorRoleView {
  private state: CoordinatorRoleState;
  private readonly listeners = new Set<(state: CoordinatorRoleState, before: CoordinatorRoleState) => void>();

  /** `id`: this coordinator's id among the job's; it stands by (no leader known) until told otherwise. */
  constructor(private readonly id: string) {
    this.state = { role: 'standby', id, leader: null };
  }

  current(): CoordinatorRoleState {
    return this.state;
  }

  /** Calls `listener` after every change. */
  onChange(listener: (state: CoordinatorRoleState, before: CoordinatorRoleState) => void): void {
    this.listeners.add(listener);
  }

  /** The coordinator's `role` event. */
  role(change: RoleChange): void {
    const id = this.id;
    if (change.leading) return this.set({ role: 'leader', id, term: change.term, storeUnreachable: null });
    const l = change.leader;
    this.set({ role: 'standby', id, leader: l ? { id: l.id, address: l.address, term: l.term, dashboardUrl: l.dashboardUrl ?? null } : null });
  }

  /** The coordinator's `store` event: why the leader's store cannot be reached, or null once it answers. */
  store(why: string | null): void {
    if (this.state.role === 'leader') this.set({ ...this.state, storeUnreachable: why });
  }

  private set(next: CoordinatorRoleState): void {
    const before = this.state;
    this.state = Object.freeze(next);
    for (const l of this.listeners) l(this.state, before);
  }
}
