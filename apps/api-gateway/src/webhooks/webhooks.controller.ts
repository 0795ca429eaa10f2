import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import { ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { CreateWebhookDto, CreatedWebhookView, ErrorCode, Permission, Rpc, RpcContext, UpdateWebhookDto, WebhookView } from '@herald/contracts';
import { Caller, RequirePermission } from '../auth/auth.guard';
import { ApiData, ApiErrors, COMMON_ERRORS } from '../docs/api-responses';
import { GatewayRpc } from '../rpc/gateway-rpc.service';

@ApiTags('webhooks')
@ApiSecurity('api-key')
@ApiErrors(...COMMON_ERRORS)
@RequirePermission(Permission.WebhooksManage)
@Controller('api/webhooks')
export class WebhooksController {
  constructor(private readonly rpc: GatewayRpc) {}

  @Post()
  @HttpCode(201)
  @ApiData(CreatedWebhookView, { status: 201, description: 'Created; the only response that carries the secret.' })
  @ApiErrors(ErrorCode.ValidationFailed, ErrorCode.BadRequest, ErrorCode.PayloadTooLarge)
  create(@Body() dto: CreateWebhookDto, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksCreate, dto, ctx);
  }

  @Get()
  @ApiData(WebhookView, { list: true, description: 'Newest first, without secrets.' })
  list(@Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksList, {}, ctx);
  }

  @Get(':id')
  @ApiData(WebhookView)
  @ApiErrors(ErrorCode.NotFound)
  get(@Param('id') id: string, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksGet, { id }, ctx);
  }

  @Patch(':id')
  @ApiData(WebhookView)
  @ApiErrors(ErrorCode.NotFound, ErrorCode.ValidationFailed, ErrorCode.BadRequest, ErrorCode.PayloadTooLarge)
  update(@Param('id') id: string, @Body() dto: UpdateWebhookDto, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksUpdate, { ...dto, id }, ctx);
  }

  @Delete(':id')
  @ApiResponse({ status: 200, description: 'Deleted; pending deliveries are cancelled.', schema: { type: 'object', properties: { data: { type: 'object', properties: { deleted: { type: 'boolean', enum: [true] } } } } } })
  @ApiErrors(ErrorCode.NotFound)
  remove(@Param('id') id: string, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.webhooksDelete, { id }, ctx);
  }
}
