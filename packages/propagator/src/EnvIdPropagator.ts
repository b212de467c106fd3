import {
  type Context,
  diag,
  propagation,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
} from '@opentelemetry/api';
import { envIdProblem, PicopError } from '@picop/codec';
import { baggageValues } from './baggage.js';
import {
  DEFAULT_BAGGAGE_KEY,
  DEFAULT_FIELD_NAME,
  DEFAULT_MAX_ENV_ID_LENGTH,
  MAX_ENV_ID_LENGTH,
} from './constants.js';

/** Options of {@link EnvIdPropagator}. */
export interface EnvIdPropagatorOptions {
  /**
   * Baggage key the Env-Id is kept under.
   * @default 'env-id'
   */
  baggageKey?: string;
  /**
   * Carrier field that carries the Env-Id (an HTTP header or a PiCoP header field). Looked up
   * case-insensitively.
   * @default 'Env-Id'
   */
  fieldName?: string;
  /**
   * Allow-list: return false to drop an Env-Id (an edge service honours only known environments).
   * Applies to Env-Ids that arrive in the field and in W3C baggage. A hook that throws drops it too.
   */
  accept?: (envId: string) => boolean;
  /**
   * Longest Env-Id accepted from a carrier, in characters: at most `MAX_ENV_ID_LENGTH` (4089),
   * the longest the helpers and the wrappers take.
   * @default 128
   */
  maxLength?: number;
}

/**
 * An OpenTelemetry propagator that carries the Env-Id: `extract` merges the `Env-Id` field into
 * the context's baggage (keeping every other entry), `inject` writes it back out. Invalid values
 * (CR, LF, non-ASCII, too long, refused by `accept`) are dropped with a `diag.warn`; it never throws.
 *
 * Put it after `W3CBaggagePropagator`, which replaces the baggage on extract:
 * @example
 * new NodeSDK({
 *   textMapPropagator: new CompositePropagator({
 *     propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator(), new EnvIdPropagator()],
 *   }),
 * });
 */
export class EnvIdPropagator implements TextMapPropagator {
  readonly #baggageKey: string;
  readonly #fieldName: string;
  readonly #lowerFieldName: string;
  readonly #accept: ((envId: string) => boolean) | undefined;
  readonly #maxLength: number;

  constructor(options: EnvIdPropagatorOptions = {}) {
    this.#baggageKey = options.baggageKey ?? DEFAULT_BAGGAGE_KEY;
    this.#fieldName = options.fieldName ?? DEFAULT_FIELD_NAME;
    this.#lowerFieldName = this.#fieldName.toLowerCase();
    this.#accept = options.accept;
    this.#maxLength = options.maxLength ?? DEFAULT_MAX_ENV_ID_LENGTH;
    if (
      !Number.isInteger(this.#maxLength) ||
      this.#maxLength < 1 ||
      this.#maxLength > MAX_ENV_ID_LENGTH
    ) {
      throw new PicopError(
        'ERR_PICOP_INVALID_ARG',
        `\`maxLength\` must be an integer from 1 to ${MAX_ENV_ID_LENGTH}, got ${this.#maxLength}`,
      );
    }
  }

  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    const value = propagation.getBaggage(ctx)?.getEntry(this.#baggageKey)?.value;
    if (value === undefined || !this.#usable(value, 'inject')) return;
    try {
      setter.set(carrier, this.#fieldName, value);
    } catch (err) {
      diag.warn('EnvIdPropagator: the carrier refused the Env-Id field', err);
    }
  }

  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    try {
      const baggage = propagation.getBaggage(ctx);
      const incoming = this.#read(carrier, getter);
      // A carrier that names two Env-Ids (the field and baggage, or two baggage members) names
      // none: the edge answers such a request 400, and a service never picks one of them.
      const named = new Set(this.#readBaggage(carrier, getter));
      if (incoming !== undefined) named.add(incoming);
      if (named.size > 1) {
        diag.warn(
          `EnvIdPropagator.extract: dropped the Env-Id: the carrier names ${named.size} (${[...named].map((v) => JSON.stringify(v)).join(', ')})`,
        );
        return baggage?.getEntry(this.#baggageKey) === undefined
          ? ctx
          : propagation.setBaggage(ctx, baggage.removeEntry(this.#baggageKey));
      }
      if (incoming !== undefined) {
        if (this.#usable(incoming, 'extract')) {
          return propagation.setBaggage(
            ctx,
            (baggage ?? propagation.createBaggage()).setEntry(this.#baggageKey, {
              value: incoming,
            }),
          );
        }
      }
      // An Env-Id that came in through W3C baggage gets the same checks.
      const fromBaggage = baggage?.getEntry(this.#baggageKey)?.value;
      if (
        baggage !== undefined &&
        fromBaggage !== undefined &&
        !this.#usable(fromBaggage, 'extract')
      ) {
        return propagation.setBaggage(ctx, baggage.removeEntry(this.#baggageKey));
      }
    } catch (err) {
      diag.warn('EnvIdPropagator: extract failed, context left unchanged', err);
    }
    return ctx;
  }

  fields(): string[] {
    return [this.#lowerFieldName];
  }

  #read(carrier: unknown, getter: TextMapGetter): string | undefined {
    let raw = getter.get(carrier, this.#fieldName);
    if (raw === undefined && this.#lowerFieldName !== this.#fieldName) {
      raw = getter.get(carrier, this.#lowerFieldName);
    }
    if (raw === undefined) {
      const key = getter.keys(carrier).find((k) => k.toLowerCase() === this.#lowerFieldName);
      if (key !== undefined) raw = getter.get(carrier, key);
    }
    if (Array.isArray(raw)) {
      if (raw.length > 1) {
        diag.warn(
          `EnvIdPropagator: ${raw.length} ${this.#fieldName} fields in one carrier, all dropped`,
        );
        return undefined;
      }
      raw = raw[0];
    }
    // Not trimmed: a value with spaces is not an Env-Id, for the proxy and the codec too.
    return typeof raw === 'string' ? raw : undefined;
  }

  /** The Env-Ids of the carrier's W3C `baggage` field, read as W3CBaggagePropagator reads it. */
  #readBaggage(carrier: unknown, getter: TextMapGetter): string[] {
    const raw = getter.get(carrier, 'baggage');
    return raw === undefined ? [] : baggageValues(raw, this.#baggageKey);
  }

  #usable(envId: string, where: 'inject' | 'extract'): boolean {
    const problem =
      envId.length > this.#maxLength
        ? `is ${envId.length} characters, over maxLength ${this.#maxLength}`
        : envIdProblem(envId);
    if (problem !== undefined) {
      diag.warn(`EnvIdPropagator.${where}: dropped Env-Id ${JSON.stringify(envId)}: it ${problem}`);
      return false;
    }
    if (this.#accept === undefined) return true;
    let accepted = false;
    try {
      accepted = this.#accept(envId) === true;
    } catch (err) {
      diag.error('EnvIdPropagator: the accept() hook threw; Env-Id dropped', err);
      return false;
    }
    if (!accepted)
      diag.warn(`EnvIdPropagator.${where}: Env-Id ${JSON.stringify(envId)} refused by accept()`);
    return accepted;
  }
}
