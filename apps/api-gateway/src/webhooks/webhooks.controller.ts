import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiSecurity, ApiTags } from '@nestjs/swagger';
import { CreateWebhookDto, ListDeliveriesQueryDto, Permission, Rpc, RpcContext, UpdateWebhookDto } from '@herald/contracts';
import { Caller, RequirePermission } from '../auth/auth.guard';
import { GatewayRpc } from '../rpc/gateway-rpc.service';

@ApiTags('webhooks')
@ApiSecurity('api-key')
@RequirePermission(Permission.WebhooksManage)
@Controller('api')
export class WebhooksController {
  constructor(private readonly rpc: GatewayRpc) {}

  @Post('webhooks')
  @HttpCode(201)
  create(@Body() dto: CreateWebhookDto, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksCreate, dto, ctx);
  }

  @Get('webhooks')
  list(@Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksList, {}, ctx);
  }

  @Get('webhooks/:id')
  get(@Param('id') id: string, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksGet, { id }, ctx);
  }

  @Patch('webhooks/:id')
  update(@Param('id') id: string, @Body() dto: UpdateWebhookDto, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksUpdate, { ...dto, id }, ctx);
  }

  @Delete('webhooks/:id')
  remove(@Param('id') id: string, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksDelete, { id }, ctx);
  }

  @Get('webhooks/:id/deliveries')
  deliveries(@Param('id') id: string, @Query() query: ListDeliveriesQueryDto, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.deliveriesList, { ...query, webhookId: id }, ctx);
  }

  @Get('deliveries/:id')
  delivery(@Param('id') id: string, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.deliveriesGet, { id }, ctx);
  }

  @Post('deliveries/:id/retry')
  @HttpCode(202)
  retry(@Param('id') id: string, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.deliveriesRetry, { id }, ctx);
  }
}
