import { createConnection, createPool } from '@picop/mysql';
import { createPool as createCallbackPool } from '@picop/mysql/callback';
import { withEnvId } from '@picop/propagator';
import { createProxy, type PicopProxy } from '@picop/proxy';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { selfSignedCert, useContextManager } from '../../../test/support/otel-and-tls.js';
import { runId } from '../../../test/support/run-id.js';
import {
  type ExtraServer,
  MYSQL_DATABASE,
  MYSQL_HOST,
  MYSQL_PASSWORD,
  MYSQL_PORT,
  MYSQL_USER,
  startMariadb,
} from '../../../test/support/servers.js';

useContextManager();

const TABLE = `picop_mysql_${runId()}`;
const login = { user: MYSQL_USER, password: MYSQL_PASSWORD, database: MYSQL_DATABASE };
const { key, cert } = selfSignedCert();

describe('@picop/mysql through the PiCoP proxy', () => {
  let second: ExtraServer;
  let proxy: PicopProxy;
  let proxyPort: number;
  let direct1: mysql.Connection;
  let direct2: mysql.Connection;

  beforeAll(async () => {
    second = await startMariadb({ ssl: { cert, key } });
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${MYSQL_HOST}:${MYSQL_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${second.port}`, 'feature-2': `127.0.0.1:${second.port}` },
    });
    proxyPort = (await proxy.listen()).port;
    direct1 = await mysql.createConnection({ ...login, host: MYSQL_HOST, port: MYSQL_PORT });
    direct2 = await mysql.createConnection({ ...login, host: '127.0.0.1', port: second.port });
    for (const c of [direct1, direct2])
      await c.query(`CREATE TABLE ${TABLE} (env VARCHAR(64), note VARCHAR(64))`);
  }, 120_000);

  afterAll(async () => {
    for (const c of [direct1, direct2]) {
      await c?.query(`DROP TABLE IF EXISTS ${TABLE}`);
      await c?.end();
    }
    await proxy?.close(100);
    await second?.stop();
  });

  const newPool = (extra: object = {}) =>
    createPool({ ...login, host: '127.0.0.1', port: proxyPort, connectionLimit: 4, ...extra });

  it('writes to the instance of the active environment', async () => {
    const pool = newPool();
    await withEnvId('feature-1', () =>
      pool.query(`INSERT INTO ${TABLE} VALUES ('feature-1', 'a')`),
    );
    await pool.query(`INSERT INTO ${TABLE} VALUES ('baseline', 'b')`);
    const [onDefault] = await direct1.query(`SELECT env FROM ${TABLE}`);
    const [onSecond] = await direct2.query(`SELECT env FROM ${TABLE}`);
    expect(onDefault).toEqual([{ env: 'baseline' }]);
    expect(onSecond).toEqual([{ env: 'feature-1' }]);
    await pool.end();
  });

  it('never lets concurrent environments share a connection', async () => {
    const pool = newPool();
    const ids = new Map<string, Set<number>>();
    const envs = ['feature-1', 'feature-2', 'main'];
    await Promise.all(
      Array.from({ length: 150 }, (_, i) => {
        const env = envs[i % 3] as string;
        return withEnvId(env, async () => {
          const [rows] = await pool.query<mysql.RowDataPacket[]>(
            'SELECT CONNECTION_ID() AS id, @@port AS port',
          );
          const row = rows[0] as { id: number; port: number };
          ids.set(env, (ids.get(env) ?? new Set()).add(row.id * 100_000 + row.port));
          expect(row.port).toBe(env === 'main' ? MYSQL_PORT : second.port);
        });
      }),
    );
    const f1 = ids.get('feature-1') as Set<number>;
    const f2 = ids.get('feature-2') as Set<number>;
    // feature-1 and feature-2 use the same server: their connection ids must never meet.
    expect([...f1].filter((id) => f2.has(id))).toEqual([]);
    for (const set of ids.values()) expect(set.size).toBeLessThanOrEqual(4);
    expect(pool.pools?.size).toBe(3);
    expect(proxy.stats().byEnv['feature-1']?.accepted).toBeGreaterThan(0);
    expect(proxy.stats().byEnv['feature-2']?.accepted).toBeGreaterThan(0);
    await pool.end();
  });

  it('keeps a transaction on one connection and one environment', async () => {
    const pool = newPool();
    await withEnvId('feature-2', async () => {
      const conn = await pool.getConnection();
      const [[{ id: first }]] = (await conn.query('SELECT CONNECTION_ID() AS id')) as unknown as [
        [{ id: number }],
      ];
      await conn.beginTransaction();
      await conn.query(`INSERT INTO ${TABLE} VALUES ('feature-2', 'tx')`);
      const [[{ id: second_ }]] = (await conn.query('SELECT CONNECTION_ID() AS id')) as unknown as [
        [{ id: number }],
      ];
      await conn.commit();
      conn.release();
      expect(second_).toBe(first);
    });
    const [rows] = await direct2.query(`SELECT env FROM ${TABLE} WHERE note = 'tx'`);
    expect(rows).toEqual([{ env: 'feature-2' }]);
    await pool.end();
  });

  it('sends the header again when the pool refills after the server kills a connection', async () => {
    const pool = newPool({ connectionLimit: 1 });
    const idOf = async () => {
      const [rows] = await pool.query<mysql.RowDataPacket[]>(
        'SELECT CONNECTION_ID() AS id, @@port AS port',
      );
      return rows[0] as { id: number; port: number };
    };
    await withEnvId('feature-1', async () => {
      const before = await idOf();
      const acceptedBefore = proxy.stats().byEnv['feature-1']?.accepted ?? 0;
      await direct2.query(`KILL ${before.id}`);
      // The killed connection may fail one query (as with plain mysql2); the refill must not.
      await idOf().catch(() => undefined);
      const after = await idOf();
      expect(after.id).not.toBe(before.id);
      expect(after.port).toBe(second.port);
      expect(proxy.stats().byEnv['feature-1']?.accepted).toBeGreaterThan(acceptedBefore);
    });
    await pool.end();
  });

  it('runs TLS (STARTTLS) after the header', async () => {
    const pool = newPool({
      ssl: { ca: cert.toString(), rejectUnauthorized: true, verifyIdentity: false },
    });
    const [rows] = await withEnvId('feature-1', () =>
      pool.query<mysql.RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Ssl_cipher'"),
    );
    expect(String((rows[0] as { Value: string }).Value)).not.toBe('');
    await pool.end();
  });

  it('bounds the pools with maxPools and closes idle ones', async () => {
    const pool = newPool({ picop: { maxPools: 2, idleTimeoutMs: 200 } });
    // The pools' clock and timer are faked; the queries' I/O is real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    for (const env of ['e1', 'e2', 'e3', 'e4', 'e5'])
      await withEnvId(env, () => pool.query('SELECT 1'));
    const pools = pool.pools as NonNullable<typeof pool.pools>;
    expect(pools.size).toBe(2);
    expect([pools.created, pools.evicted]).toEqual([5, 3]);
    vi.advanceTimersByTime(600);
    vi.useRealTimers();
    expect(pools.size).toBe(0);
    expect(pools.expired).toBe(2);
    await pool.end();
  });

  it('createConnection() opens one connection in the active environment', async () => {
    const conn = await withEnvId('feature-1', () =>
      createConnection({ ...login, host: '127.0.0.1', port: proxyPort }),
    );
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@port AS port');
    expect(rows[0]?.port).toBe(second.port);
    await conn.end();
  });

  it('the callback API routes the same way', async () => {
    const pool = createCallbackPool({ ...login, host: '127.0.0.1', port: proxyPort });
    const port = await withEnvId(
      'feature-2',
      () =>
        new Promise<number>((resolve, reject) =>
          pool.query('SELECT @@port AS port', (err, rows) =>
            err ? reject(err) : resolve((rows as Array<{ port: number }>)[0]!.port),
          ),
        ),
    );
    expect(port).toBe(second.port);
    await new Promise((r) => pool.end(r));
  });

  it("reports mysql2's own errors unchanged", async () => {
    const pool = newPool();
    const err = await withEnvId('feature-1', () =>
      pool.query('SELECT * FROM no_such_table_here'),
    ).catch((e) => e);
    expect(err.code).toBe('ER_NO_SUCH_TABLE');
    expect(err.sqlMessage).toMatch(/no_such_table_here/);
    await pool.end();
  });

  it('rejects queries after end() and refuses a socketPath with a PicopError', async () => {
    const pool = newPool();
    await pool.end();
    await expect(pool.query('SELECT 1')).rejects.toThrow('Pool is closed.');
    await expect(withEnvId('feature-1', () => pool.query('SELECT 1'))).rejects.toThrow(
      'Pool is closed.',
    );
    expect(() => createPool({ socketPath: '/tmp/x.sock' })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
    );
  });
});
