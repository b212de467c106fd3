// What the messaging wrappers (amqp, mqtt) share: a message's fields (AMQP headers, MQTT 5 user
// properties) as a carrier, and selective consumption.
import { type Context, diag, type TextMapGetter, type TextMapPropagator } from '@opentelemetry/api';

/** A message's headers or user properties: name to value. */
export type MessageFields = Record<string, unknown>;

function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  if (Array.isArray(value)) return textOf(value[0]);
  return undefined;
}

/**
 * A message's fields as a carrier: names case-insensitive, Buffer values read as Latin-1, the first
 * of a repeated field.
 */
export const messageFieldsGetter: TextMapGetter<MessageFields | undefined> = {
  keys: (fields) => Object.keys(fields ?? {}),
  get: (fields, key) => {
    if (fields === undefined) return undefined;
    const lower = key.toLowerCase();
    const name = Object.keys(fields).find((k) => k.toLowerCase() === lower);
    return name === undefined ? undefined : textOf(fields[name]);
  },
};

// Contexts are immutable and a request's is reused for each of its messages: the fields a
// propagator injects for a context are read once (as ContextPools reads a context's header once).
const injected = new WeakMap<TextMapPropagator, WeakMap<Context, Readonly<MessageFields> | null>>();

function fieldsOfContext(
  ctx: Context,
  propagator: TextMapPropagator,
): Readonly<MessageFields> | undefined {
  let byContext = injected.get(propagator);
  if (byContext === undefined) {
    byContext = new WeakMap();
    injected.set(propagator, byContext);
  }
  let fields = byContext.get(ctx);
  if (fields === undefined) {
    let out: MessageFields | undefined;
    propagator.inject(ctx, undefined, {
      set: (_carrier, key, value) => {
        out ??= {};
        out[key] = value;
      },
    });
    fields = out === undefined ? null : Object.freeze(out);
    byContext.set(ctx, fields);
  }
  return fields ?? undefined;
}

/**
 * `fields` plus the context's fields (the Env-Id) that it does not already have (names compared
 * case-insensitively): a new object, or `fields` itself when nothing is added.
 */
export function withContextFields(
  fields: MessageFields | undefined,
  ctx: Context,
  propagator: TextMapPropagator,
): MessageFields | undefined {
  const added = fieldsOfContext(ctx, propagator);
  if (added === undefined) return fields;
  if (fields === undefined) return { ...added };
  const present = new Set(Object.keys(fields).map((k) => k.toLowerCase()));
  let merged: MessageFields | undefined;
  for (const [key, value] of Object.entries(added)) {
    if (present.has(key.toLowerCase())) continue;
    merged ??= { ...fields };
    merged[key] = value;
  }
  return merged ?? fields;
}

/** Selective consumption: which messages a consumer handles. */
export interface SelectiveOptions {
  /**
   * Selective consumption: a consumer handles only the messages of its own environment (`envId` /
   * `PICOP_ENV_ID`), and a baseline consumer (no `envId`, or one equal to `baselineEnvId`) handles
   * messages without Env-Id and those of environments not in `ownConsumers`. Every other message
   * is acknowledged without calling the handler: each environment's consumers must receive their
   * own copy (their own queue or subscription), so that exactly one consumer acts.
   * @default false
   */
  selective?: boolean;
  /** Environments that run their own consumers (selective mode). A function is asked per message. */
  ownConsumers?: Iterable<string> | (() => Iterable<string>);
  /**
   * The Env-Id of the baseline deployment (selective mode).
   * @default 'main'
   */
  baselineEnvId?: string;
}

/**
 * In selective mode, whether a consumer whose own Env-Id is `ownEnvId` handles a message of a given
 * Env-Id; `undefined` (handle everything) otherwise.
 */
export function selectionOf(
  options: SelectiveOptions,
  ownEnvId: string | undefined,
  label: string,
): ((envId: string | undefined) => boolean) | undefined {
  const { selective, ownConsumers, baselineEnvId = 'main' } = options;
  if (!selective) return undefined;
  if (ownEnvId !== undefined && ownEnvId !== baselineEnvId) return (envId) => envId === ownEnvId;
  return (envId) => {
    if (envId === undefined || envId === baselineEnvId) return true;
    try {
      const list = typeof ownConsumers === 'function' ? ownConsumers() : (ownConsumers ?? []);
      for (const id of list) if (id === envId) return false;
    } catch (err) {
      diag.error(`${label}: ownConsumers() threw; the baseline handles the message`, err);
    }
    return true;
  };
}
