import { newId } from './ids';

describe('newId', () => {
  it('is the prefix and a ULID, unique, and sorts in the order the ids were made', () => {
    const ids = Array.from({ length: 20_000 }, () => newId('aud'));
    expect(ids.every((id) => /^aud_[0-9A-HJKMNP-TV-Z]{26}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });
});
