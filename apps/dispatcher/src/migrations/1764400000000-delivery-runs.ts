import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The sender's queue: `next_attempt_at` doubles as the claim lease (a claimed row is pushed into the
 * future by the lease, so `locked_until` is not needed), and `run_base` counts the attempts made before
 * the current run, so a manual retry gets a fresh budget while its attempts are appended.
 */
export class DeliveryRuns1764400000000 implements MigrationInterface {
  name = 'DeliveryRuns1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`alter table dispatch.deliveries add column run_base integer not null default 0`);
    await q.query(`alter table dispatch.deliveries drop column locked_until`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`alter table dispatch.deliveries add column locked_until timestamptz`);
    await q.query(`alter table dispatch.deliveries drop column run_base`);
  }
}
