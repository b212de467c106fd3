// The mysql2 idioms a service uses, promise and callback APIs, each run from two environments
// interleaved in the same tick (feature-1, routed to a second MariaDB, and the baseline), read back
// from the instances themselves.
import { createPool, type PicopPool } from '@picop/mysql';
import { createPool as createCallbackPool, type PicopCallbackPool } from '@picop/mysql/callback';
import { withEnvId } from '@picop/propagator';
import { createProxy, type PicopProxy } from '@picop/proxy';
import type { PoolConnection, RowDataPacket } from 'mysql2';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Env, inBoth } from '../../../test/support/environments.js';
import { useContextManager } from '../../../test/support/otel-and-tls.js';
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

const disposable =
  Symbol.asyncDispose in
  (mysql as unknown as { PromisePool: { prototype: object } }).PromisePool.prototype;

useContextManager();

const TABLE = `picop_matrix_${runId()}`;
const login = { user: MYSQL_USER, password: MYSQL_PASSWORD, database: MYSQL_DATABASE };

describe('@picop/mysql idiom matrix', () => {
  let second: ExtraServer;
  let proxy: PicopProxy;
  let proxyPort: number;
  let main: mysql.Connection;
  let feature: mysql.Connection;
  const open: Array<{ end(): unknown }> = [];

  const promisePool = (extra: object = {}): PicopPool => {
    const pool = createPool({ ...login, host: '127.0.0.1', port: proxyPort, ...extra });
    open.push(pool);
    return pool;
  };
  const callbackPool = (): PicopCallbackPool => {
    const pool = createCallbackPool({ ...login, host: '127.0.0.1', port: proxyPort });
    open.push({ end: () => new Promise((resolve) => pool.end(resolve)) });
    return pool;
  };
  /** The notes each instance holds for `idiom`: its own environment's, and only those. */
  const expectLanded = async (idiom: string) => {
    const sql = `SELECT env FROM ${TABLE} WHERE idiom = ?`;
    expect((await feature.query(sql, [idiom]))[0]).toEqual([{ env: 'feature-1' }]);
    expect((await main.query(sql, [idiom]))[0]).toEqual([{ env: 'main' }]);
  };

  beforeAll(async () => {
    second = await startMariadb();
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${MYSQL_HOST}:${MYSQL_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${second.port}` },
    });
    proxyPort = (await proxy.listen()).port;
    main = await mysql.createConnection({ ...login, host: MYSQL_HOST, port: MYSQL_PORT });
    feature = await mysql.createConnection({ ...login, host: '127.0.0.1', port: second.port });
    for (const c of [main, feature]) {
      await c.query(`CREATE TABLE ${TABLE} (idiom VARCHAR(64), env VARCHAR(64))`);
    }
  }, 120_000);
  afterEach(async () => {
    for (const pool of open.splice(0)) await pool.end();
  });
  afterAll(async () => {
    for (const c of [main, feature]) {
      await c?.query(`DROP TABLE IF EXISTS ${TABLE}`);
      await c?.end();
    }
    await proxy?.close(100);
    await second?.stop();
  });

  describe('promise API', () => {
    it('query', async () => {
      const pool = promisePool();
      await inBoth((env) => pool.query(`INSERT INTO ${TABLE} VALUES ('query', ?)`, [env]));
      await expectLanded('query');
    });

    it('execute (prepared statements)', async () => {
      const pool = promisePool();
      await inBoth((env) => pool.execute(`INSERT INTO ${TABLE} VALUES (?, ?)`, ['execute', env]));
      await expectLanded('execute');
    });

    it('getConnection + transaction, committed and rolled back', async () => {
      const pool = promisePool();
      await inBoth(async (env) => {
        const conn = await pool.getConnection();
        await conn.beginTransaction();
        await conn.query(`INSERT INTO ${TABLE} VALUES ('tx', ?)`, [env]);
        await conn.commit();
        await conn.beginTransaction();
        await conn.query(`INSERT INTO ${TABLE} VALUES ('tx', 'rolled-back')`);
        await conn.rollback();
        conn.release();
      });
      await expectLanded('tx');
    });

    it('changeUser on a pooled connection stays in its environment', async () => {
      const pool = promisePool();
      const ports = await inBoth(async () => {
        const conn = await pool.getConnection();
        await conn.changeUser({ user: MYSQL_USER, password: MYSQL_PASSWORD, database: 'mysql' });
        const [rows] = await conn.query<RowDataPacket[]>('SELECT @@port AS port, DATABASE() AS db');
        conn.release();
        return rows[0];
      });
      expect(ports).toEqual([
        { port: second.port, db: 'mysql' },
        { port: MYSQL_PORT, db: 'mysql' },
      ]);
    });

    // mysql2 before 3.24 leaves queued queries unanswered when its pool ends (plain mysql2 too).
    it.skipIf(Number(process.env.PEER_VERSION?.split('.')[1] ?? 99) < 24)(
      'pool.end() while queries are in flight: each finishes in its environment or fails',
      async () => {
        const pool = createPool({
          ...login,
          host: '127.0.0.1',
          port: proxyPort,
          connectionLimit: 2,
        });
        const queries = Array.from({ length: 6 }, (_, i) => {
          const env: Env = i % 2 === 0 ? 'feature-1' : 'main';
          const insert = () => pool.query(`INSERT INTO ${TABLE} VALUES ('in-flight', ?)`, [env]);
          return env === 'main' ? insert() : withEnvId(env, insert);
        });
        const settled = await Promise.allSettled([...queries, pool.end()]);
        for (const result of settled) {
          // mysql2's own errors for work cut short by end().
          if (result.status === 'rejected') expect(String(result.reason)).toMatch(/closed/i);
        }
        expect(settled.some((r) => r.status === 'fulfilled')).toBe(true);
        const sql = `SELECT DISTINCT env FROM ${TABLE} WHERE idiom = 'in-flight'`;
        for (const [conn, env] of [
          [feature, 'feature-1'],
          [main, 'main'],
        ] as const) {
          const [rows] = await conn.query<RowDataPacket[]>(sql);
          expect(rows.every((r) => r.env === env)).toBe(true);
        }
      },
    );

    // mysql2 >= 3.18 makes its pools disposable; older ones have no `using` to keep.
    it.skipIf(!disposable)('await using closes every environment pool', async () => {
      let pool: PicopPool | undefined;
      {
        await using scoped = createPool({ ...login, host: '127.0.0.1', port: proxyPort });
        pool = scoped;
        await inBoth((env) => scoped.query(`INSERT INTO ${TABLE} VALUES ('using', ?)`, [env]));
        expect(scoped.pools?.size).toBe(1);
      }
      await expect(pool.query('SELECT 1')).rejects.toThrow('Pool is closed.');
      expect(pool.pools?.size).toBe(0);
      await expectLanded('using');
    });

    it('escape, escapeId and format open no pool', () => {
      const pool = promisePool();
      const results = [
        withEnvId('feature-1', () => [
          pool.escape("it's"),
          pool.escapeId('t'),
          pool.format('?', [1]),
        ]),
        [pool.escape("it's"), pool.escapeId('t'), pool.format('?', [1])],
      ];
      expect(results).toEqual([
        ["'it\\'s'", '`t`', '1'],
        ["'it\\'s'", '`t`', '1'],
      ]);
      expect(pool.pools?.size).toBe(0);
    });

    it("events carry the Env-Id, on the pool and on mysql2's Promise property", async () => {
      const pool = promisePool();
      const acquired: Array<string | undefined> = [];
      pool.on('acquire', (_conn: unknown, envId?: string) => acquired.push(envId));
      await inBoth(() => pool.query('SELECT 1'));
      expect(acquired.sort()).toEqual(['feature-1', undefined]);
      expect(Reflect.get(pool, 'Promise')).toBe(Promise);
    });
  });

  describe('callback API', () => {
    it('query and execute', async () => {
      const pool = callbackPool();
      await inBoth(
        (env) =>
          new Promise((resolve, reject) =>
            pool.query(`INSERT INTO ${TABLE} VALUES ('cb-query', ?)`, [env], (err) =>
              err
                ? reject(err)
                : pool.execute(`INSERT INTO ${TABLE} VALUES ('cb-exec', ?)`, [env], (e) =>
                    e ? reject(e) : resolve(undefined),
                  ),
            ),
          ),
      );
      await expectLanded('cb-query');
      await expectLanded('cb-exec');
    });

    it('getConnection + transaction', async () => {
      const pool = callbackPool();
      await inBoth(
        (env) =>
          new Promise<void>((resolve, reject) =>
            pool.getConnection((err, conn: PoolConnection) => {
              if (err) return reject(err);
              conn.beginTransaction(() =>
                conn.query(`INSERT INTO ${TABLE} VALUES ('cb-tx', ?)`, [env], () =>
                  conn.commit((e) => {
                    conn.release();
                    e ? reject(e) : resolve();
                  }),
                ),
              );
            }),
          ),
      );
      await expectLanded('cb-tx');
    });

    it("releaseConnection() returns a connection to its own environment's pool", async () => {
      const pool = callbackPool();
      const conn = await withEnvId(
        'feature-1',
        () =>
          new Promise<PoolConnection>((resolve, reject) =>
            pool.getConnection((err, c) => (err ? reject(err) : resolve(c))),
          ),
      );
      pool.releaseConnection(conn); // from the baseline's code
      const ports = await inBoth(
        () =>
          new Promise((resolve, reject) =>
            pool.query<RowDataPacket[]>('SELECT @@port AS port', (err, rows) =>
              err ? reject(err) : resolve(rows[0]?.port),
            ),
          ),
      );
      expect(ports).toEqual([second.port, MYSQL_PORT]);
      expect((pool as unknown as { _allConnections: unknown[] })._allConnections.length).toBe(1);
    });

    it('a streamed query: query().stream()', async () => {
      const pool = callbackPool();
      await feature.query(`INSERT INTO ${TABLE} VALUES ('stream', 'feature-1')`);
      await main.query(`INSERT INTO ${TABLE} VALUES ('stream', 'main')`);
      const streamed = await inBoth(async () => {
        const rows: unknown[] = [];
        const stream = pool.query(`SELECT env FROM ${TABLE} WHERE idiom = 'stream'`).stream();
        for await (const row of stream) rows.push(row);
        return rows;
      });
      expect(streamed).toEqual([[{ env: 'feature-1' }], [{ env: 'main' }]]);
    });

    it.skipIf(!disposable)(
      "after end(), queries get mysql2's own error in their callback; using ends the pool",
      async () => {
        const pool = createCallbackPool({ ...login, host: '127.0.0.1', port: proxyPort });
        await inBoth(() => new Promise((resolve) => pool.query('SELECT 1', resolve)));
        expect(pool.config.connectionLimit).toBe(10);
        expect(pool.pools?.size).toBe(1);
        {
          using _scoped = pool;
        }
        const errors = await inBoth(
          () => new Promise((resolve) => pool.query('SELECT 1', resolve)),
        );
        expect(errors.map(String)).toEqual(['Error: Pool is closed.', 'Error: Pool is closed.']);
        expect(pool.pools?.size).toBe(0);
      },
    );

    it('listeners added on promise() fire, with the Env-Id', async () => {
      const pool = callbackPool();
      const promised = pool.promise();
      const enqueued: Array<string | undefined> = [];
      promised.on('acquire', (_conn: unknown, envId?: string) => enqueued.push(envId));
      await inBoth(() => promised.query('SELECT 1'));
      expect(enqueued.sort()).toEqual(['feature-1', undefined]);
    });
  });
});
