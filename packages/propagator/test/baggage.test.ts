// The gateway and EnvIdPropagator read baggage through baggageValues / withoutBaggageKey; a
// service reads it through OpenTelemetry's W3CBaggagePropagator. Checked against the real one on
// literal attacks and on generated headers: whatever Env-Id OpenTelemetry would read, ours sees,
// and once ours strips it, OpenTelemetry reads none.
import { defaultTextMapGetter, propagation, ROOT_CONTEXT } from '@opentelemetry/api';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { baggageValues, EnvIdPropagator, getEnvId, withoutBaggageKey } from '@picop/propagator';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const otelEnvId = (baggage: string | string[]) =>
  propagation
    .getBaggage(new W3CBaggagePropagator().extract(ROOT_CONTEXT, { baggage }, defaultTextMapGetter))
    ?.getEntry('env-id')?.value;

const ATTACKS = [
  'env-id=feature-1',
  'env%2Did=feature-1',
  'env%2did=feature-1',
  '%65nv-id=feature-1',
  '%65%6E%76%2D%69%64=feature-1',
  ' env-id = feature-1 ',
  'a=1,env%2Did=feature-1;prop=x,b=2',
  'env-id=feature%2D1;p',
  'a=1,,env-id=feature-1',
];

describe('baggageValues()', () => {
  it.each(ATTACKS)('sees the Env-Id OpenTelemetry reads in %j', (baggage) => {
    expect(otelEnvId(baggage)).toBe('feature-1');
    expect(baggageValues(baggage, 'env-id')).toEqual(['feature-1']);
  });

  it('sees every member, across several headers, where OpenTelemetry keeps the last', () => {
    const headers = ['env-id=feature-1', 'a=b, env%2Did=feature-2'];
    expect(otelEnvId(headers)).toBe('feature-2');
    expect(baggageValues(headers, 'env-id')).toEqual(['feature-1', 'feature-2']);
  });

  it('skips what OpenTelemetry skips: no key, no value, a bad escape, another key', () => {
    for (const baggage of ['=feature-1', 'env-id=', 'env-id=%ZZ', 'env%ZZid=x', 'Env-Id=x']) {
      expect(otelEnvId(baggage)).toBeUndefined();
      expect(baggageValues(baggage, 'env-id')).toEqual([]);
    }
  });
});

describe('withoutBaggageKey()', () => {
  it('removes every encoding of the key and keeps the other members', () => {
    expect(withoutBaggageKey('a=1,env%2Did=feature-1;prop=x, %65nv-id=f2,b=2', 'env-id')).toBe(
      'a=1,b=2',
    );
    expect(withoutBaggageKey(['env-id=x', 'env-id=%ZZ'], 'env-id')).toBeUndefined();
  });
});

describe('against W3CBaggagePropagator on generated headers', () => {
  // Headers made of the characters that matter: separators, escapes, spaces and the key's own.
  const piece = fc.constantFrom(
    'env-id',
    'env%2Did',
    '%65nv-id',
    'Env-Id',
    'env',
    '-id',
    '=',
    ',',
    ';',
    ' ',
    '%',
    '%2D',
    '%ZZ',
    'feature-1',
    'f2',
    'a',
    '1',
    '\t',
  );
  const header = fc.array(piece, { maxLength: 24 }).map((parts) => parts.join(''));

  it('every Env-Id OpenTelemetry reads is one of ours', () => {
    fc.assert(
      fc.property(fc.array(header, { minLength: 1, maxLength: 3 }), (headers) => {
        const read = otelEnvId(headers);
        if (read !== undefined) expect(baggageValues(headers, 'env-id')).toContain(read);
      }),
      { numRuns: 5000 },
    );
  });

  it('once stripped, OpenTelemetry reads no Env-Id', () => {
    fc.assert(
      fc.property(fc.array(header, { minLength: 1, maxLength: 3 }), (headers) => {
        const kept = withoutBaggageKey(headers, 'env-id');
        expect(kept === undefined ? undefined : otelEnvId(kept)).toBeUndefined();
      }),
      { numRuns: 5000 },
    );
  });
});

describe('EnvIdPropagator.extract()', () => {
  const composite = new CompositePropagator({
    propagators: [
      new W3CTraceContextPropagator(),
      new W3CBaggagePropagator(),
      new EnvIdPropagator(),
    ],
  });
  const extract = (carrier: Record<string, string>) =>
    getEnvId(composite.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter));

  it('drops an Env-Id the carrier names twice, differently', () => {
    expect(extract({ baggage: 'env-id=feature-1,env%2Did=feature-2' })).toBeUndefined();
    expect(extract({ 'env-id': 'feature-1', baggage: 'env-id=feature-2' })).toBeUndefined();
  });

  it('keeps one named twice alike', () => {
    expect(extract({ 'env-id': 'feature-1', baggage: 'env%2Did=feature-1' })).toBe('feature-1');
  });

  it('does not trim a field: a value with spaces is no Env-Id (as for the proxy)', () => {
    expect(extract({ 'env-id': ' feature-1' })).toBeUndefined();
  });
});
