// The rest of a job's paths keep its environment: updateData and moveToDelayed, a rate-limited
// worker, a processor that writes through @picop/mysql (two MariaDB servers behind picop-proxy,
// read back directly), and a worker whose Redis restarts under it.

import { DelayedError, Queue, Worker } from '@picop/bullmq';
import { createPool } from '@picop/mysql';
import { getEnvId, withEnvId } from '@picop/propagator';
import { Redis as IORedis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { useMysqlStores } from '../../../test/support/data-layer.js';
import { inBoth } from '../../../test/support/environments.js';
import { useContextManager } from '../../../test/support/otel-and-tls.js';
import { runId } from '../../../test/support/run-id.js';
import { REDIS_HOST, REDIS_PORT, startRedis } from '../../../test/support/servers.js';

useContextManager();
const RUN = runId();
let queues = 0;
const queueName = () => `picop-paths-${RUN}-${++queues}`;
const connections: IORedis[] = [];
const closing: Array<{ close(): Promise<unknown> }> = [];
function shared(port = REDIS_PORT): IORedis {
  const connection = new IORedis({ host: REDIS_HOST, port, maxRetriesPerRequest: null });
  // While a restarted Redis is down, the connection reports each refused reconnect.
  connection.on('error', () => {});
  connections.push(connection);
  return connection;
}
afterAll(async () => {
  for (const c of closing.reverse()) await c.close();
  for (const c of connections) c.disconnect();
});

/** A queue and a worker running `processor`; `seen` gets each run's job name and Env-Id. */
function worker(
  processor: ConstructorParameters<typeof Worker>[1],
  options: Partial<ConstructorParameters<typeof Worker>[2]> = {},
  port = REDIS_PORT,
) {
  const name = queueName();
  const queue = new Queue(name, { connection: shared(port) });
  const running = new Worker(name, processor, { connection: shared(port), ...options });
  closing.push(queue, running);
  return { queue, worker: running };
}

/** Resolves once `count` runs were seen. */
function runs(count: number) {
  const seen: Array<[string, string | undefined]> = [];
  let resolve: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  const record = (name: string) => {
    seen.push([name, getEnvId()]);
    if (seen.length === count) resolve();
  };
  return { seen, done, record };
}

describe('@picop/bullmq: the rest of a job’s paths', () => {
  it('updateData and moveToDelayed: the job’s next run is in its environment, with its new data', async () => {
    const { seen, done, record } = runs(2);
    const { queue } = worker(async (job, token) => {
      record(`${job.name}:${(job.data as { step: number }).step}`);
      if ((job.data as { step: number }).step === 1) {
        await job.updateData({ step: 2 });
        await job.moveToDelayed(Date.now() + 20, token);
        throw new DelayedError();
      }
    });
    await withEnvId('feature-1', () => queue.add('moved', { step: 1 }));
    await done;
    expect(seen).toEqual([
      ['moved:1', 'feature-1'],
      ['moved:2', 'feature-1'],
    ]);
  });

  it('a rate-limited worker runs each job in its environment', async () => {
    const { seen, done, record } = runs(6);
    const { queue } = worker(async (job) => record(job.name), {
      limiter: { max: 1, duration: 10 },
    });
    await Promise.all([0, 1, 2].map(() => inBoth((env) => queue.add(env, {}))));
    await done;
    for (const [name, envId] of seen) expect(envId ?? 'main').toBe(name);
  });

  it('a worker whose Redis restarts goes on running each job in its environment', async () => {
    let redis = await startRedis();
    const port = redis.port;
    try {
      const first = runs(1);
      let record = first.record;
      const { queue } = worker(async (job) => record(job.name), {}, port);
      await withEnvId('feature-1', () => queue.add('before', {}));
      await first.done;
      await redis.stop();
      redis = await startRedis(port); // empty: BullMQ's clients reconnect to it
      const second = runs(1);
      record = second.record;
      await withEnvId('feature-1', () => queue.add('after', {}));
      await second.done;
      expect([...first.seen, ...second.seen]).toEqual([
        ['before', 'feature-1'],
        ['after', 'feature-1'],
      ]);
    } finally {
      for (const c of closing.splice(0)) await c.close();
      await redis.stop();
    }
  });
});

describe('@picop/bullmq: a processor writes through @picop/mysql', () => {
  const TABLE = `bullmq_${RUN}`;
  const stores = useMysqlStores(TABLE);

  it('each job’s rows land in its environment’s MariaDB', async () => {
    const pool = createPool({
      host: '127.0.0.1',
      port: stores.port,
      user: 'root',
      password: '',
      database: 'test',
    });
    closing.push({ close: () => pool.end() });
    const { seen, done, record } = runs(20);
    const { queue } = worker(async (job) => {
      await pool.query(`INSERT INTO ${TABLE} (env, what) VALUES (?, 'job')`, [job.name]);
      record(job.name);
    });
    await Promise.all(Array.from({ length: 10 }, () => inBoth((env) => queue.add(env, {}))));
    await done;
    expect(seen).toHaveLength(20);
    for (const env of ['feature-1', 'main'] as const) {
      expect((await stores.rowsOf(env)).map((r) => r.env)).toEqual(Array(10).fill(env));
    }
  });
});
