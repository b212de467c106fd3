import {
  type Context,
  context,
  ROOT_CONTEXT,
  type TextMapGetter,
  type TextMapPropagator,
} from '@opentelemetry/api';
import { defaultConnectionPropagator } from '@picop/propagator';
import type { ConsumeMessage, GetMessage, Message, Options } from 'amqplib';

type Headers = Record<string, unknown>;

// Message headers as a carrier: names case-insensitive, Buffer values read as text.
const headersGetter: TextMapGetter<Headers | undefined> = {
  keys: (headers) => Object.keys(headers ?? {}),
  get: (headers, key) => {
    if (headers === undefined) return undefined;
    const name = Object.keys(headers).find((k) => k.toLowerCase() === key.toLowerCase());
    const value = name === undefined ? undefined : headers[name];
    return Buffer.isBuffer(value)
      ? value.toString('latin1')
      : typeof value === 'string'
        ? value
        : undefined;
  },
};

/**
 * The context a message carries (its Env-Id, from its headers), on top of `base`. Use it for
 * messages from `channel.get()`; consumers already run in it.
 *
 * @example
 * const msg = await channel.get('orders');
 * if (msg) await context.with(contextOfMessage(msg), () => handle(msg));
 */
export function contextOfMessage(
  message: Message | ConsumeMessage | GetMessage,
  base: Context = ROOT_CONTEXT,
  propagator: TextMapPropagator = defaultConnectionPropagator,
): Context {
  return propagator.extract(base, message.properties.headers as Headers | undefined, headersGetter);
}

/**
 * `options` with the context's fields (Env-Id) added to its headers, unless a header of that name
 * is already there. The caller's object is not changed.
 */
export function withContextHeaders(
  options: Options.Publish | undefined,
  ctx: Context = context.active(),
  propagator: TextMapPropagator = defaultConnectionPropagator,
): Options.Publish | undefined {
  let fields: Record<string, string> | undefined;
  propagator.inject(ctx, undefined, {
    set: (_carrier, key, value) => {
      fields ??= {};
      fields[key] = value;
    },
  });
  if (fields === undefined) return options;
  const existing = options?.headers as Headers | undefined;
  if (existing === undefined) return { ...options, headers: fields };
  const headers: Headers = { ...existing };
  const present = new Set(Object.keys(existing).map((k) => k.toLowerCase()));
  for (const [name, value] of Object.entries(fields))
    if (!present.has(name.toLowerCase())) headers[name] = value;
  return { ...options, headers };
}
