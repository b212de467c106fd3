// One demo service: A, B or the order consumer, in the environment ENV_ID. Configured by
// environment variables, as a container would be.
import './instrumentation';
import http from 'node:http';
import { connect as amqpConnect } from '@picop/amqp';
import { connectAsync as mqttConnect } from '@picop/mqtt';
import { createPool } from '@picop/mysql';
import { acceptPicop } from '@picop/net-wrap';
import { createClient as createNodeRedis } from '@picop/node-redis';
import { Pool as PgPool } from '@picop/pg';
import { getEnvId } from '@picop/propagator';
import { Redis } from '@picop/redis';

const {
  ROLE = 'A',
  ENV_ID = 'main',
  HOST = '127.0.0.1',
  PORT = '0',
  B_URL = '',
  PREFIX = 'picop-demo',
} = process.env;
const NAME = `${ROLE}[${ENV_ID}]`;
const QUEUE = `${PREFIX}.orders`;
const TOPIC = `${PREFIX}/orders`;
const TABLE = PREFIX.replace(/-/g, '_');
const addr = (name: string) => {
  const [host, port] = String(process.env[name]).split(':');
  return { host: host as string, port: Number(port) };
};
// How the stores are reached (`npm run demo -- --proxyless` / `--isolate`): through their proxies
// (the default), straight to each environment's instance (ROUTES_<STORE>: a routes table), or on
// the one instance, a database / key prefix / schema per environment (ISOLATE_<STORE>: the list).
const routes = (store: string) => {
  const table = process.env[`ROUTES_${store}`];
  return table === undefined ? {} : { routes: { table: JSON.parse(table) } };
};
const isolated = (store: string): ((envId: string) => boolean) | undefined => {
  const list = process.env[`ISOLATE_${store}`];
  if (list === undefined) return undefined;
  const envs = new Set<string>(JSON.parse(list));
  return (envId) => envs.has(envId);
};

async function main(): Promise<void> {
  if (ROLE === 'A') return serve(await serviceA());
  if (ROLE === 'B') return serve(await serviceB());
  return consumer();
}

/** A: the first service; calls B through B's proxy with plain fetch(), in the request's environment. */
async function serviceA(): Promise<http.RequestListener> {
  return async (req, res) => {
    const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id');
    const fromB = await fetch(`${B_URL}/order?id=${id}`);
    if (!fromB.ok) throw new Error(`B answered ${fromB.status}: ${await fromB.text()}`);
    const reply = (await fromB.json()) as { B: string };
    res.end(JSON.stringify({ A: NAME, envId: getEnvId() ?? null, ...reply }));
  };
}

/**
 * B: writes the order to MySQL, PostgreSQL and Redis, and publishes it to RabbitMQ and MQTT, all in
 * the request's environment.
 */
async function serviceB(): Promise<http.RequestListener> {
  const mysqlOwn = isolated('MYSQL');
  const pool = createPool({
    ...addr('MYSQL'),
    user: 'root',
    password: '',
    database: 'test',
    connectionLimit: 4,
    picop: {
      ...routes('MYSQL'),
      ...(mysqlOwn && {
        isolate: {
          database: (envId: string) => (mysqlOwn(envId) ? `test_${envId}` : undefined),
          // Created on first use, from this callback only.
          create: async ({ database }: { database: string }) => {
            await pool.query(`CREATE DATABASE IF NOT EXISTS ${pool.escapeId(database)}`);
          },
        },
      }),
    },
  });
  const pgOwn = isolated('POSTGRES');
  const postgres: PgPool = new PgPool({
    ...addr('POSTGRES'),
    user: 'postgres',
    database: 'postgres',
    max: 4,
    picop: {
      ...routes('POSTGRES'),
      ...(pgOwn && {
        isolate: {
          schema: (envId: string) => (pgOwn(envId) ? `env_${envId}` : undefined),
          create: async ({ schema }: { schema?: string }) => {
            await postgres.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
          },
        },
      }),
    },
  });
  const redis = await storeRedis();
  const amqp = await amqpConnect(`amqp://guest:guest@${process.env.AMQP}`);
  const mqtt = await mqttConnect(`mqtt://${process.env.MQTT}`, { protocolVersion: 5 });
  return async (req, res) => {
    const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id') as string;
    // In the database of the request's environment, like the insert after it.
    await pool.query(
      `CREATE TABLE IF NOT EXISTS ${TABLE} (request_id VARCHAR(64), env VARCHAR(64), served_by VARCHAR(64))`,
    );
    await pool.query(`INSERT INTO ${TABLE} (request_id, env, served_by) VALUES (?, ?, ?)`, [
      id,
      getEnvId() ?? '',
      NAME,
    ]);
    await postgres
      .query(
        `CREATE TABLE IF NOT EXISTS ${TABLE} (request_id VARCHAR(64), env VARCHAR(64), served_by VARCHAR(64))`,
      )
      // Two requests creating it at once: PostgreSQL lets one win and fails the other
      // with one of these codes (unique violation in its catalog, table or row type exists).
      .catch((err: { code?: string }) => {
        if (!['23505', '42P07', '42710'].includes(err.code ?? '')) throw err;
      });
    await postgres.query(`INSERT INTO ${TABLE} (request_id, env, served_by) VALUES ($1, $2, $3)`, [
      id,
      getEnvId() ?? '',
      NAME,
    ]);
    await redis.set(`${PREFIX}:${id}`, NAME);
    await mqtt.publishAsync(TOPIC, id, { qos: 1 });
    const channel = await amqp.createChannel();
    await channel.assertQueue(QUEUE, { durable: false });
    channel.sendToQueue(QUEUE, Buffer.from(id));
    await channel.close();
    res.end(JSON.stringify({ B: NAME }));
  };
}

/**
 * Redis, reached as the demo's mode says, with ioredis (@picop/redis) or, with
 * `npm run demo -- --node-redis`, node-redis (@picop/node-redis).
 */
async function storeRedis(): Promise<{ set(key: string, value: string): Promise<unknown> }> {
  const own = isolated('REDIS');
  const picop = {
    ...routes('REDIS'),
    ...(own && {
      isolate: { keyPrefix: (envId: string) => (own(envId) ? `${envId}:` : undefined) },
    }),
  };
  if (process.env.REDIS_CLIENT === 'node-redis') {
    const client = createNodeRedis({ socket: addr('REDIS'), picop });
    client.on('error', (err) => console.error('redis', err));
    return client.connect();
  }
  return new Redis({ ...addr('REDIS'), picop });
}

/**
 * The order consumer: a worker with no request context, each message (RabbitMQ's and MQTT's)
 * handled in its environment.
 */
async function consumer(): Promise<void> {
  const redis = await storeRedis();
  const amqp = await amqpConnect(`amqp://guest:guest@${process.env.AMQP}`, {
    picop: { envId: ENV_ID },
  });
  const channel = await amqp.createChannel();
  await channel.assertQueue(QUEUE, { durable: false });
  await channel.consume(QUEUE, async (msg) => {
    if (!msg) return;
    await redis.set(`${PREFIX}:consumed:${msg.content}`, `consumer[${ENV_ID}] in ${getEnvId()}`);
    channel.ack(msg);
  });
  const mqtt = await mqttConnect(`mqtt://${process.env.MQTT}`, {
    protocolVersion: 5,
    picop: { envId: ENV_ID },
  });
  mqtt.on('message', async (_topic, payload) => {
    await redis.set(`${PREFIX}:mqtt:${payload}`, `consumer[${ENV_ID}] in ${getEnvId()}`);
  });
  await mqtt.subscribeAsync(TOPIC, { qos: 1 });
  process.stdout.write('ready\n');
}

function serve(handler: http.RequestListener): void {
  const server = acceptPicop(
    http.createServer((req, res) => {
      Promise.resolve(handler(req, res)).catch((err: Error) => {
        res.statusCode = 500;
        res.end(JSON.stringify({ error: err.message }));
      });
    }),
  );
  server.listen(Number(PORT), HOST, () => process.stdout.write('ready\n'));
}

process.on('SIGTERM', () => process.exit(0));
main().catch((err) => {
  process.stderr.write(`${NAME}: ${err.stack}\n`);
  process.exit(1);
});
