// The `guarded` test project: every test file of the idiom matrices runs under a NodeSDK with the
// instrumentations of the wrapped libraries and a PicopGuard in throw mode. A wrapper's work that
// the guard took for unrouted would fail its test; none may be recorded either.
import { CompositePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { AmqplibInstrumentation } from '@opentelemetry/instrumentation-amqplib';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { MySQL2Instrumentation } from '@opentelemetry/instrumentation-mysql2';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { RedisInstrumentation } from '@opentelemetry/instrumentation-redis';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { EnvIdPropagator, PicopGuard } from '@picop/propagator';
import { afterAll, expect } from 'vitest';

const guard = new PicopGuard({ mode: 'throw', checkModules: false });
const sdk = new NodeSDK({
  textMapPropagator: new CompositePropagator({
    propagators: [new W3CTraceContextPropagator(), new EnvIdPropagator()],
  }),
  spanProcessors: [guard],
  // Spans without a parent too: the tests' work runs in withEnvId, outside any request span.
  instrumentations: [
    new IORedisInstrumentation({ requireParentSpan: false }),
    new PgInstrumentation({ requireParentSpan: false }),
    new RedisInstrumentation({ requireParentSpan: false }),
    new MySQL2Instrumentation(),
    new AmqplibInstrumentation(),
    new UndiciInstrumentation(),
    new HttpInstrumentation(),
  ],
  metricReaders: [],
  logRecordProcessors: [],
});
sdk.start();

afterAll(async () => {
  expect(guard.unrouted).toEqual([]);
  await sdk.shutdown();
});
