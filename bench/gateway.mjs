// picop-gateway against nginx as a reverse proxy (one worker, keep-alive to its upstream), both in
// front of the same upstream: picop-proxy (optional mode) before nginx answering "ok". wrk, one
// thread, at 1 and 32 connections, each request with `Env-Id: feature-1`; a run per target,
// interleaved over rounds. Also the upstream through picop-proxy alone, without either.
import { spawnSync } from 'node:child_process';
import { fmtRatio, table } from './lib.mjs';
import { env, startNginx, startPicopGateway, startPicopProxy, stopAll, wrk } from './load.mjs';
import { freePort } from './ports.mjs';

const SECONDS = env('BENCH_SECONDS', 5);
const ROUNDS = env('BENCH_ROUNDS', 3);
const CONNECTIONS = [1, 32];

const [originPort, nginxPort] = [await freePort(), await freePort()];
const origin = await startNginx(
  [`server { listen 127.0.0.1:${originPort}; location / { return 200 "ok"; } }`],
  [originPort],
);
if (origin === undefined) {
  console.log('\ngateway: skipped (no nginx: apt-get install nginx)');
  process.exit(0);
}
if (spawnSyncOk('wrk') === false) {
  console.log('\ngateway: skipped (no wrk: apt-get install wrk)');
  process.exit(0);
}
const upstream = await startPicopProxy([
  '--default',
  `127.0.0.1:${originPort}`,
  '--header',
  'optional',
  '--route',
  `feature-1=127.0.0.1:${originPort}`,
]);
const nginx = await startNginx(
  [
    `upstream picop { server 127.0.0.1:${upstream.port}; keepalive 64; }`,
    `server { listen 127.0.0.1:${nginxPort}; location / { proxy_pass http://picop; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
  ],
  [nginxPort],
);
const gateway = await startPicopGateway(['--upstream', `127.0.0.1:${upstream.port}`]);

const targets = {
  'picop-proxy alone (no edge)': { port: upstream.port, pid: undefined },
  'nginx (reverse proxy)': { port: nginxPort, pid: nginx.pid },
  'picop-gateway': { port: gateway.port, pid: gateway.pid },
};

const results = new Map();
for (let round = 0; round < ROUNDS; round++) {
  for (const connections of CONNECTIONS) {
    const order = Object.entries(targets);
    if (round % 2 === 1) order.reverse();
    for (const [name, { port, pid }] of order) {
      const r = wrk(`http://127.0.0.1:${port}/`, {
        connections,
        seconds: SECONDS,
        headers: { 'Env-Id': 'feature-1' },
        pids: pid === undefined ? [] : [pid],
      });
      const key = `${name}@${connections}`;
      if (!results.has(key)) results.set(key, []);
      results.get(key).push(r);
    }
  }
}
stopAll();

const range = (values, fmt) => {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? fmt(lo) : `${fmt(lo)}-${fmt(hi)}`;
};
for (const connections of CONNECTIONS) {
  const nginxRuns = results.get(`nginx (reverse proxy)@${connections}`);
  table(
    `edge proxy (wrk, ${connections} connection${connections > 1 ? 's' : ''}, ${SECONDS} s x ${ROUNDS} interleaved rounds; ranges over rounds; latencies in ms)`,
    ['target', 'req/s', 'vs nginx', 'p50', 'p99', 'edge CPU us/req'],
    Object.keys(targets).map((name) => {
      const runs = results.get(`${name}@${connections}`);
      const cpu = runs.map((r) => (r.cpuMs[0] * 1000) / r.ops);
      return [
        name,
        range(
          runs.map((r) => r.opsPerSec),
          (x) => Math.round(x).toLocaleString('en-US'),
        ),
        range(
          runs.map((r, i) => r.opsPerSec / nginxRuns[i].opsPerSec),
          fmtRatio,
        ),
        range(
          runs.map((r) => r.p50),
          (x) => x.toFixed(3),
        ),
        range(
          runs.map((r) => r.p99),
          (x) => x.toFixed(3),
        ),
        cpu.every(Number.isFinite) ? range(cpu, (x) => x.toFixed(1)) : '',
      ];
    }),
  );
}
process.exit(0);

function spawnSyncOk(command) {
  return !spawnSync(command, ['--version']).error;
}
