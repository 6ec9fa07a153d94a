// One coordinator's part in a job shared through a state store: it stands for leader, says who
// leads while it stands by, and once elected builds its core from what the store holds (the old
// leader's state, or a new run) and writes every decision through a StateWriter. It stops leading
// when a write is fenced or its lease runs out with the store reachable (another may lead); a
// lease that runs out while the store cannot be reached does not end it (no one else can be
// elected through a store no one reaches; the next write that gets through tells). Then it ends
// its command streams and stands again. The gRPC adapter (coordinator-server.ts) asks it whether
// to decide, and for the refusal a standby answers with.

import type { Logger } from '../common/logging.ts';
import { RefusalReason, type Refusal } from '../domain/refusal.ts';
import type { DurableCoordinatorState } from './core/durable-state.ts';
import { FIRST_HEARTBEAT_GRACE_MS } from './core/membership.ts';
import { stateFromRecords } from './state-records.ts';
import { StateWriter } from './state-writer.ts';
import { CampaignAbortedError, StoreUnavailableError, type Candidate, type LeaderInfo, type Leadership, type StateStore } from './store/state-store.ts';

/** How often a leader whose lease ran out while the store could not be reached asks the store again. */
const DEGRADED_CHECK_MS = 1000;

/** A coordinator that shares its job with standbys through a store. */
export interface HaOptions {
  readonly store: StateStore;
  /** This coordinator's id among the job's coordinators. */
  readonly id: string;
  /** host:port nodes reach this coordinator at; `PORT` 0 in it is replaced by the port bound. */
  readonly advertise: string;
  /** A leader that stops renewing its lease (dead, frozen, cut off) loses the leadership this long after. */
  readonly leaseMs: number;
  /**
   * The URL of this coordinator's dashboard, published with its leadership (a standby's page
   * links to the leader's); read each time it stands for leader. Absent or null: no dashboard.
   */
  readonly dashboardUrl?: () => string | null;
}

export type RoleChange = { leading: true; term: number; tookOver: boolean } | { leading: false; leader: LeaderInfo | null };

/** What the leadership needs of the coordinator it belongs to. */
export interface LeadershipHost {
  readonly log: Logger;
  /** The address nodes reach this coordinator at. */
  advertised(): string;
  /** Elected: a core from the stored state (`null`: none, a new run). */
  takeOver(state: DurableCoordinatorState | null): void;
  /** The core's durable state now. */
  durable(): DurableCoordinatorState;
  /** No longer leading: end every command stream (the nodes look for the new leader). */
  endStreams(): void;
  role(change: RoleChange): void;
  /**
   * The store cannot be reached (why), or answers again (null); `written`: the state it holds as
   * this leader last wrote it, when known.
   */
  store(why: string | null, written?: DurableCoordinatorState | null): void;
}

export class CoordinatorLeadership {
  private held: Leadership | null = null;
  private writerOf: StateWriter | null = null;
  private known: LeaderInfo | null = null;
  private campaignAbort: AbortController | null = null;
  private stopWatchingLeader: (() => void) | null = null;
  /** A standby has said who leads (its role line is not repeated for the same leader). */
  private toldStandby = false;
  private closing = false;

  constructor(
    private readonly ha: HaOptions,
    private readonly host: LeadershipHost,
  ) {}

  /** Whether this coordinator leads now. */
  get leads(): boolean {
    return this.held !== null;
  }

  /** The term it leads under; 0 while standing by. */
  get term(): number {
    return this.held?.term ?? 0;
  }

  /** Who leads as far as this coordinator knows (itself included). */
  get leader(): LeaderInfo | null {
    return this.known;
  }

  /** The leader's writer; null while standing by. */
  get writer(): StateWriter | null {
    return this.writerOf;
  }

  /** The refusal a standby answers node requests with. */
  notLeader(): Refusal {
    const id = this.ha.id;
    const l = this.known && this.known.id !== id ? this.known : null;
    return {
      reason: RefusalReason.notLeader,
      message: l ? `this coordinator (${id}) is a standby: coordinator ${l.id} at ${l.address} leads (term ${l.term})` : `this coordinator (${id}) is a standby and no coordinator leads yet: try again shortly`,
      leaderAddress: l?.address ?? '',
      leaderTerm: l?.term ?? 0,
    };
  }

  /** Stands for leader until elected, then leads. */
  stand(): void {
    if (this.closing) return;
    const { store, id, leaseMs } = this.ha;
    this.stopWatchingLeader ??= store.watchLeader((l) => {
      const same = (l?.id ?? null) === (this.known?.id ?? null) && (l?.term ?? 0) === (this.known?.term ?? 0);
      this.known = l;
      // A watch that reconnects says the same leader again: told once.
      if (!this.closing && !this.held && l?.id !== id && !(same && this.toldStandby)) {
        this.toldStandby = true;
        this.host.role({ leading: false, leader: l });
      }
    });
    const abort = new AbortController();
    this.campaignAbort = abort;
    store.campaign(this.candidate(), leaseMs, abort.signal).then(
      (leadership) => this.lead(leadership),
      (err: unknown) => {
        if (err instanceof CampaignAbortedError) return;
        this.host.log.error({ err: (err as Error).message }, 'standing for leader failed: trying again');
        setTimeout(() => this.stand(), leaseMs / 2).unref();
      },
    );
  }

  /** What this coordinator publishes when it leads. */
  private candidate(): Candidate {
    const dashboardUrl = this.ha.dashboardUrl?.() ?? null;
    return { id: this.ha.id, address: this.host.advertised(), ...(dashboardUrl ? { dashboardUrl } : {}) };
  }

  private async lead(leadership: Leadership): Promise<void> {
    const { store, id, leaseMs } = this.ha;
    const log = this.host.log;
    let records: Map<string, string>;
    try {
      records = await store.read('');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'elected, but the state could not be read: giving the leadership up');
      await leadership.resign().catch(() => {});
      setTimeout(() => this.stand(), leaseMs / 2).unref();
      return;
    }
    const state = records.size > 0 ? stateFromRecords(records) : null;
    this.host.takeOver(state);
    if (state) {
      log.warn({ term: leadership.term, phase: state.phase, epoch: state.epoch, nodes: state.nodes.length }, `coordinator ${id} took over as leader (term ${leadership.term}): every node has ${Math.max(state.job.leaseMs, FIRST_HEARTBEAT_GRACE_MS)} ms to re-attach`);
    } else {
      log.info({ term: leadership.term }, `coordinator ${id} leads (term ${leadership.term}): no earlier state, a new run`);
    }
    this.held = leadership;
    this.known = { ...this.candidate(), term: leadership.term };
    this.writerOf = new StateWriter({
      store,
      term: leadership.term,
      state: () => this.host.durable(),
      onFenced: (err) => this.stepDown(leadership, `its write was refused: ${err.message}`),
      onReachable: (err) => {
        if (err) log.error({ err: err.message }, 'the store cannot be reached: decisions that need it wait (training goes on while nothing fails)');
        else log.info({}, 'the store answers again');
        this.host.store(err ? err.message : null, this.writerOf?.held ?? null);
      },
    });
    this.writerOf.startFrom(records, state);
    // The first leader writes the new run's state before anything is decided.
    await this.writerOf.drain();
    void leadership.lost.then(async (loss) => {
      if (loss.reason === 'lease-expired' && this.held === leadership) {
        const unreachable = await store.leader().then(
          () => false,
          (err: unknown) => err instanceof StoreUnavailableError,
        );
        if (unreachable && this.held === leadership) {
          log.warn({ term: leadership.term, detail: loss.detail }, 'the leader lease ran out and the store cannot be reached: leading on without new decisions until the store answers');
          this.host.store(`the store (${store.description}) cannot be reached and the leader lease ran out`);
          // Once the store answers, its leader key says whether this leadership is over (its lease
          // ran out, so it is, unless it is still ours): not only at the next write, which may be
          // long in coming while nothing happens.
          for (;;) {
            await new Promise((r) => setTimeout(r, DEGRADED_CHECK_MS));
            if (this.held !== leadership) return;
            const leader = await store.leader().then(
              (l) => ({ l }),
              () => null,
            );
            if (leader === null) continue;
            if (leader.l?.term === leadership.term) continue;
            this.stepDown(leadership, leader.l ? `the store answers again: coordinator ${leader.l.id} leads under term ${leader.l.term}` : 'the store answers again and its leader lease is gone');
            return;
          }
        }
      }
      this.stepDown(leadership, `${loss.reason}: ${loss.detail}`);
    });
    this.host.role({ leading: true, term: leadership.term, tookOver: state !== null });
  }

  /** This coordinator no longer leads: it stops deciding, ends its command streams, and stands again. */
  private stepDown(leadership: Leadership, why: string): void {
    if (this.held !== leadership) return;
    this.held = null;
    this.writerOf = null;
    if (this.closing) return;
    this.host.log.warn({ term: leadership.term, why }, `coordinator ${this.ha.id} no longer leads (term ${leadership.term}): ${why}; standing by`);
    this.host.endStreams();
    this.host.role({ leading: false, leader: this.known?.term === leadership.term ? null : this.known });
    this.toldStandby = true;
    this.stand();
  }

  /** Stops standing and watching; a leader's last decisions are written first (its lease then runs out). */
  async close(): Promise<void> {
    this.closing = true;
    this.campaignAbort?.abort();
    this.stopWatchingLeader?.();
    await this.writerOf?.drain();
  }
}
