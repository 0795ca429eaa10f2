import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiSecurity, ApiTags } from '@nestjs/swagger';
import { CreateWebhookDto, Permission, Rpc, RpcContext, UpdateWebhookDto } from '@herald/contracts';
import { Caller, RequirePermission } from '../auth/auth.guard';
import { GatewayRpc } from '../rpc/gateway-rpc.service';

@ApiTags('webhooks')
@ApiSecurity('api-key')
@RequirePermission(Permission.WebhooksManage)
@Controller('api/webhooks')
export class WebhooksController {
  constructor(private readonly rpc: GatewayRpc) {}

  @Post()
  @HttpCode(201)
  create(@Body() dto: CreateWebhookDto, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksCreate, dto, ctx);
  }

  @Get()
  list(@Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksList, {}, ctx);
  }

  @Get(':id')
  get(@Param('id') id: string, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksGet, { id }, ctx);
  }

  @Patch(':id')
  update(@Param('id') id: string, @Body() dto: UpdateWebhookDto, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksUpdate, { ...dto, id }, ctx);
  }

  @Delete(':id')
  remove(@Param('id') id: string, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksDelete, { id }, ctx);
  }
}
