import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { RpcReply } from '@herald/bus';
import { Observable, map } from 'rxjs';

const decoder = new TextDecoder();

/**
 * Sends a service's reply as the HTTP body byte for byte: it is already SPEC 2's success body, so
 * parsing it and printing it again (a 50-entry audit page is ~25 KB) would only cost time.
 */
@Injectable()
export class RpcReplyInterceptor implements NestInterceptor {
  constructor(private readonly host: HttpAdapterHost) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      map((value: unknown) => {
        if (!(value instanceof RpcReply)) return value;
        this.host.httpAdapter.setHeader(context.switchToHttp().getResponse(), 'content-type', 'application/json; charset=utf-8');
        return decoder.decode(value.body);
      }),
    );
  }
}
