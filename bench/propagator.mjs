// EnvIdPropagator against W3CBaggagePropagator on the same context and carrier shape, one run.
import {
  defaultTextMapGetter,
  defaultTextMapSetter,
  propagation,
  ROOT_CONTEXT,
} from '@opentelemetry/api';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import { EnvIdPropagator, headerForContext } from '@picop/propagator';
import { do_not_optimize } from 'mitata';
import { fmtOps, fmtRatio, measure, table } from './lib.mjs';

const envId = new EnvIdPropagator();
const w3c = new W3CBaggagePropagator();
const ctx = propagation.setBaggage(
  ROOT_CONTEXT,
  propagation.createBaggage({ 'env-id': { value: 'feature-1' } }),
);
const envIdCarrier = { 'env-id': 'feature-1' };
const baggageCarrier = { baggage: 'env-id=feature-1' };

const ns = await measure({
  'inject EnvId': () => {
    const c = {};
    envId.inject(ctx, c, defaultTextMapSetter);
    return do_not_optimize(c);
  },
  'inject W3C': () => {
    const c = {};
    w3c.inject(ctx, c, defaultTextMapSetter);
    return do_not_optimize(c);
  },
  'extract EnvId': () =>
    do_not_optimize(envId.extract(ROOT_CONTEXT, envIdCarrier, defaultTextMapGetter)),
  'extract W3C': () =>
    do_not_optimize(w3c.extract(ROOT_CONTEXT, baggageCarrier, defaultTextMapGetter)),
  headerForContext: () => do_not_optimize(headerForContext(ctx)),
});

const rows = ['inject', 'extract'].map((op) => {
  const mine = ns.get(`${op} EnvId`);
  const theirs = ns.get(`${op} W3C`);
  return [op, fmtOps(1e9 / mine), fmtOps(1e9 / theirs), fmtRatio(theirs / mine)];
});
rows.push(['headerForContext (inject + encode)', fmtOps(1e9 / ns.get('headerForContext')), '', '']);
table(
  'propagator (one entry, env-id=feature-1; ratio = EnvIdPropagator ops/s / W3CBaggagePropagator ops/s)',
  ['operation', 'EnvIdPropagator ops/s', 'W3CBaggage ops/s', 'ratio'],
  rows,
);
