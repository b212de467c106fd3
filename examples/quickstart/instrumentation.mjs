// Loaded first: node --import ./instrumentation.mjs service.mjs
import { register } from 'node:module';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { createDispatcher } from '@picop/fetch';
import { EnvIdPropagator } from '@picop/propagator';
import { setGlobalDispatcher } from 'undici';

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
new NodeSDK({
  textMapPropagator: new CompositePropagator({
    propagators: [
      new W3CTraceContextPropagator(),
      new W3CBaggagePropagator(),
      new EnvIdPropagator(),
    ],
  }),
}).start();
// Every fetch() this service makes to the cluster's PiCoP services carries the Env-Id of the
// request it serves; calls to any other host (the internet) go out plain.
setGlobalDispatcher(createDispatcher({ picop: { origins: ['*.svc.cluster.local'] } }));
