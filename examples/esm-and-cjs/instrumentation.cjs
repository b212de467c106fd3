// OpenTelemetry for a CommonJS service: node --require ./instrumentation.cjs server.cjs
const {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} = require('@opentelemetry/core');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { EnvIdPropagator } = require('@picop/propagator');

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
