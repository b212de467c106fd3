import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connect } from '@picop/net-wrap';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runId } from '../../../test/support/run-id.js';
import {
  type ExtraServer,
  MYSQL_DATABASE,
  MYSQL_HOST,
  MYSQL_PASSWORD,
  MYSQL_PORT,
  MYSQL_USER,
  REDIS_HOST,
  REDIS_PORT,
  startRedis,
} from '../../../test/support/servers.js';
import { startProxy, type TestProxy } from './engine.js';
import { RespClient } from './helpers.js';

const run = runId();

describe('routing real servers by Env-Id', () => {
  let second: ExtraServer;
  let redisProxy: TestProxy;
  let redisPort: number;

  beforeAll(async () => {
    second = await startRedis();
    redisProxy = await startProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${REDIS_HOST}:${REDIS_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${second.port}` },
      header: 'optional',
    });
    redisPort = redisProxy.port;
  });
  afterAll(async () => {
    await redisProxy.close(100);
    await second.stop();
  });

  it('SET in feature-1 lands in the second Redis, SET without Env-Id in the default one', async () => {
    const key = `picop:test:${run}`;
    const feature = RespClient.viaProxy(redisPort, 'feature-1');
    const baseline = RespClient.viaProxy(redisPort);
    expect(await feature.command('SET', key, 'from-feature-1')).toBe('+OK');
    expect(await baseline.command('SET', key, 'from-baseline')).toBe('+OK');
    expect(await feature.command('GET', key)).toBe('from-feature-1');
    // Read each instance directly, not through the proxy.
    const direct1 = RespClient.direct(REDIS_PORT);
    const direct2 = RespClient.direct(second.port);
    expect(await direct1.command('GET', key)).toBe('from-baseline');
    expect(await direct2.command('GET', key)).toBe('from-feature-1');
    await direct1.command('DEL', key);
    for (const c of [feature, baseline, direct1, direct2]) c.close();
    expect((await redisProxy.stats()).byEnv['feature-1']?.accepted).toBeGreaterThanOrEqual(1);
  });

  it('an Env-Id without a route goes to the default route', async () => {
    const key = `picop:test:unknown:${run}`;
    const unknown = RespClient.viaProxy(redisPort, 'no-such-env');
    expect(await unknown.command('SET', key, 'x')).toBe('+OK');
    const direct = RespClient.direct(REDIS_PORT);
    expect(await direct.command('GET', key)).toBe('x');
    await direct.command('DEL', key);
    unknown.close();
    direct.close();
    expect((await redisProxy.stats()).byEnv._default?.accepted).toBeGreaterThanOrEqual(1);
  });

  it('lets plain redis-cli through in optional mode, byte for byte', async () => {
    const { stdout } = await promisify(execFile)('redis-cli', [
      '-h',
      '127.0.0.1',
      '-p',
      String(redisPort),
      'PING',
    ]);
    expect(stdout.trim()).toBe('PONG');
    expect((await redisProxy.stats()).byEnv._plain?.accepted).toBeGreaterThanOrEqual(1);
  });

  it('relays MariaDB (the server speaks first) for a client that sends the header', async () => {
    const proxy = await startProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${MYSQL_HOST}:${MYSQL_PORT}`,
    });
    const { port } = proxy;
    const conn = await mysql.createConnection({
      user: MYSQL_USER,
      password: MYSQL_PASSWORD,
      database: MYSQL_DATABASE,
      stream: () => connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } }),
    });
    const [rows] = await conn.query('SELECT 1 + 1 AS two');
    expect(rows).toEqual([{ two: 2 }]);
    await conn.end();
    await proxy.close(100);
  });
});
