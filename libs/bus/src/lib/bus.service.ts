import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { JetStreamClient, JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { RpcContext } from '@herald/contracts';
import { BatchConsumerOptions, BatchHandler, DurableBatchConsumer } from './batch-consumer';
import { BUS_OPTIONS, BusOptions } from './bus.options';
import { EventPublisher } from './event-publisher';
import { natsAuthConnectionOptions } from './nats-auth';
import { ensureEventStream } from './event-stream';
import { RpcClient, RpcServer } from './rpc';

/** Opens one NATS connection per process; everything on the bus goes through it. */
export async function openBus(options: BusOptions): Promise<{ nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager }> {
  // noAsyncTraces: the client otherwise captures a stack trace for every request, which costs more
  // than the request itself on the gateway's hot path; errors still carry their message and code.
  const nc = await connect({ servers: options.servers, name: options.name, maxReconnectAttempts: -1, reconnectTimeWait: 500, noAsyncTraces: true, ...natsAuthConnectionOptions(options.auth) });
  const jsm = await jetstreamManager(nc);
  if (options.ensureStream !== false) await ensureEventStream(jsm, options);
  return { nc, js: jetstream(nc), jsm };
}

/**
 * The bus of one Nest application: created connected (see BusModule), drained last on shutdown,
 * after the consumers and RPC servers built from it have stopped in their own shutdown hooks.
 */
@Injectable()
export class BusService implements OnApplicationShutdown {
  private readonly logger = new Logger('Bus');
  readonly publisher: EventPublisher;

  constructor(
    @Inject(BUS_OPTIONS) readonly options: BusOptions,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
  ) {
    this.publisher = new EventPublisher(js, options.eventsSubjectPrefix, options.maxMessageBytes);
  }

  consumer(options: Omit<BatchConsumerOptions, 'stream' | 'subjectPrefix'>, handler: BatchHandler): DurableBatchConsumer {
    return new DurableBatchConsumer(this.js, this.jsm, { stream: this.options.eventsStream, subjectPrefix: this.options.eventsSubjectPrefix, ...options }, handler);
  }

  rpcServer(): RpcServer {
    return new RpcServer(this.nc, this.options.rpcSubjectPrefix, (err: unknown, pattern: string, context?: RpcContext) =>
      this.logger.error({ err, pattern, requestId: context?.requestId }, 'RPC handler failed'),
    );
  }

  rpcClient(timeoutMs: number): RpcClient {
    return new RpcClient(this.nc, this.options.rpcSubjectPrefix, timeoutMs);
  }

  /** NATS is reachable (for /readyz). */
  isReady(): boolean {
    return !this.nc.isClosed() && !this.nc.isDraining() && this.nc.info !== undefined;
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.nc.isClosed()) return;
    await this.nc.drain().catch((err: unknown) => this.logger.warn({ err }, 'NATS drain failed'));
  }
}
