import { ApiProperty, ApiPropertyOptional, IntersectionType } from '@nestjs/swagger';
import { IsNotEmpty, IsOptional, IsString, MaxLength, Validate, ValidationArguments, ValidatorConstraint, ValidatorConstraintInterface, isISO8601 } from 'class-validator';
import { PageQueryDto } from './webhook.dto';

/** A date, or a date-time with an optional UTC offset (UTC when absent), to the millisecond or finer. */
const INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * The instant a `from`/`to` value stands for: a date without a time means the whole day (`from` its
 * first millisecond, `to` its last), a date-time without an offset is UTC. Null when not ISO 8601.
 */
export function rangeBound(value: string, edge: 'from' | 'to'): Date | null {
  if (!INSTANT.test(value) || !isISO8601(value, { strict: true })) return null;
  if (value.length === 10) {
    const start = Date.parse(`${value}T00:00:00.000Z`);
    return new Date(edge === 'from' ? start : start + 86_400_000 - 1);
  }
  const withZone = /(Z|[+-]\d{2}:?\d{2})$/.test(value) ? value : `${value}Z`;
  const t = Date.parse(withZone);
  return Number.isNaN(t) ? null : new Date(t);
}

@ValidatorConstraint({ name: 'instant' })
class InstantConstraint implements ValidatorConstraintInterface {
  validate(value: unknown, args: ValidationArguments): boolean {
    return typeof value === 'string' && rangeBound(value, args.property === 'to' ? 'to' : 'from') !== null;
  }
  defaultMessage(args: ValidationArguments): string {
    return `${args.property} must be an ISO 8601 date (2026-03-01) or date-time (2026-03-01T10:30:00Z)`;
  }
}

@ValidatorConstraint({ name: 'notBeforeFrom' })
class NotBeforeFromConstraint implements ValidatorConstraintInterface {
  validate(to: unknown, args: ValidationArguments): boolean {
    const from = (args.object as { from?: unknown }).from;
    if (typeof from !== 'string' || typeof to !== 'string') return true;
    const a = rangeBound(from, 'from');
    const b = rangeBound(to, 'to');
    return a === null || b === null || a.getTime() <= b.getTime();
  }
  defaultMessage(): string {
    return 'to must not be before from';
  }
}

export class TimeRangeQueryDto {
  @ApiPropertyOptional({ description: 'ISO 8601 date or date-time, inclusive (a date means from its first instant)', example: '2026-03-01' })
  @IsOptional()
  @Validate(InstantConstraint)
  from?: string;

  @ApiPropertyOptional({ description: 'ISO 8601 date or date-time, inclusive (a date means to its last instant)', example: '2026-03-31' })
  @IsOptional()
  @Validate(InstantConstraint)
  @Validate(NotBeforeFromConstraint)
  to?: string;
}

export class EntityAuditQueryDto extends IntersectionType(PageQueryDto, TimeRangeQueryDto) {}

export class AuditQueryDto extends EntityAuditQueryDto {
  @ApiPropertyOptional({ description: 'exact match', example: 'order' }) @IsOptional() @IsString() @IsNotEmpty() @MaxLength(100) entityType?: string;
  @ApiPropertyOptional({ description: 'exact match' }) @IsOptional() @IsString() @IsNotEmpty() @MaxLength(200) entityId?: string;
  @ApiPropertyOptional({ description: 'exact match (an event type)', example: 'orders.create' }) @IsOptional() @IsString() @IsNotEmpty() @MaxLength(100) event?: string;
  @ApiPropertyOptional({ description: 'exact match' }) @IsOptional() @IsString() @IsNotEmpty() @MaxLength(200) actorId?: string;
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
  @ApiProperty({ nullable: true, type: Object, description: 'the first entry (in chain order) that does not fit the chain, and why' }) firstInvalid: { id: string | null; reason: string } | null;
}
