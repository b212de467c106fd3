import {
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  propagation,
  ROOT_CONTEXT,
  type TextMapGetter,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { EnvIdPropagator, getEnvId, headerForContext, setEnvId } from '@picop/propagator';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SIGNATURE_HEX } from '../../../test/support/header.js';
import { captureDiag } from './diag-capture.js';

const composite = () =>
  new CompositePropagator({
    propagators: [
      new W3CTraceContextPropagator(),
      new W3CBaggagePropagator(),
      new EnvIdPropagator(),
    ],
  });

const baggageOf = (ctx = context.active()) =>
  Object.fromEntries(
    (propagation.getBaggage(ctx)?.getAllEntries() ?? []).map(([k, v]) => [k, v.value]),
  );

let diagLog: ReturnType<typeof captureDiag>;
beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});
beforeEach(() => {
  diagLog = captureDiag();
});
afterEach(() => diagLog.restore());

describe('EnvIdPropagator', () => {
  describe('.extract()', () => {
    it('reads Env-Id from lower-cased HTTP headers into baggage', () => {
      const ctx = new EnvIdPropagator().extract(
        ROOT_CONTEXT,
        { 'env-id': 'feature-1' },
        defaultTextMapGetter,
      );
      expect(getEnvId(ctx)).toBe('feature-1');
      expect(baggageOf(ctx)).toEqual({ 'env-id': 'feature-1' });
    });

    it('finds the field in any casing', () => {
      const p = new EnvIdPropagator();
      for (const carrier of [{ 'Env-Id': 'a' }, { 'ENV-ID': 'a' }, { 'env-id': 'a' }]) {
        expect(getEnvId(p.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter))).toBe('a');
      }
    });

    it('merges into existing baggage, keeping every other entry', () => {
      const start = propagation.setBaggage(
        ROOT_CONTEXT,
        propagation.createBaggage({ user: { value: 'u1' }, 'env-id': { value: 'old' } }),
      );
      const ctx = new EnvIdPropagator().extract(
        start,
        { 'env-id': 'feature-1' },
        defaultTextMapGetter,
      );
      expect(baggageOf(ctx)).toEqual({ user: 'u1', 'env-id': 'feature-1' });
    });

    it('uses the baggageKey and fieldName options', () => {
      const p = new EnvIdPropagator({ baggageKey: 'tenant', fieldName: 'X-Tenant' });
      const ctx = p.extract(ROOT_CONTEXT, { 'x-tenant': 't1' }, defaultTextMapGetter);
      expect(baggageOf(ctx)).toEqual({ tenant: 't1' });
      expect(p.fields()).toEqual(['x-tenant']);
    });

    it('takes a single-element array and drops conflicting repeated fields', () => {
      const p = new EnvIdPropagator();
      expect(getEnvId(p.extract(ROOT_CONTEXT, { 'env-id': ['a'] }, defaultTextMapGetter))).toBe(
        'a',
      );
      expect(
        getEnvId(p.extract(ROOT_CONTEXT, { 'env-id': ['a', 'b'] }, defaultTextMapGetter)),
      ).toBeUndefined();
      expect(diagLog.warnings.join()).toContain('2 Env-Id fields');
    });

    const INVALID: Array<[string, string]> = [
      ['CRLF', 'a\r\nX-Evil:1'],
      ['LF', 'a\nb'],
      ['NUL', 'a\0'],
      ['non-ASCII', 'fé'],
      ['space inside', 'a b'],
      ['too long', 'x'.repeat(129)],
      ['empty', ''],
    ];
    for (const [what, value] of INVALID) {
      it(`drops an Env-Id with ${what}, with a diag.warn`, () => {
        const ctx = new EnvIdPropagator().extract(
          ROOT_CONTEXT,
          { 'env-id': value },
          defaultTextMapGetter,
        );
        expect(getEnvId(ctx)).toBeUndefined();
        expect(propagation.getBaggage(ctx)).toBeUndefined();
        expect(diagLog.warnings.some((w) => w.includes('dropped Env-Id'))).toBe(true);
      });
    }

    it('honours maxLength', () => {
      const p = new EnvIdPropagator({ maxLength: 4 });
      expect(getEnvId(p.extract(ROOT_CONTEXT, { 'env-id': 'abcd' }, defaultTextMapGetter))).toBe(
        'abcd',
      );
      expect(
        getEnvId(p.extract(ROOT_CONTEXT, { 'env-id': 'abcde' }, defaultTextMapGetter)),
      ).toBeUndefined();
    });

    it('applies the accept() allow-list to the field and to W3C baggage', () => {
      const known = new Set(['main', 'feature-1']);
      const p = new CompositePropagator({
        propagators: [
          new W3CBaggagePropagator(),
          new EnvIdPropagator({ accept: (id) => known.has(id) }),
        ],
      });
      const ok = p.extract(ROOT_CONTEXT, { 'env-id': 'feature-1' }, defaultTextMapGetter);
      expect(getEnvId(ok)).toBe('feature-1');
      const refused = p.extract(ROOT_CONTEXT, { 'env-id': 'attacker-1' }, defaultTextMapGetter);
      expect(getEnvId(refused)).toBeUndefined();
      const viaBaggage = p.extract(
        ROOT_CONTEXT,
        { baggage: 'env-id=attacker-2,user=u' },
        defaultTextMapGetter,
      );
      expect(baggageOf(viaBaggage)).toEqual({ user: 'u' });
      expect(diagLog.warnings.filter((w) => w.includes('refused by accept()'))).toHaveLength(2);
    });

    it('drops the Env-Id when accept() throws, reporting it with diag.error', () => {
      const p = new EnvIdPropagator({
        accept: () => {
          throw new Error('boom');
        },
      });
      expect(() => p.extract(ROOT_CONTEXT, { 'env-id': 'a' }, defaultTextMapGetter)).not.toThrow();
      expect(
        getEnvId(p.extract(ROOT_CONTEXT, { 'env-id': 'a' }, defaultTextMapGetter)),
      ).toBeUndefined();
      expect(diagLog.errors[0]).toContain('accept() hook threw');
    });

    it('never throws on garbage carriers or getters', () => {
      const p = new EnvIdPropagator();
      const throwing: TextMapGetter = {
        keys: () => {
          throw new Error('keys');
        },
        get: () => {
          throw new Error('get');
        },
      };
      const carriers: unknown[] = [
        null,
        undefined,
        42,
        'str',
        [],
        { 'env-id': 5 },
        { 'env-id': {} },
        { 'env-id': [] },
      ];
      for (const carrier of carriers) {
        expect(() => p.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter)).not.toThrow();
      }
      expect(p.extract(ROOT_CONTEXT, {}, throwing)).toBe(ROOT_CONTEXT);
    });
  });

  describe('.inject()', () => {
    it('writes Env-Id from baggage', () => {
      const carrier: Record<string, string> = {};
      new EnvIdPropagator().inject(
        setEnvId(ROOT_CONTEXT, 'feature-1'),
        carrier,
        defaultTextMapSetter,
      );
      expect(carrier).toEqual({ 'Env-Id': 'feature-1' });
    });

    it('writes nothing for a context without Env-Id', () => {
      const carrier: Record<string, string> = {};
      new EnvIdPropagator().inject(ROOT_CONTEXT, carrier, defaultTextMapSetter);
      expect(carrier).toEqual({});
    });

    it('refuses an invalid value that reached baggage by other means', () => {
      const ctx = propagation.setBaggage(
        ROOT_CONTEXT,
        propagation.createBaggage({ 'env-id': { value: 'a\r\nX-Evil:1' } }),
      );
      const carrier: Record<string, string> = {};
      new EnvIdPropagator().inject(ctx, carrier, defaultTextMapSetter);
      expect(carrier).toEqual({});
      expect(diagLog.warnings[0]).toContain('EnvIdPropagator.inject: dropped Env-Id');
    });

    it('does not throw when the carrier or setter does', () => {
      const setter = {
        set: () => {
          throw new Error('frozen');
        },
      };
      expect(() =>
        new EnvIdPropagator().inject(setEnvId(ROOT_CONTEXT, 'a'), {}, setter),
      ).not.toThrow();
    });
  });

  describe('in a CompositePropagator with the W3C propagators', () => {
    it('keeps the Env-Id and all baggage entries in the order [TraceContext, Baggage, EnvId]', () => {
      const ctx = composite().extract(
        ROOT_CONTEXT,
        { 'env-id': 'feature-1', baggage: 'user=u1,team=t' },
        defaultTextMapGetter,
      );
      expect(baggageOf(ctx)).toEqual({ user: 'u1', team: 't', 'env-id': 'feature-1' });
      const out: Record<string, string> = {};
      composite().inject(ctx, out, defaultTextMapSetter);
      expect(out['Env-Id']).toBe('feature-1');
      expect(out.baggage?.split(',').sort()).toEqual(['env-id=feature-1', 'team=t', 'user=u1']);
    });

    it('loses the Env-Id in the other order, because W3CBaggagePropagator replaces baggage', () => {
      const wrongOrder = new CompositePropagator({
        propagators: [new EnvIdPropagator(), new W3CBaggagePropagator()],
      });
      const ctx = wrongOrder.extract(
        ROOT_CONTEXT,
        { 'env-id': 'feature-1', baggage: 'user=u1' },
        defaultTextMapGetter,
      );
      expect(getEnvId(ctx)).toBeUndefined();
    });

    it('takes the Env-Id from W3C baggage alone', () => {
      const ctx = composite().extract(
        ROOT_CONTEXT,
        { baggage: 'env-id=feature-2' },
        defaultTextMapGetter,
      );
      expect(getEnvId(ctx)).toBe('feature-2');
    });

    it('never lets a percent-encoded baggage value add a PiCoP field', () => {
      const ctx = composite().extract(
        ROOT_CONTEXT,
        { baggage: 'env-id=a%0D%0AX-Evil%3A1,user=u' },
        defaultTextMapGetter,
      );
      expect(getEnvId(ctx)).toBeUndefined();
      expect(baggageOf(ctx)).toEqual({ user: 'u' });
      const out: Record<string, string> = {};
      composite().inject(ctx, out, defaultTextMapSetter);
      expect(out['Env-Id']).toBeUndefined();
      // The connection header for that context is the empty one: no X-Evil field.
      expect(headerForContext(ctx).toString('hex')).toBe(`${SIGNATURE_HEX}010000`);
      expect(diagLog.warnings.join()).toContain('dropped Env-Id');
    });
  });
});
