import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiSecurity, ApiTags } from '@nestjs/swagger';
import { AuditQueryDto, AuditVerifyQueryDto, EntityAuditQueryDto, Permission, Rpc, RpcContext } from '@herald/contracts';
import { Caller, RequirePermission } from '../auth/auth.guard';
import { GatewayConfig } from '../config';
import { GatewayRpc } from '../rpc/gateway-rpc.service';

@ApiTags('audit')
@ApiSecurity('api-key')
@RequirePermission(Permission.AuditRead)
@Controller('api/audit')
export class AuditController {
  constructor(
    private readonly rpc: GatewayRpc,
    private readonly config: GatewayConfig,
  ) {}

  @Get()
  query(@Query() query: AuditQueryDto, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.auditQuery, query, ctx);
  }

  @Get('verify')
  verify(@Query() query: AuditVerifyQueryDto, @Caller() ctx: RpcContext) {
    // Walks and rehashes the whole chain (or the from/to range): longer than a page may take.
    return this.rpc.call(Rpc.auditVerify, query, ctx, this.config.AUDIT_VERIFY_TIMEOUT_MS);
  }

  @Get(':entityType/:entityId')
  entity(@Param('entityType') entityType: string, @Param('entityId') entityId: string, @Query() query: EntityAuditQueryDto, @Caller() ctx: RpcContext) {
    return this.rpc.call(Rpc.auditQuery, { ...query, entityType, entityId }, ctx);
  }
}
