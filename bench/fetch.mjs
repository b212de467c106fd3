// @picop/fetch against plain undici fetch, both through the same picop-proxy (optional mode, so the
// plain client needs no header) in front of nginx, 32 in flight; and a new connection per request.
// One run, rounds interleaved. Upstream: nginx (one worker) answering "ok".
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { createDispatcher } from '@picop/fetch';
import { setEnvId } from '@picop/propagator';
import { Agent, fetch } from 'undici';
import { fmtRatio, table } from './lib.mjs';
import {
  bestOf,
  closedLoop,
  env,
  resultRow,
  startNginx,
  startPicopProxy,
  stopAll,
} from './load.mjs';
import { freePort } from './ports.mjs';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const N = env('BENCH_FETCH_OPS', 30_000);
const N_NEW = env('BENCH_FETCH_NEW_OPS', 3_000);
const INFLIGHT = env('BENCH_INFLIGHT', 32);
const ROUNDS = env('BENCH_ROUNDS', 3);
const ENVS = ['feature-1', 'feature-2', 'feature-3', 'feature-4'];

const nginxPort = await freePort();
const nginx = await startNginx(
  [`server { listen 127.0.0.1:${nginxPort}; location / { return 200 "ok"; } }`],
  [nginxPort],
);
if (nginx === undefined) {
  console.log('\nfetch: skipped (no nginx: apt-get install nginx)');
  process.exit(0);
}
const upstream = `127.0.0.1:${nginxPort}`;
const { port } = await startPicopProxy([
  '--default',
  upstream,
  '--header',
  'optional',
  ...ENVS.flatMap((e) => ['--route', `${e}=${upstream}`]),
]);
const url = `http://127.0.0.1:${port}/`;
// A service sets the context once per request; each fetch stands for one request's call.
const CONTEXTS = ENVS.map((e) => setEnvId(context.active(), e));

async function run(dispatcher, contextOf, n = N) {
  const r = await closedLoop(n, INFLIGHT, (i) =>
    context.with(contextOf(i), async () => (await fetch(url, { dispatcher })).text()),
  );
  await dispatcher.close();
  return r;
}

// The proxy is the one PiCoP origin; the last case calls it as a host that is not one.
const picop = { origins: [`127.0.0.1:${port}`] };
const CASES = {
  'plain undici fetch (no header)': () => run(new Agent(), () => context.active()),
  '@picop/fetch, 1 environment': () => run(createDispatcher({ picop }), () => CONTEXTS[0]),
  '@picop/fetch, 4 environments interleaved': () =>
    run(createDispatcher({ picop }), (i) => CONTEXTS[i % 4]),
  'new connection per request': () =>
    run(createDispatcher({ pipelining: 0, picop }), () => CONTEXTS[0], N_NEW),
  '@picop/fetch, to a host not in origins (plain)': () =>
    run(createDispatcher({ picop: { origins: 'other.invalid' } }), () => CONTEXTS[0]),
};

const best = await bestOf(CASES, ROUNDS);
stopAll();
const plain = best.get('plain undici fetch (no header)');
const perConn = best.get('new connection per request').opsPerSec;
table(
  `fetch (GET, ${INFLIGHT} in flight, through picop-proxy to nginx; best of ${ROUNDS} interleaved rounds; latencies in ms)`,
  [
    'client',
    'req/s',
    'p50',
    'p99',
    'client CPU us/op',
    'vs plain undici',
    'CPU vs plain',
    'vs new conn/req',
  ],
  Object.keys(CASES).map((name) => [
    ...resultRow(name, best.get(name), plain),
    fmtRatio(best.get(name).opsPerSec / perConn),
  ]),
);
process.exit(0);
