import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  IsUrl,
  Length,
  Max,
  MaxLength,
  Min,
  Validate,
  ValidateIf,
  ValidatorConstraint,
  ValidatorConstraintInterface,
} from 'class-validator';
import { DELIVERABLE_EVENT_TYPES, isEventSelector } from './event-types';

@ValidatorConstraint({ name: 'eventSelector' })
class EventSelectorConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return Array.isArray(value) && value.every(isEventSelector);
  }
  defaultMessage(): string {
    return `each value in events must be one of the 14 event types, '*' or '<module>.*'`;
  }
}

export const WEBHOOK_SECRET_PREFIX = 'whsec_';

export class CreateWebhookDto {
  @ApiProperty({ example: 'https://your-service.example.com/hooks/commerce', description: 'Absolute http(s) URL; https only in production; private addresses refused.' })
  @IsString()
  @MaxLength(2048)
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true, require_tld: false, require_host: true }, { message: 'url must be an absolute http or https URL' })
  url: string;

  @ApiProperty({ example: ['orders.create', 'inventory.*'], description: `Any of ${DELIVERABLE_EVENT_TYPES.join(', ')}, '*', or '<module>.*'.` })
  @IsArray()
  @ArrayNotEmpty()
  @ArrayMaxSize(100)
  @Validate(EventSelectorConstraint)
  events: string[];

  @ApiPropertyOptional({ description: 'Shared signing secret (16-256 characters); generated as whsec_… when absent. Returned only on creation.' })
  @IsOptional()
  @IsString()
  @Length(16, 256)
  secret?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @IsOptional()
  @IsObject()
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean()
  isActive?: boolean;
}

/**
 * A PATCH field may be left out, but not sent as null: `IsOptional` would let null through and the
 * update would silently keep the old value.
 */
const Omittable = () => ValidateIf((_object: unknown, value: unknown) => value !== undefined);

/** PATCH body: any of `url`, `events`, `isActive`, `metadata`; the secret is not changed this way. */
export class UpdateWebhookDto {
  @ApiPropertyOptional({ example: 'https://your-service.example.com/hooks/commerce' })
  @Omittable() @IsString() @MaxLength(2048)
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true, require_tld: false, require_host: true }, { message: 'url must be an absolute http or https URL' })
  url?: string;

  @ApiPropertyOptional({ example: ['orders.*'] })
  @Omittable() @IsArray() @ArrayNotEmpty() @ArrayMaxSize(100) @Validate(EventSelectorConstraint)
  events?: string[];

  @ApiPropertyOptional()
  @Omittable() @IsBoolean()
  isActive?: boolean;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @Omittable() @IsObject()
  metadata?: Record<string, unknown>;
}

export class WebhookView {
  @ApiProperty({ example: 'wh_01HQZX3V8Y5T7K9M2N4P6R8S0A' }) id: string;
  @ApiProperty() url: string;
  @ApiProperty({ type: [String] }) events: string[];
  @ApiProperty() isActive: boolean;
  @ApiProperty({ type: 'object', additionalProperties: true }) metadata: Record<string, unknown>;
  @ApiProperty() createdAt: string;
  @ApiProperty() updatedAt: string;
}

export class CreatedWebhookView extends WebhookView {
  @ApiProperty({ description: 'Returned by this response only.' }) secret: string;
}

export const DELIVERY_STATUSES = ['pending', 'succeeded', 'failed', 'cancelled'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** `limit` and `cursor` of every paged list. */
export class PageQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'limit must be an integer from 1 to 100' })
  @Min(1, { message: 'limit must be an integer from 1 to 100' })
  @Max(100, { message: 'limit must be an integer from 1 to 100' })
  limit?: number;

  @ApiPropertyOptional({ description: 'nextCursor of the previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  cursor?: string;
}

export class ListDeliveriesQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: DELIVERY_STATUSES })
  @IsOptional()
  @IsIn(DELIVERY_STATUSES, { message: `status must be one of ${DELIVERY_STATUSES.join(', ')}` })
  status?: DeliveryStatus;
}

export class DeliveryView {
  @ApiProperty() id: string;
  @ApiProperty() webhookId: string;
  @ApiProperty() eventId: string;
  @ApiProperty() eventType: string;
  @ApiProperty({ enum: DELIVERY_STATUSES }) status: DeliveryStatus;
  @ApiProperty() attemptCount: number;
  @ApiProperty({ nullable: true, type: String }) nextAttemptAt: string | null;
  @ApiProperty({ nullable: true, type: Number }) lastStatusCode: number | null;
  @ApiProperty() createdAt: string;
  @ApiProperty() updatedAt: string;
  @ApiProperty({ nullable: true, type: String }) deliveredAt: string | null;
}

export class AttemptView {
  @ApiProperty() attemptNumber: number;
  @ApiProperty() startedAt: string;
  @ApiProperty() durationMs: number;
  @ApiProperty({ nullable: true, type: Number }) statusCode: number | null;
  @ApiProperty({ nullable: true, type: String }) error: string | null;
  @ApiProperty({ nullable: true, type: String }) responseBody: string | null;
}

export class DeliveryDetailView extends DeliveryView {
  @ApiProperty({ type: [AttemptView] }) attempts: AttemptView[];
}

// RPC requests: the HTTP DTO plus the ids taken from the path, validated again by the service.
export class IdRequest {
  @IsString() @MaxLength(64) id: string;
}
export class UpdateWebhookRequest extends UpdateWebhookDto {
  @IsString() @MaxLength(64) id: string;
}
export class ListDeliveriesRequest extends ListDeliveriesQueryDto {
  @IsString() @MaxLength(64) webhookId: string;
}
export class EmptyRequest {}
