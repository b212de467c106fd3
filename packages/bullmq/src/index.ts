import type { Context } from '@opentelemetry/api';
import { context } from '@opentelemetry/api';
import { PicopError } from '@picop/codec';
import {
  FlowProducer as BullFlowProducer,
  Queue as BullQueue,
  Worker as BullWorker,
  type FlowJob,
  type FlowOpts,
  type Job,
  type JobNode,
  type Processor,
  type QueueBaseOptions,
  type QueueOptions,
  type Telemetry,
  type WorkerOptions,
} from 'bullmq';
import { picopTelemetry, withJobEnvId } from './telemetry.js';

export * from 'bullmq';
export { picopTelemetry, withJobEnvId } from './telemetry.js';

const LABEL = '@picop/bullmq';

/**
 * `opts` with {@link picopTelemetry} around the user's telemetry, after checking the connection:
 * the queue is shared by every environment and lives in the baseline's Redis, so a `@picop/*`
 * client (which would put each environment's jobs in its own Redis) is refused.
 */
function withPicop<O extends QueueBaseOptions>(opts: O | undefined, what: string): O {
  const connection = opts?.connection as { pools?: { byEnvId?: unknown } } | undefined;
  if (typeof connection?.pools?.byEnvId === 'function') {
    throw new PicopError(
      'ERR_PICOP_UNSUPPORTED',
      `${LABEL}: ${what} takes a plain ioredis connection (or its options) to the baseline's Redis, not a @picop/* client: one queue serves every environment, each job carrying its own Env-Id; a @picop/redis client would keep each environment's jobs in its own Redis, unseen by the others' workers`,
    );
  }
  return {
    ...(opts as O),
    telemetry: picopTelemetry(opts?.telemetry as Telemetry<Context> | undefined),
  };
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
  /** BullMQ's arguments; what follows `opts` (a connection class, a backend) is passed on. */
  constructor(name: string, opts?: QueueOptions, ...rest: unknown[]) {
    super(name, withPicop(opts, 'Queue'), ...(rest as []));
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
      name,
      typeof processor === 'function' ? inJobEnvironment(processor) : processor,
      withPicop(opts, 'Worker'),
      ...(rest as []),
    );
  }
}

/** BullMQ's `FlowProducer`: every job of a flow carries the Env-Id of the context that adds it. */
export class FlowProducer extends BullFlowProducer {
  constructor(opts?: QueueBaseOptions, ...rest: unknown[]) {
    super(withPicop(opts, 'FlowProducer'), ...(rest as []));
  }

  override add(flow: FlowJob, opts?: FlowOpts): Promise<JobNode> {
    return super.add(withNodeOpts(flow), opts);
  }

  override addBulk(flows: FlowJob[]): Promise<JobNode[]> {
    return super.addBulk(flows.map(withNodeOpts));
  }
}

// BullMQ puts the context's metadata only in flow nodes that have `opts` (5.22 to 6.7 at least):
// without, a child would run in the baseline.
function withNodeOpts(node: FlowJob): FlowJob {
  return { ...node, opts: node.opts ?? {}, children: node.children?.map(withNodeOpts) };
}

// The build renames classes that share a name with an import: they keep BullMQ's names.
for (const [cls, name] of [
  [Queue, 'Queue'],
  [Worker, 'Worker'],
  [FlowProducer, 'FlowProducer'],
] as const) {
  Object.defineProperty(cls, 'name', { value: name });
}

function inJobEnvironment<D, R, N extends string>(
  processor: Processor<D, R, N>,
): Processor<D, R, N> {
  return (job: Job<D, R, N>, token?: string, signal?: AbortSignal) =>
    context.with(
      withJobEnvId(context.active(), job.opts.telemetry?.metadata),
      processor,
      undefined,
      job,
      token,
      signal,
    );
}
