import type { Context } from '@opentelemetry/api';
import { context } from '@opentelemetry/api';
import { PicopError } from '@picop/codec';
import { coverLibrary, fallbackEnvId } from '@picop/net-wrap/internal';
import { getEnvId } from '@picop/propagator';
import {
  FlowProducer as BullFlowProducer,
  Queue as BullQueue,
  QueueEvents as BullQueueEvents,
  type QueueOptions as BullQueueOptions,
  Worker as BullWorker,
  type WorkerOptions as BullWorkerOptions,
  type FlowJob,
  type FlowOpts,
  type Job,
  type JobNode,
  type Processor,
  type QueueBaseOptions,
  type QueueEventsOptions,
  type Telemetry,
} from 'bullmq';
import { contextMetadata, picopTelemetry, withJobEnvId } from './telemetry.js';

export * from 'bullmq';
export { picopTelemetry, withJobEnvId } from './telemetry.js';

// PicopGuard's start-up check: bullmq is routed in this process.
coverLibrary('bullmq');

const LABEL = '@picop/bullmq';

/** The `picop` options of {@link Queue} and {@link Worker}. */
export interface PicopBullmqOptions {
  /**
   * Selective consumption. A `Worker` of an environment (its `envId`, or `PICOP_ENV_ID`, other
   * than `baselineEnvId`) takes its jobs from that environment's own queue,
   * `<name>.picop-env.<Env-Id>`, and no other; the baseline's takes the shared queue. A `Queue`
   * adds a job of an environment to that environment's queue while it has a live worker
   * (BullMQ's `getWorkersCount()`, read at most once a second), else to the shared queue, where
   * the baseline's workers run it, still in its environment.
   * @default false
   */
  selective?: boolean;
  /** This worker's environment (selective mode). @default `PICOP_ENV_ID` */
  envId?: string | null;
  /** The baseline's Env-Id: its workers take the shared queue. @default 'main' */
  baselineEnvId?: string;
}

/** BullMQ's `QueueOptions` plus `picop`. */
export interface QueueOptions extends BullQueueOptions {
  picop?: PicopBullmqOptions;
}

/** BullMQ's `WorkerOptions` plus `picop`. */
export interface WorkerOptions extends BullWorkerOptions {
  picop?: PicopBullmqOptions;
}

/** The queue of environment `envId`'s own workers (selective mode). */
export function environmentQueueName(name: string, envId: string): string {
  return `${name}.picop-env.${encodeURIComponent(envId)}`;
}

/** How long a `Queue` trusts what it read of an environment's live workers. */
const LIVE_CHECK_MS = 1000;
/** Environments' queues a selective `Queue` keeps open; past it, the least recently used closes. */
const MAX_ENVIRONMENT_QUEUES = 64;

/**
 * `opts` for BullMQ, after checking the connection: the queue is shared by every environment and
 * lives in the baseline's Redis, so a `@picop/*` client (which would put each environment's jobs
 * in its own Redis) is refused. A telemetry of the user's is wrapped in {@link picopTelemetry}
 * (BullMQ's trace machinery then carries the Env-Id beside its spans); without one, BullMQ's
 * stays off and each job's options carry it ({@link stamped}).
 */
function libraryOptions<O extends QueueBaseOptions & { picop?: unknown }>(
  opts: O | undefined,
  what: string,
): Omit<O, 'picop'> {
  const connection = opts?.connection as { pools?: { byEnvId?: unknown } } | undefined;
  if (typeof connection?.pools?.byEnvId === 'function') {
    throw new PicopError(
      'ERR_PICOP_UNSUPPORTED',
      `${LABEL}: ${what} takes a plain ioredis connection (or its options) to the baseline's Redis, not a @picop/* client: one queue serves every environment, each job carrying its own Env-Id; a @picop/redis client would keep each environment's jobs in its own Redis, unseen by the others' workers`,
    );
  }
  const { picop: _picop, ...library } = opts ?? ({} as O);
  const telemetry = opts?.telemetry as Telemetry<Context> | undefined;
  return telemetry === undefined ? library : { ...library, telemetry: picopTelemetry(telemetry) };
}

/** Job options that may carry propagation metadata. */
type WithTelemetry = { telemetry?: { metadata?: string; omitContext?: boolean } };

/**
 * `opts` with the active context's metadata (its Env-Id) unless they carry some (or omit it):
 * what BullMQ's trace machinery would add, without running it.
 */
function stamped<O extends WithTelemetry>(opts: O | undefined): O | undefined {
  if (opts?.telemetry?.metadata !== undefined || opts?.telemetry?.omitContext) return opts;
  const metadata = contextMetadata();
  if (metadata === undefined) return opts;
  return { ...(opts as O), telemetry: { ...opts?.telemetry, metadata } };
}

/**
 * BullMQ's `Queue`: each job added carries the Env-Id of the context that adds it (and the
 * `telemetry` you give keeps its own spans and fields). One queue for every environment, in the
 * baseline's Redis: give it a plain ioredis connection there.
 *
 * @example
 * const orders = new Queue('orders', { connection: new IORedis('redis://redis:6379') });
 * await orders.add('charge', { id }); // in a request: the job runs in the request's environment
 */
export class Queue<
  DataType = unknown,
  ResultType = unknown,
  NameType extends string = string,
> extends BullQueue<DataType, ResultType, NameType> {
  readonly #stamps: boolean;
  readonly #selective: boolean;
  readonly #baselineEnvId: string;
  readonly #library: Omit<QueueOptions, 'picop'>;
  readonly #environments = new Map<string, BullQueue<DataType, ResultType, NameType>>();
  readonly #live = new Map<string, { at: number; live: Promise<boolean> }>();

  /** BullMQ's arguments; what follows `opts` (a connection class, a backend) is passed on. */
  constructor(name: string, opts?: QueueOptions, ...rest: unknown[]) {
    const library = libraryOptions(opts, 'Queue');
    super(name, library, ...(rest as []));
    this.#library = library;
    this.#stamps = library.telemetry === undefined;
    this.#selective = opts?.picop?.selective === true;
    this.#baselineEnvId = opts?.picop?.baselineEnvId ?? 'main';
  }

  /**
   * BullMQ's `add`; in selective mode, to the active environment's own queue while it has a
   * live worker.
   */
  override add(
    ...[name, data, opts]: Parameters<BullQueue<DataType, ResultType, NameType>['add']>
  ): ReturnType<BullQueue<DataType, ResultType, NameType>['add']> {
    const own = this.#stamps ? stamped(opts) : opts;
    const envId = this.#selectedEnvId();
    if (envId === undefined) return super.add(name, data, own);
    return this.#targetOf(envId).then((target) =>
      target === undefined ? super.add(name, data, own) : target.add(name, data, own),
    );
  }

  /** BullMQ's `addBulk`; in selective mode, as {@link add}. */
  override addBulk(
    ...[jobs]: Parameters<BullQueue<DataType, ResultType, NameType>['addBulk']>
  ): ReturnType<BullQueue<DataType, ResultType, NameType>['addBulk']> {
    const own = this.#stamps ? jobs.map((job) => ({ ...job, opts: stamped(job.opts) })) : jobs;
    const envId = this.#selectedEnvId();
    if (envId === undefined) return super.addBulk(own);
    return this.#targetOf(envId).then((target) =>
      target === undefined ? super.addBulk(own) : target.addBulk(own),
    );
  }

  /** BullMQ's `upsertJobScheduler`: its jobs carry the Env-Id of the context that makes it. */
  override upsertJobScheduler(
    ...[id, repeat, template]: Parameters<
      BullQueue<DataType, ResultType, NameType>['upsertJobScheduler']
    >
  ): ReturnType<BullQueue<DataType, ResultType, NameType>['upsertJobScheduler']> {
    const own = this.#stamps && template ? { ...template, opts: stamped(template.opts) } : template;
    return super.upsertJobScheduler(id, repeat, own);
  }

  /** Closes this queue and the environments' queues it added to. */
  override async close(): Promise<void> {
    const environments = [...this.#environments.values()];
    this.#environments.clear();
    await Promise.all([super.close(), ...environments.map((q) => q.close())]);
  }

  /** The active Env-Id, in selective mode, when it is not the baseline's. */
  #selectedEnvId(): string | undefined {
    const envId = this.#selective ? getEnvId() : undefined;
    return envId === this.#baselineEnvId ? undefined : envId;
  }

  /** The queue of `envId`'s own workers while they are live; else undefined (this one). */
  async #targetOf(envId: string): Promise<BullQueue<DataType, ResultType, NameType> | undefined> {
    let queue = this.#environments.get(envId);
    if (queue !== undefined) {
      // Most recently used last: the first is the one to close when the cap is reached.
      this.#environments.delete(envId);
      this.#environments.set(envId, queue);
    } else {
      if (this.#environments.size >= MAX_ENVIRONMENT_QUEUES) {
        const [oldest, closing] = this.#environments.entries().next().value as [string, BullQueue];
        this.#environments.delete(oldest);
        this.#live.delete(oldest);
        closing.close().catch(() => {});
      }
      queue = new BullQueue<DataType, ResultType, NameType>(
        environmentQueueName(this.name, envId),
        this.#library,
      );
      this.#environments.set(envId, queue);
    }
    let check = this.#live.get(envId);
    if (check === undefined || Date.now() - check.at > LIVE_CHECK_MS) {
      // A Redis that refuses CLIENT LIST shows no live worker: the shared queue, as documented.
      const live = queue.getWorkersCount().then(
        (n) => n > 0,
        () => false,
      );
      check = { at: Date.now(), live };
      this.#live.set(envId, check);
    }
    return (await check.live) ? queue : undefined;
  }
}

/**
 * BullMQ's `Worker`, whose processor runs in each job's environment: `getEnvId()` is the job's,
 * and `@picop/*` clients route its work there. A job added without an Env-Id (or by a producer
 * without this package) runs in the baseline, whatever context the worker was made in. A
 * processor given as a file (sandboxed) reads the job's Env-Id with `withJobEnvId` itself.
 *
 * @example
 * new Worker('orders', async (job) => db.query('UPDATE ...'), { connection });
 */
export class Worker<
  DataType = unknown,
  ResultType = unknown,
  NameType extends string = string,
> extends BullWorker<DataType, ResultType, NameType> {
  constructor(
    name: string,
    processor?: string | URL | null | Processor<DataType, ResultType, NameType>,
    opts?: WorkerOptions,
    ...rest: unknown[]
  ) {
    super(
      selectedQueue(name, opts?.picop),
      typeof processor === 'function' ? inJobEnvironment(processor) : processor,
      libraryOptions(opts, 'Worker'),
      ...(rest as []),
    );
  }
}

/** The queue a worker takes its jobs from: its environment's own in selective mode. */
function selectedQueue(name: string, picop: PicopBullmqOptions | undefined): string {
  if (picop?.selective !== true) return name;
  const envId = fallbackEnvId(picop.envId);
  return envId === undefined || envId === (picop.baselineEnvId ?? 'main')
    ? name
    : environmentQueueName(name, envId);
}

/** BullMQ's `FlowProducer`: every job of a flow carries the Env-Id of the context that adds it. */
export class FlowProducer extends BullFlowProducer {
  readonly #stamps: boolean;

  constructor(opts?: QueueBaseOptions, ...rest: unknown[]) {
    const library = libraryOptions(opts, 'FlowProducer');
    super(library, ...(rest as []));
    this.#stamps = library.telemetry === undefined;
  }

  override add(flow: FlowJob, opts?: FlowOpts): Promise<JobNode> {
    return super.add(this.#node(flow), opts);
  }

  override addBulk(flows: FlowJob[]): Promise<JobNode[]> {
    return super.addBulk(flows.map((flow) => this.#node(flow)));
  }

  // Every node gets options: with a telemetry, BullMQ adds the metadata only to nodes that have
  // some (5.34 to 6.7 at least), and a child without would run in the baseline.
  #node(node: FlowJob): FlowJob {
    return {
      ...node,
      opts: (this.#stamps ? stamped(node.opts) : node.opts) ?? {},
      children: node.children?.map((child) => this.#node(child)),
    };
  }
}

/** Jobs whose metadata a {@link QueueEvents} keeps, for the events that follow (oldest dropped). */
const KNOWN_JOBS = 10_000;

/**
 * BullMQ's `QueueEvents`, whose listeners run in each job's environment: the Env-Id of the job an
 * event names (none for a job added without one), whatever context the `QueueEvents` was made in.
 * It reads each job's metadata once (`getJob`, on a connection of its own beside the blocking
 * one) at the first event that names it, and remembers it for the job's later events, so a job
 * removed on completion still has it; events keep their order, each delivered after that read. A
 * job it first hears of once it is removed, or whose read fails, has its listeners run in the
 * baseline. `error` is emitted at once, as BullMQ does.
 */
export class QueueEvents extends BullQueueEvents {
  readonly #makeLookup: () => BullQueue;
  #lookup?: BullQueue;
  readonly #known = new Map<string, string | null>();
  #queued = 0;
  #order: Promise<void> = Promise.resolve();

  constructor(name: string, opts?: QueueEventsOptions, ...rest: unknown[]) {
    const library = libraryOptions(opts, 'QueueEvents');
    super(name, library as QueueEventsOptions, ...(rest as []));
    const lookup = { connection: library.connection, prefix: library.prefix } as BullQueueOptions;
    this.#makeLookup = () => new BullQueue(name, lookup, ...(rest as []));
  }

  /** BullMQ types each event's arguments; they pass through as they come. */
  #emitNow(event: string | symbol, ...args: unknown[]): boolean {
    const emit = super.emit as (event: string | symbol, ...args: unknown[]) => boolean;
    return emit.call(this, event, ...args);
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const jobId = (args[0] as { jobId?: unknown } | undefined)?.jobId;
    if (event === 'error' || (typeof jobId !== 'string' && this.#queued === 0)) {
      return this.#emitNow(event, ...args);
    }
    const metadata = typeof jobId === 'string' ? this.#metadataOf(jobId) : undefined;
    this.#queued++;
    this.#order = this.#order.then(async () => {
      const ctx = withJobEnvId(context.active(), (await metadata) ?? undefined);
      try {
        context.with(ctx, this.#emitNow, this, event, ...args);
      } catch (err) {
        this.#emitNow('error', err);
      } finally {
        this.#queued--;
      }
    });
    return this.listenerCount(event) > 0;
  }

  override async close(): Promise<void> {
    await super.close();
    await this.#order;
    await this.#lookup?.close();
  }

  /** The metadata of job `jobId`: remembered, else read (null: none, or the job is gone). */
  #metadataOf(jobId: string): Promise<string | null> | string | null {
    const known = this.#known.get(jobId);
    if (known !== undefined) return known;
    this.#lookup ??= this.#makeLookup();
    return this.#lookup
      .getJob(jobId)
      .then(
        (job) => (job ? (metadataOf(job) ?? null) : null),
        () => null,
      )
      .then((metadata) => {
        if (this.#known.size >= KNOWN_JOBS) {
          this.#known.delete(this.#known.keys().next().value as string);
        }
        this.#known.set(jobId, metadata);
        return metadata;
      });
  }
}

// The build renames classes that share a name with an import: they keep BullMQ's names.
for (const [cls, name] of [
  [Queue, 'Queue'],
  [Worker, 'Worker'],
  [FlowProducer, 'FlowProducer'],
  [QueueEvents, 'QueueEvents'],
] as const) {
  Object.defineProperty(cls, 'name', { value: name });
}

/**
 * `processor`, run in each job's environment (what {@link Worker} does with a function). For a
 * sandboxed processor file, whose process needs an OpenTelemetry context manager of its own:
 *
 * @example
 * // processor.mjs, given to the Worker as a path
 * export default inJobEnvironment(async (job) => db.query('UPDATE ...'));
 */
export function inJobEnvironment<D, R, N extends string>(
  processor: Processor<D, R, N>,
): Processor<D, R, N> {
  const inJob: Processor<D, R, N> = (job, token, signal) =>
    context.with(
      withJobEnvId(context.active(), metadataOf(job)),
      processor,
      undefined,
      job,
      token,
      signal,
    );
  // BullMQ gives a processor that declares a third parameter an AbortSignal per job, with its
  // cost: this one declares what the user's does.
  Object.defineProperty(inJob, 'length', { value: processor.length });
  return inJob;
}

/**
 * A job's propagation metadata: `opts.telemetry.metadata`, or as BullMQ 5 hands a sandboxed
 * processor its job, in the stored form (`opts.tm`).
 */
function metadataOf(job: Job<unknown, unknown, string>): string | undefined {
  const opts = job.opts as { telemetry?: { metadata?: string }; tm?: string };
  return opts.telemetry?.metadata ?? opts.tm;
}
