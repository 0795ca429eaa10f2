import { Controller, Get, HttpCode, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';

/** What /readyz asks: each named dependency reachable. */
export interface ReadinessProbe {
  check(): Promise<Record<string, boolean>>;
}
export const READINESS_PROBE = Symbol('READINESS_PROBE');

/** Runs a check with a deadline so a hung dependency reads as not ready instead of hanging the probe. */
export async function within(ms: number, check: () => Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      check().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

@ApiExcludeController()
@Controller()
export class HealthController {
  constructor(@Inject(READINESS_PROBE) private readonly probe: ReadinessProbe) {}

  @Get('healthz')
  @HttpCode(200)
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('readyz')
  async readyz(@Res({ passthrough: true }) res: FastifyReply): Promise<{ status: 'ok' | 'unavailable'; checks: Record<string, boolean> }> {
    const checks = await this.probe.check();
    const ok = Object.values(checks).every(Boolean);
    res.code(ok ? 200 : 503);
    return { status: ok ? 'ok' : 'unavailable', checks };
  }
}
