// Wiring mistakes say what is wrong and how to fix it, in the user's terms: a plain client through
// a proxy that requires the header, a misspelt variable or flag, a dead route, a bad Env-Id.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGateway } from '@picop/gateway';
import { createPool } from '@picop/mysql';
import { connect } from '@picop/net-wrap';
import { Pool } from '@picop/pg';
import { envIdProblem, withEnvId } from '@picop/propagator';
import { createProxy, type ProxyLogger } from '@picop/proxy';
import { Redis } from '@picop/redis';
import { Redis as IORedis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runCommand } from './support/commands.js';
import { useContextManager } from './support/otel-and-tls.js';
import { freePort, MYSQL_PORT, PG_PORT, REDIS_PORT } from './support/servers.js';

useContextManager();

/** A logger that keeps every line, whatever its level. */
function keep() {
  const lines: Array<Record<string, unknown> & { msg?: string }> = [];
  const at = (obj: object, msg?: string) => lines.push({ ...obj, msg });
  return { lines, logger: { debug: at, info: at, error: at } as ProxyLogger };
}

describe('mistakes explain themselves', () => {
  it('a plain Redis or PostgreSQL client through a proxy that requires the header: the log names it', async () => {
    const { lines, logger } = keep();
    const proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `127.0.0.1:${REDIS_PORT}`,
      logger,
    });
    const { port } = await proxy.listen();
    try {
      const plain = new IORedis({ port, maxRetriesPerRequest: 0, retryStrategy: () => null });
      plain.on('error', () => {});
      await plain.ping().catch(() => undefined);
      plain.disconnect();
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres' });
      await client.connect().catch(() => undefined);
      const refused = lines.filter((l) => String(l.msg).startsWith('header refused'));
      expect(refused.map((l) => l.msg)).toEqual(
        expect.arrayContaining([
          'header refused: a Redis client (RESP) without PiCoP',
          'header refused: a PostgreSQL client without PiCoP',
        ]),
      );
      expect(String(refused[0]?.hint)).toMatch(/wrap it with @picop\/\*.*--header optional/);
    } finally {
      await proxy.close(10);
    }
  });

  it('a route to a port where nothing listens: the client is closed at once, the log names the route', async () => {
    const { lines, logger } = keep();
    const dead = await freePort();
    const proxy = createProxy({
      listen: '127.0.0.1:0',
      routes: { 'feature-1': `127.0.0.1:${dead}` },
      logger,
    });
    const { port } = await proxy.listen();
    try {
      const socket = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } });
      await new Promise((resolve) => socket.on('close', resolve).resume());
      expect(lines.map((l) => l.msg)).toContain(
        `destination error: the route of feature-1, 127.0.0.1:${dead}: ECONNREFUSED`,
      );
    } finally {
      await proxy.close(10);
    }
  });

  it.each([
    ['proxy', 'PICOP_PROXY_DEFUALT', 'PICOP_PROXY_DEFAULT'],
    ['gateway', 'PICOP_GATEWAY_UPSTREM', 'PICOP_GATEWAY_UPSTREAM'],
  ] as const)(
    '%s: a misspelt variable is exit 2, naming the closest',
    async (name, typo, meant) => {
      const result = await runCommand(name, ['--listen', '127.0.0.1:0'], { [typo]: '127.0.0.1:1' });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`Unknown variable ${typo}; did you mean ${meant}?`);
    },
  );

  it('a misspelt flag is exit 2, naming the closest', async () => {
    const result = await runCommand('proxy', [
      '--listen',
      '127.0.0.1:0',
      '--defualt',
      '127.0.0.1:1',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Unknown option '--defualt'; did you mean --default?");
  });

  it('picop-gateway in front of a service that does not read PiCoP: the log says so, once', async () => {
    const service = http.createServer((_req, res) => res.end('never'));
    await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
    const warnings: string[] = [];
    const gateway = createGateway({
      listen: '127.0.0.1:0',
      upstream: `127.0.0.1:${(service.address() as AddressInfo).port}`,
      logger: { debug: () => {}, info: () => {}, warn: (_o, msg) => warnings.push(String(msg)) },
    });
    const { port } = await gateway.listen();
    try {
      for (let i = 0; i < 2; i++) {
        expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(400);
      }
      expect(warnings.filter((w) => w.includes('does not read PiCoP'))).toHaveLength(1);
      expect(warnings[0]).toMatch(/point --upstream at its picop-proxy.*acceptPicop/);
    } finally {
      await gateway.close(10);
      service.close();
    }
  });

  it('@picop/mysql and @picop/pg pointed straight at their servers: ERR_PICOP_PEER_CLOSED, with the options', async () => {
    const pool = createPool({ host: '127.0.0.1', port: MYSQL_PORT, user: 'root' });
    const pgPool = new Pool({ host: '127.0.0.1', port: PG_PORT, user: 'postgres' });
    try {
      for (const query of [() => pool.query('SELECT 1'), () => pgPool.query('SELECT 1')]) {
        await expect(query()).rejects.toMatchObject({
          code: 'ERR_PICOP_PEER_CLOSED',
          message: expect.stringMatching(
            /picop-proxy in front of it.*picop\.routes.*picop\.isolate/,
          ),
        });
      }
    } finally {
      await pool.end();
      await pgPool.end();
    }
  });

  it('@picop/redis pointed straight at Redis: its commands fail with ERR_PICOP_PEER_CLOSED after connectTimeout, not hang', async () => {
    const redis = new Redis({ host: '127.0.0.1', port: REDIS_PORT, connectTimeout: 500 });
    redis.on('error', () => {});
    try {
      await expect(redis.get('x')).rejects.toMatchObject({
        code: 'ERR_PICOP_PEER_CLOSED',
        message: expect.stringMatching(/most likely Redis itself.*picop\.routes/),
      });
      expect(redis.status).toBe('end');
    } finally {
      redis.disconnect();
    }
  });

  it('PostgreSQL schema isolation without the schema: the error names the environment, the schema and isolate.create', async () => {
    const pool = new Pool({
      host: '127.0.0.1',
      port: PG_PORT,
      user: 'postgres',
      picop: { isolate: { schema: (envId) => `missing_${envId}` } },
    });
    try {
      await expect(
        withEnvId('feature-1', () => pool.query('CREATE TABLE t (a int)')),
      ).rejects.toMatchObject({
        code: '3F000',
        message: expect.stringMatching(/feature-1.*"missing_feature-1".*isolate\.create/),
      });
    } finally {
      await pool.end();
    }
  });

  it('an Env-Id error shows the offending character and the allowed form', () => {
    expect(envIdProblem('feature 1')).toBe(
      'has a space (U+0020) at index 7: an Env-Id is 1 to 4089 visible ASCII characters (letters, digits, punctuation such as "-", "_", "."), with no space, control or non-ASCII character',
    );
  });
});
