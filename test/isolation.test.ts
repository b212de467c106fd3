// Logical isolation: every environment on the one shared server, in its own database, schema or
// key prefix, created on first use only when asked; read back directly. And no identifier
// injection through an Env-Id.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connect as connectAmqp } from '@picop/amqp';
import { createConnection, createPool } from '@picop/mysql';
import { Client, Pool } from '@picop/pg';
import { getEnvId, withEnvId } from '@picop/propagator';
import { Redis } from '@picop/redis';
import amqplib from 'amqplib';
import { Redis as IORedis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inBoth } from './support/environments.js';
import { useContextManager } from './support/otel-and-tls.js';
import { runId } from './support/run-id.js';
import { AMQP_URL, MQTT_PORT, MYSQL_PORT, PG_PORT, REDIS_PORT } from './support/servers.js';

useContextManager();
const run = `iso${runId()}`;
const HOSTILE = ["f1';DROP", 'a:b', 'x`y', 'a"b', 'feature-1;', 'e'.repeat(49)];

describe('redis: a key prefix or a database per environment', () => {
  const direct = new IORedis({ host: '127.0.0.1', port: REDIS_PORT });
  const db3 = new IORedis({ host: '127.0.0.1', port: REDIS_PORT, db: 3 });
  afterAll(() => {
    direct.disconnect();
    db3.disconnect();
  });

  it('the environment’s prefix after the client’s own keyPrefix', async () => {
    const redis = new Redis({
      host: '127.0.0.1',
      port: REDIS_PORT,
      keyPrefix: `${run}:`,
      picop: { isolate: { keyPrefix: true } },
    });
    try {
      await inBoth((env) => redis.set('cart', env));
      await inBoth((env) => redis.hset('h', 'env', env));
      expect(await direct.get(`${run}:picop-env:feature-1:cart`)).toBe('feature-1');
      expect(await direct.get(`${run}:cart`)).toBe('main');
      expect(await direct.hget(`${run}:picop-env:feature-1:h`, 'env')).toBe('feature-1');
      // Reads see their own environment's value.
      expect(await inBoth(() => redis.get('cart'))).toEqual(['feature-1', 'main']);
      await direct.del(
        `${run}:picop-env:feature-1:cart`,
        `${run}:cart`,
        `${run}:picop-env:feature-1:h`,
        `${run}:h`,
      );
    } finally {
      redis.disconnect();
    }
  });

  it('a database index per environment', async () => {
    const redis = new Redis({
      host: '127.0.0.1',
      port: REDIS_PORT,
      picop: { isolate: { db: () => 3 } },
    });
    try {
      await inBoth((env) => redis.set(`${run}:db:${env}`, env));
      expect(await db3.get(`${run}:db:feature-1`)).toBe('feature-1');
      expect(await direct.get(`${run}:db:main`)).toBe('main');
      expect(await db3.exists(`${run}:db:main`)).toBe(0);
      await db3.del(`${run}:db:feature-1`);
      await direct.del(`${run}:db:main`);
    } finally {
      redis.disconnect();
    }
  });

  it('an Env-Id that cannot be part of a key prefix fails, and writes nothing', async () => {
    const redis = new Redis({
      host: '127.0.0.1',
      port: REDIS_PORT,
      keyPrefix: `${run}:`,
      picop: { isolate: { keyPrefix: true } },
    });
    try {
      for (const envId of HOSTILE) {
        await expect(withEnvId(envId, () => redis.set('hostile', 'x'))).rejects.toMatchObject({
          code: 'ERR_PICOP_INVALID_ARG',
        });
      }
      expect(await direct.keys(`${run}:*`)).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});

describe('mysql: a database per environment', () => {
  const login = {
    host: '127.0.0.1',
    port: MYSQL_PORT,
    user: 'root',
    password: '',
    database: 'test',
  };
  const databaseOf = (envId: string) => `${run}_${envId}`;
  const databases = async () => {
    const c = await mysql.createConnection(login);
    const [rows] = await c.query('SHOW DATABASES LIKE ?', [`${run}%`]);
    await c.end();
    return (rows as Array<Record<string, string>>).map((r) => Object.values(r)[0]).sort();
  };
  afterAll(async () => {
    const c = await mysql.createConnection(login);
    for (const db of await databases()) await c.query(`DROP DATABASE ${c.escapeId(db as string)}`);
    await c.query(`DROP TABLE IF EXISTS ${run}`);
    await c.end();
  });

  it('created on first use by the callback, each environment’s rows in its own database', async () => {
    const created: string[] = [];
    const admin = await mysql.createConnection(login);
    await admin.query(`CREATE TABLE ${run} (env VARCHAR(32))`);
    const pool = createPool({
      ...login,
      picop: {
        isolate: {
          database: databaseOf,
          // On the pool itself: the callback runs on the baseline's pool.
          create: async ({ database }) => {
            created.push(database);
            await pool.query(`CREATE DATABASE IF NOT EXISTS ${pool.escapeId(database)}`);
            await pool.query(
              `CREATE TABLE IF NOT EXISTS ${pool.escapeId(database)}.${run} LIKE test.${run}`,
            );
          },
        },
      },
    });
    try {
      await inBoth((env) => pool.query(`INSERT INTO ${run} VALUES (?)`, [env]));
      await inBoth((env) => pool.query(`INSERT INTO ${run} VALUES (?)`, [env]));
      expect(created).toEqual([databaseOf('feature-1')]);
      const [inFeature] = await admin.query(
        `SELECT env FROM \`${databaseOf('feature-1')}\`.${run}`,
      );
      const [inMain] = await admin.query(`SELECT env FROM test.${run}`);
      expect(inFeature).toEqual([{ env: 'feature-1' }, { env: 'feature-1' }]);
      expect(inMain).toEqual([{ env: 'main' }, { env: 'main' }]);
    } finally {
      await pool.end();
      await admin.end();
    }
  });

  it('without a create callback a missing database is an error, never another database', async () => {
    const pool = createPool({ ...login, picop: { isolate: { database: databaseOf } } });
    try {
      await expect(
        withEnvId('feature-2', () => pool.query('SELECT DATABASE() AS db')),
      ).rejects.toMatchObject({ code: 'ER_BAD_DB_ERROR' });
    } finally {
      await pool.end();
    }
  });

  it('a failing create fails the query and is tried again on the next use', async () => {
    let attempts = 0;
    const pool = createPool({
      ...login,
      picop: {
        isolate: {
          database: () => 'test',
          create: async () => {
            if (++attempts === 1) throw new Error('template missing');
          },
        },
      },
    });
    try {
      await expect(withEnvId('feature-3', () => pool.query('SELECT 1'))).rejects.toThrow(
        'template missing',
      );
      await withEnvId('feature-3', () => pool.query('SELECT 1'));
      expect(attempts).toBe(2);
    } finally {
      await pool.end();
    }
  });

  it('one connection (createConnection) of feature-1: its database, created first', async () => {
    const created: string[] = [];
    const admin = await mysql.createConnection(login);
    const conn = await withEnvId('feature-1', () =>
      createConnection({
        ...login,
        picop: {
          isolate: {
            database: databaseOf,
            create: async ({ database }) => {
              created.push(database);
              await admin.query(`CREATE DATABASE IF NOT EXISTS ${admin.escapeId(database)}`);
            },
          },
        },
      }),
    );
    try {
      const [rows] = await conn.query('SELECT DATABASE() AS db');
      expect(rows).toEqual([{ db: databaseOf('feature-1') }]);
      expect(created).toEqual([databaseOf('feature-1')]);
    } finally {
      await conn.end();
      await admin.end();
    }
  });

  it('hostile Env-Ids never become database names', async () => {
    const before = await databases();
    const pool = createPool({
      ...login,
      picop: {
        isolate: {
          database: databaseOf,
          create: async () => {
            throw new Error('create must not run for a hostile Env-Id');
          },
        },
      },
    });
    try {
      for (const envId of HOSTILE) {
        await expect(withEnvId(envId, () => pool.query('SELECT 1'))).rejects.toMatchObject({
          code: 'ERR_PICOP_INVALID_ARG',
        });
      }
      expect(await databases()).toEqual(before);
    } finally {
      await pool.end();
    }
  });
});

describe('pg: a schema or a database per environment', () => {
  const login = { host: '127.0.0.1', port: PG_PORT, user: 'postgres', database: 'postgres' };
  const admin = new pg.Client(login);
  beforeAll(() => admin.connect());
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${run}_feature-1" CASCADE`);
    await admin.query(`DROP TABLE IF EXISTS ${run}`);
    await admin.query(`DROP DATABASE IF EXISTS "${run}_feature-1"`);
    await admin.end();
  });

  it('a schema per environment (search_path), created on first use', async () => {
    await admin.query(`CREATE TABLE ${run} (env text)`);
    const pool = new Pool({
      ...login,
      picop: {
        isolate: {
          schema: (envId) => `${run}_${envId}`,
          create: async ({ schema }) => {
            await admin.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
            await admin.query(`CREATE TABLE IF NOT EXISTS "${schema}".${run} (env text)`);
          },
        },
      },
    });
    try {
      await inBoth((env) => pool.query(`INSERT INTO ${run} VALUES ($1)`, [env]));
      // A transaction on a client from connect(): the same schema.
      const client = await withEnvId('feature-1', () => pool.connect());
      await client.query('BEGIN');
      await client.query(`INSERT INTO ${run} VALUES ('tx')`);
      await client.query('COMMIT');
      client.release();
      const inSchema = await admin.query(`SELECT env FROM "${run}_feature-1".${run} ORDER BY env`);
      const inPublic = await admin.query(`SELECT env FROM public.${run}`);
      expect(inSchema.rows).toEqual([{ env: 'feature-1' }, { env: 'tx' }]);
      expect(inPublic.rows).toEqual([{ env: 'main' }]);
    } finally {
      await pool.end();
    }
  });

  it('a database per environment, made from a template by the callback', async () => {
    const pool = new Pool({
      ...login,
      picop: {
        isolate: {
          database: (envId) => `${run}_${envId}`,
          create: async ({ database }) => {
            const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
              database,
            ]);
            if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database}"`);
          },
        },
      },
    });
    try {
      const [inFeature, inMain] = await inBoth(() => pool.query('SELECT current_database() AS db'));
      expect(inFeature?.rows).toEqual([{ db: `${run}_feature-1` }]);
      expect(inMain?.rows).toEqual([{ db: 'postgres' }]);
    } finally {
      await pool.end();
    }
  });

  it('a LISTEN Client of feature-1 is in feature-1’s database, and hears its pool’s NOTIFY', async () => {
    const isolate = {
      database: (envId: string) => `${run}_${envId}`,
      // Runs for the Client and for the pool's feature-1: idempotent, as create callbacks must be.
      create: async ({ database }: { database?: string }) => {
        created++;
        const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
          database,
        ]);
        if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database}"`);
      },
    };
    let created = 0;
    const pool = new Pool({ ...login, picop: { isolate } });
    const listener = await withEnvId('feature-1', async () => {
      const c = new Client({ ...login, picop: { isolate } });
      await c.connect();
      return c;
    });
    try {
      const db = await listener.query('SELECT current_database() AS db');
      expect(db.rows).toEqual([{ db: `${run}_feature-1` }]);
      await listener.query(`LISTEN ${run}`);
      const heard = new Promise<[string | undefined, string | undefined]>((resolve) =>
        listener.once('notification', (n) => resolve([n.payload, getEnvId()])),
      );
      // The baseline's NOTIFY is in another database: only feature-1's reaches the listener.
      await pool.query(`NOTIFY ${run}, 'main'`);
      await withEnvId('feature-1', () => pool.query(`NOTIFY ${run}, 'feature-1'`));
      expect((await heard)[0]).toBe('feature-1');
      expect(created).toBe(2);
    } finally {
      await listener.end();
      await pool.end();
    }
  });

  it('hostile Env-Ids never become names', async () => {
    const pool = new Pool({ ...login, picop: { isolate: { schema: (envId) => `s_${envId}` } } });
    try {
      for (const envId of HOSTILE) {
        await expect(withEnvId(envId, () => pool.query('SELECT 1'))).rejects.toMatchObject({
          code: 'ERR_PICOP_INVALID_ARG',
        });
      }
    } finally {
      await pool.end();
    }
  });
});

describe('amqp: a virtual host per environment', () => {
  const exec = promisify(execFile);
  const vhost = `${run}-feature-1`;
  afterAll(async () => {
    await exec('rabbitmqctl', ['delete_vhost', vhost]).catch(() => undefined);
  });

  it('created by the callback, each environment’s messages in its own virtual host', async () => {
    const created: string[] = [];
    const conn = await connectAmqp(AMQP_URL, {
      picop: {
        isolate: {
          vhost: (envId) => (envId === 'feature-1' ? `${run}-${envId}` : undefined),
          create: async ({ vhost: name }) => {
            created.push(name);
            await exec('rabbitmqctl', ['add_vhost', name]);
            await exec('rabbitmqctl', ['set_permissions', '-p', name, 'guest', '.*', '.*', '.*']);
          },
        },
      },
    });
    const queue = `${run}-orders`;
    try {
      await inBoth(async (env) => {
        const ch = await conn.createChannel();
        await ch.assertQueue(queue);
        ch.sendToQueue(queue, Buffer.from(env));
        await ch.close();
      });
      expect(created).toEqual([vhost]);
      const url = new URL(AMQP_URL);
      const read = async (path: string) => {
        url.pathname = path;
        const c = await amqplib.connect(url.toString());
        const ch = await c.createChannel();
        let msg = await ch.get(queue, { noAck: true });
        while (msg === false) msg = await ch.get(queue, { noAck: true });
        await ch.deleteQueue(queue);
        await c.close();
        return msg.content.toString();
      };
      expect(await read(`/${encodeURIComponent(vhost)}`)).toBe('feature-1');
      expect(await read('/')).toBe('main');
    } finally {
      await conn.close();
    }
  }, 60_000);

  it('hostile Env-Ids never become virtual hosts', async () => {
    const conn = await connectAmqp(AMQP_URL, { picop: { isolate: { vhost: (envId) => envId } } });
    try {
      for (const envId of HOSTILE) {
        await expect(withEnvId(envId, () => conn.createChannel())).rejects.toMatchObject({
          code: 'ERR_PICOP_INVALID_ARG',
        });
      }
    } finally {
      await conn.close();
    }
  });
});

describe('mqtt: a topic prefix per environment', () => {
  it('publishes, subscriptions (shared too) and retained messages under the prefix; listeners see the plain topic', async () => {
    const { connectAsync } = await import('@picop/mqtt');
    const { Observer } = await import('../packages/mqtt/test/helpers.js');
    const observer = await Observer.start(MQTT_PORT, '#');
    const options = {
      protocolVersion: 5 as const,
      picop: { isolate: { topicPrefix: (envId: string) => `${run}/${envId}/` } },
    };
    const client = await connectAsync(`mqtt://127.0.0.1:${MQTT_PORT}`, options);
    const handled: Array<[string, string, string | undefined]> = [];
    let wake: () => void = () => {};
    client.on('message', (topic, payload) => {
      handled.push([topic, String(payload), getEnvId()]);
      wake();
    });
    try {
      // Each environment subscribes as it would without isolation: plain names.
      await inBoth(() => client.subscribeAsync(`${run}/orders/#`, { qos: 1 }));
      await withEnvId('feature-1', () => client.subscribeAsync(`$share/g/${run}/jobs`, { qos: 1 }));
      await inBoth((env) => client.publishAsync(`${run}/orders/new`, env, { qos: 1 }));
      await withEnvId('feature-1', () => client.publishAsync(`${run}/jobs`, 'job', { qos: 1 }));
      await withEnvId('feature-1', () =>
        client.publishAsync(`${run}/state`, 'kept', { qos: 1, retain: true }),
      );
      // On the broker: feature-1's under picop-env/ and its prefix, the baseline's as named.
      const seen = [
        ...(await observer.take(`picop-env/${run}/`, 3)),
        ...(await observer.take(`${run}/`, 1)),
      ];
      expect(seen.map((s) => [s.topic, s.payload]).sort()).toEqual([
        [`${run}/orders/new`, 'main'],
        [`picop-env/${run}/feature-1/${run}/jobs`, 'job'],
        [`picop-env/${run}/feature-1/${run}/orders/new`, 'feature-1'],
        [`picop-env/${run}/feature-1/${run}/state`, 'kept'],
      ]);
      while (handled.length < 3) await new Promise<void>((r) => (wake = r));
      expect(handled.sort()).toEqual([
        [`${run}/jobs`, 'job', 'feature-1'],
        [`${run}/orders/new`, 'feature-1', 'feature-1'],
        [`${run}/orders/new`, 'main', undefined],
      ]);
      await withEnvId('feature-1', () =>
        client.publishAsync(`${run}/state`, '', { qos: 1, retain: true }),
      );
    } finally {
      await client.endAsync();
      await observer.stop();
    }
  });

  it('hostile Env-Ids never become topic prefixes', async () => {
    const { connectAsync } = await import('@picop/mqtt');
    const client = await connectAsync(`mqtt://127.0.0.1:${MQTT_PORT}`, {
      picop: { isolate: { topicPrefix: (envId: string) => `env/${envId}/` } },
    });
    try {
      for (const envId of [...HOSTILE, 'a+b', 'a#b', 'a/b']) {
        await expect(withEnvId(envId, () => client.publishAsync('t', 'x'))).rejects.toMatchObject({
          code: 'ERR_PICOP_INVALID_ARG',
        });
      }
    } finally {
      await client.endAsync();
    }
  });
});
