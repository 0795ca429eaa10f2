import { Injectable } from '@nestjs/common';
import { BusService, RpcClient, RpcReply } from '@herald/bus';
import { RpcContext, RpcDef } from '@herald/contracts';
import { GatewayConfig } from '../config';

/**
 * Forwards a validated request to the service that owns it, with the caller's context; the reply
 * goes back to the client unparsed (serializeReply).
 */
@Injectable()
export class GatewayRpc {
  private readonly client: RpcClient;

  constructor(bus: BusService, config: GatewayConfig) {
    this.client = bus.rpcClient(config.RPC_TIMEOUT_MS);
  }

  /** Waits RPC_TIMEOUT_MS, or `timeoutMs` when given. */
  call<Req extends object, Res>(def: RpcDef<Req, Res>, payload: Req, context: RpcContext, timeoutMs?: number): Promise<RpcReply<Res>> {
    return this.client.call(def, payload, context, timeoutMs);
  }
}
