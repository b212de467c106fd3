// The OpenTelemetry set-up of every demo service, as a user writes it: loaded first.
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { createDispatcher } from '@picop/fetch';
import { EnvIdPropagator } from '@picop/propagator';
import { setGlobalDispatcher } from 'undici';

export const sdk = new NodeSDK({
  serviceName: process.env.SERVICE_NAME,
  textMapPropagator: new CompositePropagator({
    propagators: [
      new W3CTraceContextPropagator(),
      new W3CBaggagePropagator(),
      new EnvIdPropagator(),
    ],
  }),
  instrumentations: [new HttpInstrumentation()],
  // The demo exports nothing: no collector runs here.
  spanProcessors: [],
  metricReaders: [],
  logRecordProcessors: [],
});
sdk.start();

// Every fetch() of the service to B (its one PiCoP origin: B's picop-proxy) opens its connections
// with the request's Env-Id; any other host would get plain connections. In the demo's proxyless
// mode (ROUTES_B), calls to B go straight to the environment's B, header included (B reads it),
// and to B[main] for the others.
const { B_URL, ROUTES_B } = process.env;
setGlobalDispatcher(
  createDispatcher({
    picop: {
      origins: B_URL ? [new URL(B_URL).host] : [],
      ...(B_URL &&
        ROUTES_B && { routes: { [B_URL]: { table: JSON.parse(ROUTES_B), header: true } } }),
    },
  }),
);
