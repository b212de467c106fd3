// Jobs in their environment: one queue in the baseline's Redis (a plain ioredis connection), jobs
// added in feature-1 and in the baseline interleaved in one tick, every processor reading its
// Env-Id and writing through @picop/redis, whose writes land in the environment's own Redis
// behind picop-proxy (read back directly).

import { FlowProducer, type Job, Queue, QueueEvents, Worker } from '@picop/bullmq';
import { getEnvId, withEnvId } from '@picop/propagator';
import { Redis as PicopRedis } from '@picop/redis';
import { Queue as PlainQueue } from 'bullmq';
import IORedis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Env, inBoth } from '../../../test/support/environments.js';
import { useContextManager } from '../../../test/support/otel-and-tls.js';
import { useServerPair } from '../../../test/support/pair.js';
import { runId } from '../../../test/support/run-id.js';
import { REDIS_HOST, REDIS_PORT, startRedis } from '../../../test/support/servers.js';

useContextManager();
const RUN = runId();
let queues = 0;
const queueName = () => `picop-${RUN}-${++queues}`;
const connections: IORedis[] = [];
/**
 * A plain connection to the baseline's Redis, where the queues live (BullMQ's workers block on
 * theirs: no retry limit per request). BullMQ leaves the connections it is given open.
 */
function shared(): IORedis {
  const connection = new IORedis({
    host: REDIS_HOST,
    port: REDIS_PORT,
    maxRetriesPerRequest: null,
  });
  connections.push(connection);
  return connection;
}

describe('@picop/bullmq: each job runs in the environment that added it', () => {
  const pair = useServerPair(() => startRedis(), `${REDIS_HOST}:${REDIS_PORT}`);
  const direct = {} as Record<Env, IORedis>;
  let stores: PicopRedis;
  const closing: Array<{ close(): Promise<unknown> }> = [];

  beforeAll(() => {
    direct.main = new IORedis({ host: REDIS_HOST, port: REDIS_PORT });
    direct['feature-1'] = new IORedis({ host: '127.0.0.1', port: pair.second.port });
    stores = new PicopRedis({ host: '127.0.0.1', port: pair.port });
  });
  afterAll(async () => {
    for (const c of closing.reverse()) await c.close();
    for (const c of connections) c.disconnect();
    stores.disconnect();
    for (const c of Object.values(direct)) c.disconnect();
  });

  /**
   * A queue and its worker; the processor records each job's Env-Id under `<queue>:<job id>` in
   * the store of its environment, and resolves `done` after `expected` jobs.
   */
  function queueAndWorker(expected: number, fail?: (job: Job) => boolean) {
    const name = queueName();
    const queue = new Queue(name, { connection: shared() });
    let seen = 0;
    let resolveDone: () => void;
    const done = new Promise<void>((resolve) => {
      resolveDone = resolve;
    });
    const worker = new Worker(
      name,
      async (job) => {
        if (fail?.(job)) throw new Error('first attempt fails');
        await stores.set(`${name}:${job.id}`, getEnvId() ?? 'main');
        if (++seen === expected) resolveDone();
      },
      { connection: shared() },
    );
    closing.push(queue, worker);
    /** Where job `id`'s record landed: `env:recorded` for each store that has it. */
    const landed = async (id: string | undefined) => {
      const found: string[] = [];
      for (const [env, c] of Object.entries(direct)) {
        const value = await c.get(`${name}:${id}`);
        if (value !== null) found.push(`${env}:${value}`);
      }
      return found.join('+') || 'nowhere';
    };
    return { queue, worker, done, landed, name };
  }

  it('20 jobs per environment, added interleaved in one tick: each in its own environment', async () => {
    const { queue, done, landed } = queueAndWorker(40);
    const added = await Promise.all(
      Array.from({ length: 20 }, (_, i) => inBoth((env) => queue.add('job', { env, i }))),
    );
    await done;
    for (const [feature, main] of added) {
      expect(await landed(feature?.id)).toBe('feature-1:feature-1');
      expect(await landed(main?.id)).toBe('main:main');
    }
  });

  it('addBulk, a delayed job and a job retried with backoff keep their environment', async () => {
    const attempts = new Map<string | undefined, number>();
    const { queue, done, landed } = queueAndWorker(4, (job) => {
      const n = (attempts.get(job.id) ?? 0) + 1;
      attempts.set(job.id, n);
      return job.name === 'retried' && n === 1;
    });
    const jobs = await withEnvId('feature-1', async () => [
      ...(await queue.addBulk([
        { name: 'bulk', data: {} },
        { name: 'bulk', data: {} },
      ])),
      await queue.add('delayed', {}, { delay: 50 }),
      await queue.add('retried', {}, { attempts: 2, backoff: { type: 'fixed', delay: 20 } }),
    ]);
    await done;
    for (const job of jobs) expect(await landed(job.id)).toBe('feature-1:feature-1');
  });

  it('a flow: the parent and its children run in the environment that added it', async () => {
    const { name, done, landed } = queueAndWorker(3);
    const flows = new FlowProducer({ connection: shared() });
    closing.push(flows);
    const tree = await withEnvId('feature-1', () =>
      flows.add({
        name: 'parent',
        queueName: name,
        children: [
          { name: 'child', queueName: name },
          { name: 'child', queueName: name },
        ],
      }),
    );
    await done;
    for (const job of [tree.job, ...(tree.children ?? []).map((c) => c.job)]) {
      expect(await landed(job.id)).toBe('feature-1:feature-1');
    }
  });

  it('a job scheduler’s repeated jobs stay in the environment that made the schedule', async () => {
    const { queue, done, landed } = queueAndWorker(3);
    await withEnvId('feature-1', () =>
      queue.upsertJobScheduler('every-20ms', { every: 20 }, { name: 'tick', data: {} }),
    );
    await done;
    await queue.removeJobScheduler('every-20ms');
    const ticks = (await queue.getJobs(['completed'])).filter((job) => job.name === 'tick');
    expect(ticks.length).toBeGreaterThanOrEqual(3);
    for (const job of ticks) expect(await landed(job.id)).toBe('feature-1:feature-1');
  });

  it('a job added without @picop/bullmq runs in the baseline, whatever context made the worker', async () => {
    const name = queueName();
    const seen: Array<string | undefined> = [];
    let resolveDone: () => void;
    const done = new Promise<void>((resolve) => {
      resolveDone = resolve;
    });
    // The worker is made inside feature-1's context; the job carries no Env-Id.
    const worker = withEnvId(
      'feature-1',
      () =>
        new Worker(
          name,
          async () => {
            seen.push(getEnvId());
            resolveDone();
          },
          { connection: shared() },
        ),
    );
    const plain = new PlainQueue(name, { connection: shared() });
    closing.push(plain, worker);
    await withEnvId('feature-1', () => plain.add('job', {}));
    await done;
    expect(seen).toEqual([undefined]);
  });

  it('selective: two workers per environment, each job handled once by its own environment’s', async () => {
    const name = queueName();
    const handled: Array<{ worker: string; env: string | undefined; id: string | undefined }> = [];
    let resolveDone: () => void;
    const done = new Promise<void>((resolve) => {
      resolveDone = resolve;
    });
    const workerOf = (label: string, envId: string | undefined) =>
      new Worker(
        name,
        async (job) => {
          handled.push({ worker: label, env: getEnvId(), id: `${job.queueName}:${job.id}` });
          if (handled.length === 40) resolveDone();
        },
        { connection: shared(), picop: { selective: true, envId: envId ?? null } },
      );
    const workers = [
      workerOf('main-a', undefined),
      workerOf('main-b', undefined),
      workerOf('feature-1-a', 'feature-1'),
      workerOf('feature-1-b', 'feature-1'),
    ];
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    const queue = new Queue(name, { connection: shared(), picop: { selective: true } });
    closing.push(...workers, queue);
    await Promise.all(Array.from({ length: 20 }, () => inBoth((env) => queue.add('job', { env }))));
    await done;
    expect(new Set(handled.map((h) => h.id)).size).toBe(40); // each job once
    for (const { worker, env } of handled) {
      expect(worker.startsWith(env ?? 'main'), `${worker} ran a job of ${env}`).toBe(true);
    }

    // Without a live feature-1 worker, its jobs go to the shared queue: the baseline's workers
    // run them, in feature-1's environment.
    await Promise.all(workers.slice(2).map((w) => w.close()));
    const later = new Queue(name, { connection: shared(), picop: { selective: true } });
    closing.push(later);
    const before = handled.length;
    const ran = new Promise<void>((resolve) => {
      workers[0]?.on('completed', () => handled.length > before && resolve());
      workers[1]?.on('completed', () => handled.length > before && resolve());
    });
    await withEnvId('feature-1', () => later.add('job', {}));
    await ran;
    expect(handled.at(-1)).toMatchObject({ env: 'feature-1' });
    expect(handled.at(-1)?.worker.startsWith('main')).toBe(true);
  });

  it('a sandboxed processor (inJobEnvironment in its file) runs each job in its environment', async () => {
    const name = queueName();
    const queue = new Queue(name, { connection: shared() });
    const worker = new Worker(name, new URL('./fixtures/sandboxed.mjs', import.meta.url), {
      connection: shared(),
    });
    closing.push(queue, worker);
    const results = new Map<string | undefined, unknown>();
    const completed = new Promise<void>((resolve) =>
      worker.on('completed', (job, value) => {
        results.set(job.id, value);
        if (results.size === 2) resolve();
      }),
    );
    const jobs = await inBoth((env) => queue.add('job', { env }));
    await completed;
    const seen = jobs.map((job) => results.get(job.id));
    expect(seen).toEqual(['feature-1', 'main']);
  });

  it('QueueEvents listeners run in the job’s environment, in order, removed jobs too', async () => {
    const name = queueName();
    const queue = new Queue(name, { connection: shared() });
    // Made in feature-2's context: listeners must not run there. From the stream's start, so no
    // event is missed before its first read.
    const events = withEnvId(
      'feature-2',
      () => new QueueEvents(name, { connection: shared(), lastEventId: '0' }),
    );
    closing.push(queue, events);
    const seen = new Map<string, string[]>();
    const record = (event: string) => (args: { jobId: string }) =>
      seen.set(args.jobId, [...(seen.get(args.jobId) ?? []), `${event}:${getEnvId() ?? 'main'}`]);
    const count = (event: string, n: number) =>
      new Promise<void>((resolve) => {
        let heard = 0;
        events.on(event as 'added', (args) => {
          record(event)(args);
          if (++heard === n) resolve();
        });
      });
    const allAdded = count('added', 40);
    events.on('active', record('active'));
    const allCompleted = count('completed', 40);
    // Half the jobs are removed on completion: their environment is the one read at `added`.
    const added = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        inBoth((env) => queue.add('job', { env }, { removeOnComplete: i % 2 === 0 })),
      ),
    );
    await allAdded;
    const worker = new Worker(name, async () => {}, { connection: shared() });
    closing.push(worker);
    const first = added[0]?.[0] as Job;
    await Promise.all([allCompleted, first.waitUntilFinished(events)]);
    for (const [feature, main] of added) {
      for (const [job, env] of [
        [feature, 'feature-1'],
        [main, 'main'],
      ] as const) {
        expect(seen.get(job?.id as string)).toEqual([
          `added:${env}`,
          `active:${env}`,
          `completed:${env}`,
        ]);
      }
    }
  });

  it('a QueueEvents listener that throws reaches its error listeners; events go on', async () => {
    const { queue, done, name } = queueAndWorker(2);
    const events = new QueueEvents(name, { connection: shared(), lastEventId: '0' });
    closing.push(events);
    const errors: unknown[] = [];
    const twoErrors = new Promise<void>((resolve) =>
      events.on('error', (err) => errors.push(err) === 2 && resolve()),
    );
    events.on('completed', () => {
      throw new Error('listener failed');
    });
    await inBoth(() => queue.add('job', {}));
    await Promise.all([done, twoErrors]);
    expect(errors).toEqual([
      expect.objectContaining({ message: 'listener failed' }),
      expect.objectContaining({ message: 'listener failed' }),
    ]);
  });

  it('a @picop/redis client as the connection is refused, naming what to give', () => {
    const client = new PicopRedis({ host: '127.0.0.1', port: pair.port, lazyConnect: true });
    try {
      expect(() => new Queue(queueName(), { connection: client })).toThrow(
        expect.objectContaining({
          code: 'ERR_PICOP_UNSUPPORTED',
          message: expect.stringContaining('plain ioredis connection'),
        }),
      );
    } finally {
      client.disconnect();
    }
  });

  it('keeps BullMQ’s class names', () => {
    expect([Queue.name, Worker.name, FlowProducer.name, QueueEvents.name]).toEqual([
      'Queue',
      'Worker',
      'FlowProducer',
      'QueueEvents',
    ]);
  });
});
