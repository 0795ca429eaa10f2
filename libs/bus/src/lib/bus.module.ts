import { DynamicModule, Global, Module } from '@nestjs/common';
import { BUS_OPTIONS, BusOptions } from './bus.options';
import { BusService, openBus } from './bus.service';

export interface BusModuleOptions {
  imports?: DynamicModule['imports'];
  inject?: unknown[];
  useFactory: (...args: never[]) => BusOptions;
}

@Global()
@Module({})
export class BusModule {
  static forRootAsync(options: BusModuleOptions): DynamicModule {
    return {
      module: BusModule,
      imports: options.imports,
      providers: [
        { provide: BUS_OPTIONS, inject: options.inject as never[], useFactory: options.useFactory },
        {
          provide: BusService,
          inject: [BUS_OPTIONS],
          useFactory: async (o: BusOptions) => {
            const { nc, js, jsm } = await openBus(o);
            return new BusService(o, nc, js, jsm);
          },
        },
      ],
      exports: [BusService, BUS_OPTIONS],
    };
  }
}
