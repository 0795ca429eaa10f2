import { Transform } from 'class-transformer';
import { IsBoolean, IsOptional, IsString, Matches } from 'class-validator';
import { BaseConfig, DatabaseConfig } from './base.config';
import { ConfigError, loadConfig, toBoolean } from './load-config';

class FlagConfig extends BaseConfig {
  @Transform(toBoolean) @IsBoolean({ message: 'must be true or false' })
  FLAG = false;
}

class OptionalConfig extends BaseConfig {
  @IsOptional() @IsString() @Matches(/^[a-z]+$/, { message: 'must be lower-case letters' })
  OPTIONAL_NAME?: string;
}

describe('loadConfig', () => {
  it('uses the SPEC defaults when nothing is set', () => {
    const c = loadConfig(DatabaseConfig, { CONSUMER_NAME: 'x' });
    expect(c.DATABASE_URL).toBe('postgres://postgres@127.0.0.1:5432/herald');
    expect(c.NATS_URL).toBe('nats://127.0.0.1:4222');
    expect(c.NODE_ENV).toBe('development');
    expect(c.LOG_LEVEL).toBe('info');
    expect(c.EVENTS_STREAM).toBe('COMMERCE_EVENTS');
  });

  it('reads optional variables that have no default', () => {
    expect(loadConfig(OptionalConfig, {}).OPTIONAL_NAME).toBeUndefined();
    expect(loadConfig(OptionalConfig, { OPTIONAL_NAME: 'abc' }).OPTIONAL_NAME).toBe('abc');
    expect(() => loadConfig(OptionalConfig, { OPTIONAL_NAME: 'A1' })).toThrow(/OPTIONAL_NAME: must be lower-case letters/);
  });

  it('parses numbers, booleans and lists', () => {
    const c = loadConfig(FlagConfig, { PORT: '8080', FLAG: 'true', NATS_URL: 'nats://a:4222, nats://b:4222' });
    expect(c.PORT).toBe(8080);
    expect(c.FLAG).toBe(true);
    expect(c.natsServers).toEqual(['nats://a:4222', 'nats://b:4222']);
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['NODE_ENV', 'staging'],
    ['NATS_URL', 'http://x'],
    ['LOG_LEVEL', 'loud'],
    ['FLAG', 'maybe'],
  ])('a bad %s=%s stops with a message naming the variable', (variable, value) => {
    expect(() => loadConfig(FlagConfig, { [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig(FlagConfig, { [variable]: value })).toThrow(new RegExp(`${variable}:`));
  });

  it('a bad DATABASE_URL is named', () => {
    expect(() => loadConfig(DatabaseConfig, { CONSUMER_NAME: 'x', DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL: must be a postgres:\/\/ URL/);
  });

  it.each([
    ['EVENTS_MAX_MESSAGE_BYTES', '1024', '1023'],
    ['EVENTS_MAX_MESSAGE_BYTES', '67108864', '67108865'],
    ['CONSUMER_BATCH_MAX_BYTES', '65536', '65535'],
    ['CONSUMER_BATCH_MAX_BYTES', '268435456', '268435457'],
  ])('%s takes %s and refuses %s, naming itself', (variable, atBound, pastBound) => {
    expect(loadConfig(DatabaseConfig, { CONSUMER_NAME: 'x', [variable]: atBound })[variable as 'CONSUMER_BATCH_MAX_BYTES']).toBe(Number(atBound));
    expect(() => loadConfig(DatabaseConfig, { CONSUMER_NAME: 'x', [variable]: pastBound })).toThrow(new RegExp(`${variable}: must be a whole number of bytes`));
  });
});
