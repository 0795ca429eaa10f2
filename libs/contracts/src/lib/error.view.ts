import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ErrorCode } from './errors';

/** SPEC 2's error body, as classes for the OpenAPI description. */
export class FieldErrorView {
  @ApiProperty({ example: 'url' }) field: string;
  @ApiProperty({ example: 'url must be an absolute http or https URL' }) message: string;
}

export class ErrorBodyView {
  @ApiProperty({ enum: ErrorCode, enumName: 'ErrorCode' }) code: ErrorCode;
  @ApiProperty() message: string;
  @ApiPropertyOptional({ type: [FieldErrorView], description: 'Field errors (VALIDATION_FAILED).' }) details?: FieldErrorView[];
}

export class ErrorResponseView {
  @ApiProperty({ type: ErrorBodyView }) error: ErrorBodyView;
}
