import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiSecurity, ApiTags } from '@nestjs/swagger';
import { ListDeliveriesQueryDto, Permission, Rpc, RpcContext } from '@herald/contracts';
import { Caller, RequirePermission } from '../auth/auth.guard';
import { GatewayRpc } from '../rpc/gateway-rpc.service';

/** SPEC 2: a webhook's deliveries, one delivery with its attempts, and manual retry. */
@ApiTags('deliveries')
@ApiSecurity('api-key')
@RequirePermission(Permission.WebhooksManage)
@Controller('api')
export class DeliveriesController {
  constructor(private readonly rpc: GatewayRpc) {}

  @Get('webhooks/:id/deliveries')
  list(@Param('id') id: string, @Query() query: ListDeliveriesQueryDto, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.deliveriesList, { ...query, webhookId: id }, ctx);
  }

  @Get('deliveries/:id')
  get(@Param('id') id: string, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.deliveriesGet, { id }, ctx);
  }

  @Post('deliveries/:id/retry')
  @HttpCode(202)
  retry(@Param('id') id: string, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.deliveriesRetry, { id }, ctx);
  }
}
