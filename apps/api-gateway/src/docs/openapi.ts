import { Controller, Get, INestApplication } from '@nestjs/common';
import { ApiExcludeController, DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';

let document: OpenAPIObject | undefined;

/** The OpenAPI description, generated from the same DTO classes that validate requests. */
export function setupOpenApi(app: INestApplication, version: string): void {
  const config = new DocumentBuilder()
    .setTitle('Herald')
    .setDescription('Webhooks and audit for commerce events. Errors: {"error":{"code","message","details"?}}.')
    .setVersion(version)
    .addApiKey({ type: 'apiKey', in: 'header', name: 'x-api-key' }, 'api-key')
    .build();
  document = SwaggerModule.createDocument(app, config);
  SwaggerModule.setup('api/docs/ui', app, document, { jsonDocumentUrl: 'api/docs/openapi.json' });
}

@ApiExcludeController()
@Controller('api/docs')
export class OpenApiController {
  /** `GET /api/docs`: the description itself, as JSON; the browsable UI is at /api/docs/ui. */
  @Get()
  describe(): OpenAPIObject | undefined {
    return document;
  }
}
