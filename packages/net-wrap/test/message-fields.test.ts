import { ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import { CompositePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { withContextFields } from '@picop/net-wrap/internal';
import { setEnvId } from '@picop/propagator';
import { defaultConnectionPropagator } from '@picop/propagator/internal';
import { describe, expect, it } from 'vitest';

const feature1 = setEnvId(ROOT_CONTEXT, 'feature-1');

describe('withContextFields (a message’s fields plus its context’s)', () => {
  it('adds the Env-Id in a new object each time, whatever the caller does with the last one', () => {
    const first = withContextFields(undefined, feature1, defaultConnectionPropagator);
    expect(first).toEqual({ 'Env-Id': 'feature-1' });
    (first as Record<string, unknown>)['Env-Id'] = 'changed';
    const second = withContextFields(undefined, feature1, defaultConnectionPropagator);
    expect(second).toEqual({ 'Env-Id': 'feature-1' });
    expect(second).not.toBe(first);
    expect(Object.isFrozen(second)).toBe(false);
  });

  it('each context its own fields', () => {
    const feature2 = setEnvId(feature1, 'feature-2');
    expect(withContextFields(undefined, feature2, defaultConnectionPropagator)).toEqual({
      'Env-Id': 'feature-2',
    });
    expect(withContextFields(undefined, feature1, defaultConnectionPropagator)).toEqual({
      'Env-Id': 'feature-1',
    });
  });

  it('keeps the caller’s fields and a value the caller set (names compared case-insensitively)', () => {
    const own = { 'env-id': 'mine', other: 1 };
    expect(withContextFields(own, feature1, defaultConnectionPropagator)).toBe(own);
    const other = { other: 1 };
    const merged = withContextFields(other, feature1, defaultConnectionPropagator);
    expect(merged).toEqual({ other: 1, 'Env-Id': 'feature-1' });
    expect(other).toEqual({ other: 1 });
  });

  it('without an Env-Id, the fields themselves', () => {
    const own = { other: 1 };
    expect(withContextFields(own, ROOT_CONTEXT, defaultConnectionPropagator)).toBe(own);
    expect(withContextFields(undefined, ROOT_CONTEXT, defaultConnectionPropagator)).toBeUndefined();
  });

  it('every field of a custom propagator (trace context too), per context', () => {
    const propagator = new CompositePropagator({
      propagators: [defaultConnectionPropagator, new W3CTraceContextPropagator()],
    });
    const span = (traceId: string) =>
      trace.setSpanContext(feature1, {
        traceId,
        spanId: '0000000000000001',
        traceFlags: TraceFlags.SAMPLED,
      });
    const a = withContextFields(undefined, span('1'.repeat(32)), propagator);
    const b = withContextFields(undefined, span('2'.repeat(32)), propagator);
    expect(a).toEqual({
      'Env-Id': 'feature-1',
      traceparent: `00-${'1'.repeat(32)}-0000000000000001-01`,
    });
    expect(b?.traceparent).toBe(`00-${'2'.repeat(32)}-0000000000000001-01`);
  });
});
