// OpenTelemetry for an ES module service: node --import ./instrumentation.mjs server.mjs
// ES modules are instrumented through a loader hook, registered before the app is imported;
// without it the http and ioredis instrumentations never patch, and every request runs in the
// baseline.
import { register } from 'node:module';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { EnvIdPropagator } from '@picop/propagator';

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);

new NodeSDK({
  textMapPropagator: new CompositePropagator({
    propagators: [
      new W3CTraceContextPropagator(),
      new W3CBaggagePropagator(),
      new EnvIdPropagator(),
    ],
  }),
  instrumentations: [new HttpInstrumentation()],
  spanProcessors: [],
  metricReaders: [],
  logRecordProcessors: [],
}).start();
