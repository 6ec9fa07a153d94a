// Which of a job's coordinators to talk to: `--coordinator A,B,C` names them all, one leads. A
// standby refuses with NOT_LEADER and names the leader, which is followed at once; a coordinator
// that cannot be reached gives way to the next in the list. Shared by the worker's link and the
// snapshot manager's reports; with one address it never moves.

import * as grpc from '@grpc/grpc-js';
import { RefusalReason } from '../domain/refusal.ts';
import type { CoordinatorClient } from '../proto/generated/ftrain/v1/Coordinator.ts';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from './proto.ts';
import { refusalOf } from './wire/refusal-wire.ts';
import { channelCredentials } from './transport.ts';

/** The coordinator addresses of `--coordinator A,B,C`, trimmed; at least one. */
export function coordinatorAddresses(list: string): string[] {
  const out = list
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (out.length === 0) throw new Error('no coordinator address given');
  return [...new Set(out)];
}

/** How long another coordinator gets to say who leads. */
const WHO_LEADS_DEADLINE_MS = 1000;

export class LeaderFollower {
  private readonly addresses: string[];
  private index = 0;
  private readonly clients = new Map<string, CoordinatorClient>();

  constructor(list: string) {
    this.addresses = coordinatorAddresses(list);
  }

  /** More than one coordinator: a leader and standbys. */
  get several(): boolean {
    return this.addresses.length > 1;
  }

  /** The coordinator talked to now. */
  get address(): string {
    return this.addresses[this.index]!;
  }

  get all(): readonly string[] {
    return this.addresses;
  }

  get client(): CoordinatorClient {
    return this.clientFor(this.address);
  }

  clientFor(address: string): CoordinatorClient {
    let c = this.clients.get(address);
    if (!c) {
      c = new (loadProto().ftrain.v1.Coordinator)(address, channelCredentials(), GRPC_CHANNEL_OPTIONS);
      this.clients.set(address, c);
    }
    return c;
  }

  /** Talks to `address` from now on (a leader a standby named may be missing from the list). */
  follow(address: string): void {
    let i = this.addresses.indexOf(address);
    if (i < 0) {
      this.addresses.push(address);
      i = this.addresses.length - 1;
    }
    this.index = i;
  }

  /** The next coordinator in the list. */
  next(): string {
    this.index = (this.index + 1) % this.addresses.length;
    return this.address;
  }

  /**
   * After a failed call: follows the leader a standby named, or moves on to the next coordinator
   * when this one cannot be reached or no one leads. Returns whether the call is worth trying
   * again elsewhere (false for a refusal of the request itself, or with one coordinator).
   * `sentTo`: where the call went, when calls overlap: one that failed at a coordinator already
   * left moves nothing (the reports in flight to a frozen leader, failing one after another, would
   * otherwise step through the list once each, and could come back to the frozen one).
   */
  observe(err: grpc.ServiceError, sentTo: string = this.address): boolean {
    if (sentTo !== this.address) return this.several;
    const refusal = refusalOf(err);
    if (refusal?.reason === RefusalReason.notLeader) {
      if (refusal.leaderAddress) this.follow(refusal.leaderAddress);
      else if (this.several) this.next();
      return true;
    }
    if (refusal || !this.several) return false;
    if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
      this.next();
      return true;
    }
    return false;
  }

  /**
   * Asks the coordinators other than `current` who leads (a heartbeat of `nodeId`, which a leader
   * takes and a standby refuses naming the leader): the first that leads, sure of it, or names a
   * leader other than `current`; null when none does (they name `current`, cannot be reached
   * either, or lead without reaching their store).
   */
  async anotherLeader(current: string, nodeId: string): Promise<string | null> {
    for (const other of this.addresses) {
      if (other === current) continue;
      const { err, unsure } = await new Promise<{ err: grpc.ServiceError | null; unsure: boolean }>((resolve) =>
        this.clientFor(other).Heartbeat({ nodeId }, { deadline: deadline(WHO_LEADS_DEADLINE_MS) }, (e, reply) => resolve({ err: e, unsure: reply?.leaderUnsure === true })),
      );
      const refusal = err ? refusalOf(err) : null;
      // One that takes the beat but cannot reach its store may have been replaced (cut off from
      // it): not a leader to move to, or a node would go back to it and break the live one's stream.
      const leader = err === null ? (unsure ? '' : other) : refusal?.reason === RefusalReason.notLeader ? refusal.leaderAddress : '';
      if (leader && leader !== current) return leader;
    }
    return null;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
