import { type Context, context, ROOT_CONTEXT, type TextMapPropagator } from '@opentelemetry/api';
import {
  type MessageFields,
  messageFieldsGetter,
  withContextFields,
} from '@picop/net-wrap/internal';
import { defaultConnectionPropagator } from '@picop/propagator/internal';
import type { ConsumeMessage, GetMessage, Message, Options } from 'amqplib';

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
  return propagator.extract(
    base,
    message.properties.headers as MessageFields | undefined,
    messageFieldsGetter,
  );
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
  const headers = options?.headers as MessageFields | undefined;
  const merged = withContextFields(headers, ctx, propagator);
  return merged === headers ? options : { ...options, headers: merged };
}
