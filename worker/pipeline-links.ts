// This stage's links to its pipeline neighbours in the current epoch: the Pipe streams it sends
// on, and the mailbox the tensors they send arrive in. A new epoch drops the old links and fails
// whatever still waits on them, so no tensor of an abandoned timeline is ever taken.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/logging.ts';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from '../common/proto.ts';
import { ProtocolError } from '../domain/errors.ts';
import type { WorkerClient } from '../proto/generated/ftrain/v1/Worker.ts';
import { PipeMailbox } from './pipe-mailbox.ts';
import { PipeSender, sendKept } from './pipe-sender.ts';
import type { PipeIO } from './stage-trainer.ts';
import { channelCredentials } from '../common/transport.ts';

/** Thrown into a step that a Halt, a new epoch, a broken peer or the node's end abandons. */
export class HaltedError extends Error {
  override readonly name = 'HaltedError';
}

export class PipelineLinks {
  /** Where tensors from the neighbours arrive (the Pipe handler puts them). */
  mailbox = new PipeMailbox();
  private toNext: PipeSender | null = null;
  private toPrev: PipeSender | null = null;
  /** The neighbours' clients and this epoch, for the calls of their own (edge copies). */
  private nextClient: WorkerClient | null = null;
  private prevClient: WorkerClient | null = null;
  private epoch = -1;
  private clients: WorkerClient[] = [];
  private closed = false;
  private halted = false;

  constructor(
    private readonly log: Logger,
    private readonly connectTimeoutMs: number,
  ) {}

  /** Drops the links of the previous epoch and connects to the neighbours of `stage` in `epoch`. */
  async connect(stage: number, epoch: number, prevAddress: string, nextAddress: string): Promise<void> {
    this.reset('a new epoch began');
    this.halted = false;
    // This epoch's mailbox: a connection of an earlier epoch that breaks late must not fail it.
    const mailbox = this.mailbox;
    const onBroken = (err: Error) => {
      if (this.closed || this.mailbox !== mailbox) return;
      // Not a fault of this node: the coordinator learns of the peer's death and recovers.
      this.log.warn({ err: err.message }, 'pipeline peer connection broke');
      mailbox.fail(new HaltedError(`pipeline peer connection broke: ${err.message}`));
    };
    this.epoch = epoch;
    this.nextClient = nextAddress ? await this.client(nextAddress) : null;
    this.prevClient = prevAddress ? await this.client(prevAddress) : null;
    if (this.nextClient) this.toNext = new PipeSender(this.nextClient, stage, epoch, onBroken);
    if (this.prevClient) this.toPrev = new PipeSender(this.prevClient, stage, epoch, onBroken);
  }

  /** The coordinator said to halt in this epoch (a new epoch's links clear it). */
  get haltRequested(): boolean {
    return this.halted;
  }

  /** Fails every tensor still awaited (a Halt): the step under way is abandoned. */
  halt(reason: string): void {
    this.halted = true;
    this.mailbox.fail(new HaltedError(reason));
  }

  /** What a stage trainer sends and receives through, for `stage`. */
  io(stage: number): PipeIO {
    const to = (toStage: number): PipeSender => {
      const sender = toStage === stage + 1 ? this.toNext : toStage === stage - 1 ? this.toPrev : null;
      if (!sender) throw new ProtocolError(`stage ${stage} has no pipe to stage ${toStage}`);
      return sender;
    };
    return {
      recvActivation: (step, mb, hop) => this.mailbox.take('activation', step, mb, hop),
      recvGradient: (step, mb, hop) => this.mailbox.take('gradient', step, mb, hop),
      sendActivation: (toStage, step, mb, hop, t) => to(toStage).send('activation', step, mb, hop, t),
      sendGradient: (toStage, step, mb, hop, t) => to(toStage).send('gradient', step, mb, hop, t),
    };
  }

  /** CheckFree+: an edge stage's embedding or head, to the neighbour that keeps the copy. */
  async sendEdgeCopy(stage: number, step: number, data: Float32Array): Promise<void> {
    const client = stage === 0 ? this.nextClient : this.prevClient;
    if (!client) throw new ProtocolError(`stage ${stage} has no partner to keep its edge copy`);
    await sendKept(client, stage, this.epoch, 'edge-copy', step, { shape: [data.length], data });
  }

  close(): void {
    this.reset('node is shutting down');
    this.closed = true;
  }

  private reset(reason: string): void {
    this.toNext?.end();
    this.toPrev?.end();
    this.toNext = null;
    this.toPrev = null;
    this.nextClient = null;
    this.prevClient = null;
    for (const c of this.clients) c.close();
    this.clients = [];
    this.mailbox.fail(new HaltedError(reason));
    this.mailbox = new PipeMailbox();
  }

  private async client(address: string): Promise<WorkerClient> {
    const client = new (loadProto().ftrain.v1.Worker)(address, channelCredentials(), GRPC_CHANNEL_OPTIONS);
    this.clients.push(client);
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(deadline(this.connectTimeoutMs), (err) => (err ? reject(new Error(`pipeline peer ${address} unreachable: ${err.message}`)) : resolve())),
    );
    return client;
  }
}
