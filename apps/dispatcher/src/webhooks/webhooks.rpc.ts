import { Injectable, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { BusService, RpcServer } from '@herald/bus';
import { Rpc } from '@herald/contracts';
import { WebhooksService } from './webhooks.service';

/** The webhook operations of SPEC 2, served over NATS request/reply for the gateway. */
@Injectable()
export class WebhooksRpc implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private server?: RpcServer;

  constructor(
    private readonly bus: BusService,
    private readonly webhooks: WebhooksService,
  ) {}

  onApplicationBootstrap(): void {
    const s = (this.server = this.bus.rpcServer());
    s.handle(Rpc.webhooksCreate, (dto, ctx) => this.webhooks.create(dto, ctx));
    s.handle(Rpc.webhooksList, (_dto, ctx) => this.webhooks.list(ctx));
    s.handle(Rpc.webhooksGet, (req, ctx) => this.webhooks.get(req.id, ctx));
    s.handle(Rpc.webhooksUpdate, (req, ctx) => this.webhooks.update(req, ctx));
    s.handle(Rpc.webhooksDelete, (req, ctx) => this.webhooks.delete(req.id, ctx));
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.server?.stop();
  }
}
