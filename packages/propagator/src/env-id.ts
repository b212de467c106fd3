import { type Context, context, propagation } from '@opentelemetry/api';
import { envIdProblem, PicopError } from '@picop/codec';
import { DEFAULT_BAGGAGE_KEY } from './constants.js';

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
