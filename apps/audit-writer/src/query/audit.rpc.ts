import { Injectable, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { BusService, RpcServer } from '@herald/bus';
import { Rpc } from '@herald/contracts';
import { AuditVerifyService } from '../verify/audit-verify.service';
import { AuditQueryService } from './audit-query.service';

/** The audit queries and the chain check of SPEC 2, served over NATS request/reply for the gateway. */
@Injectable()
export class AuditRpc implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private server?: RpcServer;

  constructor(
    private readonly bus: BusService,
    private readonly queries: AuditQueryService,
    private readonly verifier: AuditVerifyService,
  ) {}

  onApplicationBootstrap(): void {
    this.server = this.bus.rpcServer();
    this.server.handle(Rpc.auditQuery, (q, ctx) => this.queries.query(q, ctx));
    this.server.handle(Rpc.auditVerify, (q, ctx) => this.verifier.verify(q, ctx));
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.server?.stop();
  }
}
