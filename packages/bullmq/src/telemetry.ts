import {
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  propagation,
  ROOT_CONTEXT,
  type TextMapPropagator,
} from '@opentelemetry/api';
import { DEFAULT_BAGGAGE_KEY, getEnvId, setEnvId } from '@picop/propagator';
import { defaultConnectionPropagator } from '@picop/propagator/internal';
import type { ContextManager, Span, Telemetry, Tracer } from 'bullmq';

/** A job's propagation metadata: BullMQ keeps it in the job's `opts.telemetry.metadata`. */
type Carrier = Record<string, string>;

function parse(metadata: string | undefined): Carrier {
  if (metadata === undefined) return {};
  try {
    const value: unknown = JSON.parse(metadata);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Carrier)
      : {};
  } catch {
    return {};
  }
}

/** `ctx` without an Env-Id: what a job that carries none runs in. */
function withoutEnvId(ctx: Context): Context {
  const baggage = propagation.getBaggage(ctx);
  if (baggage?.getEntry(DEFAULT_BAGGAGE_KEY) === undefined) return ctx;
  return propagation.setBaggage(ctx, baggage.removeEntry(DEFAULT_BAGGAGE_KEY));
}

const noSpan: Span<Context> = {
  setSpanOnContext: (ctx) => ctx,
  setAttribute: () => {},
  setAttributes: () => {},
  addEvent: () => {},
  recordException: () => {},
  end: () => {},
};
const noTracer: Tracer<Context> = { startSpan: () => noSpan };

/**
 * BullMQ telemetry that carries the Env-Id in every job (`opts.telemetry.metadata`, a JSON
 * carrier), and runs the processor in the job's environment: the Env-Id of the context that
 * added the job, none for a job added without one (the baseline), whatever context the worker
 * runs in. `inner` (bullmq-otel's `BullMQOtel`, say) keeps its spans and its own fields in the same
 * carrier. Our `Queue`, `Worker` and `FlowProducer` set it; give it yourself to BullMQ's own
 * classes, `picopTelemetry(new BullMQOtel('app'))`.
 */
export function picopTelemetry(
  inner?: Telemetry<Context>,
  propagator: TextMapPropagator = defaultConnectionPropagator,
): Telemetry<Context> {
  if (inner !== undefined && wrapped.has(inner)) return inner;
  const own = inner?.contextManager;
  const contextManager: ContextManager<Context> = {
    with: (ctx, fn) => (own ? own.with(ctx, fn) : context.with(ctx, fn)),
    active: () => own?.active() ?? context.active(),
    root: () => own?.root?.() ?? ROOT_CONTEXT,
    getMetadata(ctx) {
      const carrier = own ? parse(own.getMetadata(ctx)) : {};
      propagator.inject(ctx, carrier, defaultTextMapSetter);
      return JSON.stringify(carrier);
    },
    fromMetadata(active, metadata) {
      return withJobEnvId(own ? own.fromMetadata(active, metadata) : active, metadata, propagator);
    },
  };
  const telemetry = { ...inner, tracer: inner?.tracer ?? noTracer, contextManager };
  wrapped.add(telemetry);
  return telemetry;
}

// picopTelemetry's own results: wrapped once, however often they are passed on.
const wrapped = new WeakSet<object>();

// Contexts are immutable and a request's is reused for each of its jobs: its metadata is made once.
const metadataOf = new WeakMap<Context, string | null>();

/**
 * The propagation metadata of a job added in `ctx` without any other telemetry: the Env-Id alone,
 * as JSON; undefined without one.
 */
export function contextMetadata(ctx: Context = context.active()): string | undefined {
  let metadata = metadataOf.get(ctx);
  if (metadata === undefined) {
    const carrier: Carrier = {};
    defaultConnectionPropagator.inject(ctx, carrier, defaultTextMapSetter);
    metadata = Object.keys(carrier).length === 0 ? null : JSON.stringify(carrier);
    metadataOf.set(ctx, metadata);
  }
  return metadata ?? undefined;
}

/**
 * `ctx` with the Env-Id of a job's metadata (`job.opts.telemetry?.metadata`) in place of its own:
 * none when the job carries none (added without an Env-Id, or by a producer without this
 * package), so such a job runs in the baseline whatever context its worker runs in.
 */
export function withJobEnvId(
  ctx: Context,
  metadata: string | undefined,
  propagator: TextMapPropagator = defaultConnectionPropagator,
): Context {
  const base = withoutEnvId(ctx);
  if (propagator !== defaultConnectionPropagator) {
    return propagator.extract(base, parse(metadata), defaultTextMapGetter);
  }
  if (metadata === undefined) return base;
  let envId = envIdOf.get(metadata);
  if (envId === undefined) {
    envId =
      getEnvId(propagator.extract(ROOT_CONTEXT, parse(metadata), defaultTextMapGetter)) ?? null;
    if (envIdOf.size >= 1024) envIdOf.clear();
    envIdOf.set(metadata, envId);
  }
  return envId === null ? base : setEnvId(base, envId);
}

// The jobs of one environment carry the same metadata: its Env-Id is read once (a bounded cache).
const envIdOf = new Map<string, string | null>();
