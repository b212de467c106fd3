// A wrapped library outside the tested range (its internals moved) is refused at the first client
// with a typed error naming it, never later with a TypeError. The libraries here are stand-ins
// without the internals (unit tests of the checks); the real ranges run in the peer-range projects.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

const unsupported = (library: string) =>
  expect.objectContaining({
    code: 'ERR_PICOP_UNSUPPORTED',
    message: expect.stringMatching(new RegExp(`does not support ${library} \\S+: it lacks`)),
  });

describe('each wrapper checks the library it reads internals of', () => {
  afterEach(() => {
    vi.doUnmock('undici');
    vi.doUnmock('ioredis');
    vi.doUnmock('mysql2');
    vi.resetModules();
  });

  it('@picop/fetch refuses an undici whose Agent has no stats (before 7.9)', async () => {
    vi.doMock('undici', () => ({ Agent: class {} }));
    const { checkUndici } = await import('../packages/fetch/src/undici-check.js');
    expect(() => checkUndici()).toThrow(unsupported('undici'));
  });

  it('@picop/redis refuses an ioredis without the queues it reads', async () => {
    class Redis {
      getBuiltinCommands() {
        return [];
      }
    }
    vi.doMock('ioredis', () => ({ Redis, default: Redis }));
    const { checkIoredis } = await import('../packages/redis/src/ioredis-internals.js');
    expect(() => checkIoredis()).toThrow(unsupported('ioredis'));
  });

  it('@picop/amqp refuses an amqplib without the lib/ files it loads', async () => {
    // An amqplib folder with a package.json and nothing under lib/.
    const root = mkdtempSync(join(tmpdir(), 'picop-fake-amqplib-'));
    writeFileSync(
      join(root, 'package.json'),
      JSON.stringify({ name: 'amqplib', version: '9.0.0' }),
    );
    try {
      const { loadInternals } = await import('../packages/amqp/src/amqplib-internals.js');
      expect(() => loadInternals(root)).toThrow(unsupported('amqplib'));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('@picop/mqtt refuses an mqtt.js client without the queues it reads', async () => {
    const { checkMqttClient } = await import('../packages/mqtt/src/mqtt-check.js');
    expect(() => checkMqttClient({} as never)).toThrow(unsupported('mqtt'));
  });

  it('@picop/mysql refuses a mysql2 whose pools lack the fields it reads', async () => {
    const fake = { createPool: () => ({ config: {}, _closed: false }), Pool: class {} };
    vi.doMock('mysql2', () => ({ ...fake, default: fake }));
    const { checkMysql2 } = await import('../packages/mysql/src/mysql2-check.js');
    expect(() => checkMysql2()).toThrow(unsupported('mysql2'));
  });
});
