import { DELIVERY_ID_PATTERN } from '@herald/contracts';
import { newDeliveryId } from './ids';

describe('delivery ids', () => {
  it('are dlv_ + ULID, unique, and spread over the whole alphabet', () => {
    const ids = Array.from({ length: 5000 }, newDeliveryId);
    expect(ids.every((id) => DELIVERY_ID_PATTERN.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const lastChars = new Set(ids.map((id) => id.at(-1)));
    expect(lastChars.size).toBe(32);
  });
});
