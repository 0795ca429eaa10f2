import { Injectable, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { BusService, RpcServer } from '@herald/bus';
import { Rpc } from '@herald/contracts';
import { DeliveriesService } from './deliveries.service';

/** The delivery operations of SPEC 2, served over NATS request/reply for the gateway. */
@Injectable()
export class DeliveriesRpc implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private server?: RpcServer;

  constructor(
    private readonly bus: BusService,
    private readonly deliveries: DeliveriesService,
  ) {}

  onApplicationBootstrap(): void {
    const s = (this.server = this.bus.rpcServer());
    s.handle(Rpc.deliveriesList, (req, ctx) => this.deliveries.list(req, ctx));
    s.handle(Rpc.deliveriesGet, (req, ctx) => this.deliveries.get(req.id, ctx));
    s.handle(Rpc.deliveriesRetry, (req, ctx) => this.deliveries.retry(req.id, ctx));
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.server?.stop();
  }
}
