// Everyday node-postgres idioms, each run in feature-1 and in the baseline at once, against two
// real PostgreSQL servers through picop-proxy (header required); every write read back directly.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connect } from '@picop/net-wrap';
import { Client, Pool } from '@picop/pg';
import { getEnvId, withEnvId } from '@picop/propagator';
import { createProxy } from '@picop/proxy';
import pg from 'pg';
import Cursor from 'pg-cursor';
import QueryStream from 'pg-query-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Env, inBoth } from '../../../test/support/environments.js';
import { selfSignedCert, useContextManager } from '../../../test/support/otel-and-tls.js';
import { runId } from '../../../test/support/run-id.js';
import { PG_HOST, PG_PORT, startPostgres } from '../../../test/support/servers.js';
import { usePgPair } from './helpers.js';

useContextManager();

const TABLE = `picop_pg_${runId()}`;
const base = { user: 'postgres', database: 'postgres' };

describe('@picop/pg idiom matrix (feature-1 and the baseline, interleaved)', () => {
  const pair = usePgPair();
  let config: { host: string; port: number; user: string; database: string };
  const direct: Record<Env, pg.Client> = {} as Record<Env, pg.Client>;

  beforeAll(async () => {
    config = { host: '127.0.0.1', port: pair.port, ...base };
    direct.main = new pg.Client({ host: PG_HOST, port: PG_PORT, ...base });
    direct['feature-1'] = new pg.Client({ host: '127.0.0.1', port: pair.second.port, ...base });
    for (const c of Object.values(direct)) {
      await c.connect();
      await c.query(`CREATE TABLE ${TABLE} (id text, env text)`);
    }
  }, 120_000);
  afterAll(async () => {
    await direct.main?.query(`DROP TABLE IF EXISTS ${TABLE}`);
    for (const c of Object.values(direct)) await c.end();
  });

  /** Where the row `id` landed, read from each server directly. */
  async function landed(id: string): Promise<string> {
    const found: string[] = [];
    for (const [env, c] of Object.entries(direct)) {
      const { rows } = await c.query(`SELECT env FROM ${TABLE} WHERE id = $1`, [id]);
      for (const row of rows) found.push(`${env}:${row.env}`);
    }
    return found.join('+') || 'nowhere';
  }
  const expected = (env: Env) => `${env}:${env === 'main' ? '' : env}`;

  it('query(text, values)', async () => {
    const pool = new Pool(config);
    const ids = await inBoth(async (env) => {
      const id = `text-${env}`;
      await pool.query(`INSERT INTO ${TABLE} VALUES ($1, $2)`, [id, getEnvId() ?? '']);
      return [env, id] as const;
    });
    for (const [env, id] of ids) expect(await landed(id)).toBe(expected(env));
    expect(pool.pools?.size).toBe(1);
    await pool.end();
  });

  it('query(config object) and named prepared statements, twice each', async () => {
    const pool = new Pool(config);
    const ids = await inBoth(async (env) => {
      const id = `named-${env}`;
      for (let i = 0; i < 2; i++) {
        await pool.query({
          name: 'insert-row',
          text: `INSERT INTO ${TABLE} VALUES ($1, $2)`,
          values: [id, getEnvId() ?? ''],
        });
      }
      return [env, id] as const;
    });
    for (const [env, id] of ids) expect(await landed(id)).toBe(`${expected(env)}+${expected(env)}`);
    await pool.end();
  });

  it('connect() -> a transaction -> release(), and a rollback', async () => {
    const pool = new Pool(config);
    const ids = await inBoth(async (env) => {
      const id = `tx-${env}`;
      const client = await pool.connect();
      await client.query('BEGIN');
      await client.query(`INSERT INTO ${TABLE} VALUES ($1, $2)`, [id, getEnvId() ?? '']);
      await client.query('COMMIT');
      await client.query('BEGIN');
      await client.query(`INSERT INTO ${TABLE} VALUES ($1, 'rolled back')`, [id]);
      await client.query('ROLLBACK');
      client.release();
      return [env, id] as const;
    });
    for (const [env, id] of ids) expect(await landed(id)).toBe(expected(env));
    await pool.end();
  });

  it('callback style: query(text, values, cb) and connect(cb)', async () => {
    const pool = new Pool(config);
    const ids = await inBoth(
      (env) =>
        new Promise<readonly [Env, string]>((resolve, reject) => {
          const id = `cb-${env}`;
          pool.connect((err, client, done) => {
            if (err || !client) return reject(err);
            client.query(
              `INSERT INTO ${TABLE} VALUES ($1, $2)`,
              [id, getEnvId() ?? ''],
              (queryErr: Error | null) => {
                done();
                if (queryErr) reject(queryErr);
                else resolve([env, id]);
              },
            );
          });
        }),
    );
    for (const [env, id] of ids) expect(await landed(id)).toBe(expected(env));
    await pool.end();
  });

  it('pg-cursor and pg-query-stream on a client from connect()', async () => {
    const pool = new Pool(config);
    const results = await inBoth(async (env) => {
      const client = await pool.connect();
      const cursor = client.query(
        new Cursor('SELECT inet_server_port() AS port, g FROM generate_series(1, 5) g'),
      );
      const firstTwo = await cursor.read(2);
      await cursor.close();
      const streamed: number[] = [];
      for await (const row of client.query(
        new QueryStream('SELECT g FROM generate_series(1, 3) g'),
      ) as AsyncIterable<{ g: number }>) {
        streamed.push(row.g);
      }
      client.release();
      return { env, port: firstTwo[0]?.port, rows: firstTwo.length, streamed };
    });
    for (const r of results) {
      expect(r).toEqual({
        env: r.env,
        port: r.env === 'main' ? PG_PORT : pair.second.port,
        rows: 2,
        streamed: [1, 2, 3],
      });
    }
    await pool.end();
  });

  it('100 queries of two environments interleaved on one pool of 4 never cross', async () => {
    const pool = new Pool({ ...config, max: 4 });
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => {
        const env: Env = i % 2 === 0 ? 'feature-1' : 'main';
        const insert = () =>
          pool.query(`INSERT INTO ${TABLE} VALUES ($1, $2)`, [`mix-${i}`, getEnvId() ?? '']);
        return env === 'main' ? insert() : withEnvId(env, insert);
      }),
    );
    for (let i = 0; i < 100; i++) {
      expect(await landed(`mix-${i}`)).toBe(expected(i % 2 === 0 ? 'feature-1' : 'main'));
    }
    await pool.end();
  });

  it('an Env-Id without a route goes to the baseline, in its own pool', async () => {
    const pool = new Pool(config);
    await withEnvId('feature-2', () =>
      pool.query(`INSERT INTO ${TABLE} VALUES ('f2', $1)`, [getEnvId()]),
    );
    expect(await landed('f2')).toBe('main:feature-2');
    await pool.end();
  });

  it('a Client belongs to the environment it was made in; its notifications run there', async () => {
    const client = await withEnvId('feature-1', async () => {
      const c = new Client(config);
      await c.connect();
      return c;
    });
    await client.query(`INSERT INTO ${TABLE} VALUES ('client', 'feature-1')`);
    expect(await landed('client')).toBe('feature-1:feature-1');
    await client.query('LISTEN picop_orders');
    const notified = new Promise<{ payload?: string; envId?: string }>((resolve) =>
      client.on('notification', (n) => resolve({ payload: n.payload, envId: getEnvId() })),
    );
    await direct['feature-1'].query("NOTIFY picop_orders, 'order-7'");
    expect(await notified).toEqual({ payload: 'order-7', envId: 'feature-1' });
    await client.end();
  });

  it('connect() then end() at once (node-postgres issue #320): it ends as pg does, with no error', async () => {
    const client = await withEnvId('feature-1', () => new Client(config));
    const errors: unknown[] = [];
    client.on('error', (err) => errors.push(err));
    client.connect().catch((err: unknown) => errors.push(err));
    const ended = new Promise((resolve) => client.once('end', resolve));
    await client.end();
    await ended;
    // A settled connect() rejection would have been pushed in its own microtask.
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors).toEqual([]);
  });

  it('with ssl: the header goes first, then the SSLRequest and TLS', async () => {
    const { cert, key } = selfSignedCert();
    const tlsServer = await startPostgres({ ssl: { cert, key } });
    const tlsProxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${PG_HOST}:${PG_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${tlsServer.port}` },
    });
    const port = (await tlsProxy.listen()).port;
    const pool = new Pool({ ...config, port, ssl: { ca: cert, servername: 'localhost' } });
    const row = await withEnvId('feature-1', async () => {
      const { rows } = await pool.query(
        'SELECT ssl, inet_server_port() AS port FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      return rows[0];
    });
    expect(row).toEqual({ ssl: true, port: tlsServer.port });
    await pool.end();
    await tlsProxy.close(100);
    await tlsServer.stop();
  }, 120_000);

  it('a plain client (psql, pg) reaches the baseline through a proxy in optional mode', async () => {
    const optional = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${PG_HOST}:${PG_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${pair.second.port}` },
      header: 'optional',
    });
    const port = (await optional.listen()).port;
    const plain = new pg.Client({ ...config, port });
    await plain.connect();
    expect((await plain.query('SELECT inet_server_port() AS port')).rows[0].port).toBe(PG_PORT);
    await plain.end();
    // psql itself (not spawnSync: the proxy runs in this process).
    const psql = await promisify(execFile)('psql', [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      'postgres',
      '-tAc',
      'SELECT inet_server_port()',
    ]);
    expect(psql.stdout.trim()).toBe(String(PG_PORT));
    await optional.close(100);
  });

  // A plain pg Client given our socket is not marked as routed: PicopGuard flags it (README).
  it.skipIf(process.env.PICOP_GUARDED)(
    "net-wrap's connect() as pg's stream: pg's own connect is a no-op to the same address",
    async () => {
      const ids = await inBoth(async (env) => {
        const id = `stream-${env}`;
        const client = new pg.Client({
          ...config,
          stream: () => connect({ host: config.host, port: config.port }),
        });
        await client.connect();
        await client.query(`INSERT INTO ${TABLE} VALUES ($1, $2)`, [id, getEnvId() ?? '']);
        await client.end();
        return [env, id] as const;
      });
      for (const [env, id] of ids) expect(await landed(id)).toBe(expected(env));
      // To another address: a typed error naming what to use, not EALREADY.
      const elsewhere = new pg.Client({
        ...config,
        port: pair.second.port,
        stream: () => connect({ host: config.host, port: config.port }),
      });
      await expect(elsewhere.connect()).rejects.toMatchObject({
        code: 'ERR_PICOP_UNSUPPORTED',
        message: expect.stringContaining('pgStream(env)'),
      });
    },
  );

  it('with picop: false it is plain node-postgres (no header: the proxy refuses it)', async () => {
    const plain = new Pool({ host: PG_HOST, port: PG_PORT, ...base, picop: false });
    expect((await plain.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect(plain.pools).toBeUndefined();
    await plain.end();
  });
});
