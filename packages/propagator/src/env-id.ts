import { type Context, context, propagation } from '@opentelemetry/api';
import { PicopError } from '@picop/codec';
import { DEFAULT_BAGGAGE_KEY, MAX_ENV_ID_LENGTH } from './constants.js';

/**
 * Why `value` is not a valid Env-Id, or `undefined` when it is: 1 to {@link MAX_ENV_ID_LENGTH}
 * visible ASCII characters (0x21-0x7E). CR, LF, NUL, spaces and non-ASCII characters are refused,
 * so an Env-Id can never add a field to a PiCoP header or a line to a log. This one rule is shared
 * by `getEnvId`, `setEnvId`, the wrappers' pools and the proxy's routes, so an Env-Id that any
 * `EnvIdPropagator` accepted is never read as "none" further on.
 */
export function envIdProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `is a ${typeof value}, not a string`;
  if (value.length === 0) return 'is empty';
  if (value.length > MAX_ENV_ID_LENGTH) {
    return `is ${value.length} characters, over the ${MAX_ENV_ID_LENGTH} an Env-Id may have`;
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) {
      return `has character ${c.toString(16).padStart(2, '0')} (hex) at index ${i}; only visible ASCII is allowed`;
    }
  }
  return undefined;
}

/**
 * The Env-Id of a context (its baggage entry `env-id`), or `undefined` when it has none or the
 * entry is not a valid Env-Id.
 *
 * @example
 * app.get('/', (req, res) => res.send(getEnvId() ?? 'baseline'));
 */
export function getEnvId(
  ctx: Context = context.active(),
  baggageKey = DEFAULT_BAGGAGE_KEY,
): string | undefined {
  const value = propagation.getBaggage(ctx)?.getEntry(baggageKey)?.value;
  return value !== undefined && envIdProblem(value) === undefined ? value : undefined;
}

/**
 * A copy of `ctx` whose baggage holds `envId` (other entries are kept).
 * Throws `PicopError` `ERR_PICOP_INVALID_ARG` for an invalid Env-Id.
 */
export function setEnvId(ctx: Context, envId: string, baggageKey = DEFAULT_BAGGAGE_KEY): Context {
  const problem = envIdProblem(envId);
  if (problem !== undefined) {
    throw new PicopError('ERR_PICOP_INVALID_ARG', `Env-Id ${JSON.stringify(envId)} ${problem}`);
  }
  const baggage = propagation.getBaggage(ctx) ?? propagation.createBaggage();
  return propagation.setBaggage(ctx, baggage.setEntry(baggageKey, { value: envId }));
}

/**
 * Runs `fn` with `envId` as the active context's Env-Id: for jobs, scripts and tests that have no
 * incoming request. Everything `fn` calls, synchronously or not, is routed for that environment.
 * Needs an OpenTelemetry context manager (the NodeSDK registers one); without it, it throws
 * `ERR_PICOP_INVALID_STATE` instead of silently running in no environment.
 *
 * @example
 * await withEnvId('feature-1', () => pool.query('SELECT 1'));
 */
export function withEnvId<A extends unknown[], R>(
  envId: string,
  fn: (...args: A) => R,
  ...args: A
): R {
  const ctx = setEnvId(context.active(), envId);
  return context.with(ctx, () => {
    if (context.active() !== ctx) {
      throw new PicopError(
        'ERR_PICOP_INVALID_STATE',
        'withEnvId() needs an OpenTelemetry context manager: start the NodeSDK, or register one with ' +
          'context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())',
      );
    }
    return fn(...args);
  });
}
