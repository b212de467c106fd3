import {
  type Context,
  context,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
} from '@opentelemetry/api';
import { type Dialect, encodeHeader, PicopFields } from '@picop/codec';
import { MAX_ENV_ID_LENGTH } from './constants.js';
import { EnvIdPropagator } from './EnvIdPropagator.js';

/** Reads a {@link PicopFields} as an OpenTelemetry carrier (names case-insensitive). */
export const picopFieldsGetter: TextMapGetter<PicopFields> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key),
};

/** Writes OpenTelemetry carrier fields into a {@link PicopFields}. */
export const picopFieldsSetter: TextMapSetter<PicopFields> = {
  set: (carrier, key, value) => {
    carrier.set(key, value);
  },
};

/**
 * The propagator connection headers use unless told otherwise: Env-Id alone. Per-request data
 * (trace ids) in a connection header would make one connection pool per request.
 */
export const defaultConnectionPropagator: TextMapPropagator = new EnvIdPropagator({
  // Every valid Env-Id: what the edge accepted goes on the connection, whatever its maxLength.
  maxLength: MAX_ENV_ID_LENGTH,
});

/** Options of {@link headerForContext}. */
export interface HeaderForContextOptions {
  /** @default `EnvIdPropagator` alone */
  propagator?: TextMapPropagator;
  /** @default 'spec' */
  dialect?: Dialect;
}

/** The fields `propagator` injects for `ctx`. */
export function fieldsForContext(
  ctx: Context = context.active(),
  propagator: TextMapPropagator = defaultConnectionPropagator,
): PicopFields {
  const fields = new PicopFields();
  propagator.inject(ctx, fields, picopFieldsSetter);
  return fields;
}

/**
 * The encoded PiCoP header for a context, to write first on a new connection. A context without
 * Env-Id gives an empty header (the proxy's default route), in either dialect.
 *
 * @example
 * socket.write(headerForContext()); // the active context's Env-Id
 */
export function headerForContext(
  ctx: Context = context.active(),
  options: HeaderForContextOptions = {},
): Buffer {
  const fields = fieldsForContext(ctx, options.propagator);
  return encodeHeader(fields, { dialect: options.dialect ?? 'spec' });
}

/**
 * The context carried by the fields of a received header, on top of `ctx`.
 *
 * @example
 * const ctx = contextFromFields(decodeHeader(chunk).fields);
 * context.with(ctx, handle);
 */
export function contextFromFields(
  fields: PicopFields,
  ctx: Context = context.active(),
  propagator: TextMapPropagator = defaultConnectionPropagator,
): Context {
  return propagator.extract(ctx, fields, picopFieldsGetter);
}
