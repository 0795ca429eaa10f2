import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsISO8601, IsOptional, IsString, MaxLength, Validate, ValidationArguments, ValidatorConstraint, ValidatorConstraintInterface } from 'class-validator';
import { PageQueryDto } from './webhook.dto';

@ValidatorConstraint({ name: 'notBeforeFrom' })
class NotBeforeFromConstraint implements ValidatorConstraintInterface {
  validate(to: unknown, args: ValidationArguments): boolean {
    const from = (args.object as { from?: unknown }).from;
    if (typeof from !== 'string' || typeof to !== 'string') return true;
    const a = Date.parse(from);
    const b = Date.parse(to);
    return Number.isNaN(a) || Number.isNaN(b) || a <= b;
  }
  defaultMessage(): string {
    return 'to must not be before from';
  }
}

export class TimeRangeQueryDto {
  @ApiPropertyOptional({ description: 'ISO 8601, inclusive', example: '2026-03-01' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'from must be an ISO 8601 date or date-time' })
  from?: string;

  @ApiPropertyOptional({ description: 'ISO 8601, inclusive' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'to must be an ISO 8601 date or date-time' })
  @Validate(NotBeforeFromConstraint)
  to?: string;
}

export class EntityAuditQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ description: 'ISO 8601, inclusive', example: '2026-03-01' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'from must be an ISO 8601 date or date-time' })
  from?: string;

  @ApiPropertyOptional({ description: 'ISO 8601, inclusive' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'to must be an ISO 8601 date or date-time' })
  @Validate(NotBeforeFromConstraint)
  to?: string;
}

export class AuditQueryDto extends EntityAuditQueryDto {
  @ApiPropertyOptional({ example: 'order' }) @IsOptional() @IsString() @MaxLength(100) entityType?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(200) entityId?: string;
  @ApiPropertyOptional({ example: 'orders.create' }) @IsOptional() @IsString() @MaxLength(100) event?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(200) actorId?: string;
}

export class AuditVerifyQueryDto extends TimeRangeQueryDto {}

export class AuditEntryView {
  @ApiProperty() id: string;
  @ApiProperty() eventId: string;
  @ApiProperty() event: string;
  @ApiProperty() entityType: string;
  @ApiProperty({ nullable: true, type: String }) entityId: string | null;
  @ApiProperty({ nullable: true, type: String }) actorId: string | null;
  @ApiProperty({ nullable: true, type: String }) actorType: string | null;
  @ApiProperty() organizationId: string;
  @ApiProperty({ nullable: true, type: String }) requestId: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true }) payload: Record<string, unknown>;
  @ApiProperty() createdAt: string;
  @ApiProperty() recordedAt: string;
}

export class AuditVerifyView {
  @ApiProperty() valid: boolean;
  @ApiProperty() checked: number;
  @ApiProperty({ nullable: true, type: Object }) firstInvalid: { id: string; reason: string } | null;
}
