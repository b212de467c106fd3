// The paper's latency measurement (section V-B): nginx (one worker) answering a 1 kB HTTP/1.1
// POST, at a fixed 1000 requests/s for BENCH_SECONDS (10) over 1, 8, 32 and 64 keep-alive
// connections; p90 and p99 direct, through picop-proxy (each connection sends the PiCoP header of
// Env-Id main) and through HAProxy (TCP mode, one thread). Open loop: a request's latency counts
// from when the generator queued it (when it fell due, give or take the generator's own timer),
// so a stall delays the requests queued behind it too (no coordinated omission).
import net from 'node:net';
import { connect } from '@picop/net-wrap';
import { table } from './lib.mjs';
import { env, startHaproxy, startNginx, startPicopProxy, stopAll } from './load.mjs';
import { freePort } from './ports.mjs';

const RATE = env('BENCH_RATE', 1000);
const SECONDS = env('BENCH_SECONDS', 10);
// Each target first takes this many seconds of the same load, not measured: a Node proxy starts
// in V8's interpreter and is compiled while it runs (HAProxy and nginx are compiled ahead).
const WARMUP_SECONDS = env('BENCH_WARMUP_SECONDS', 2);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '1,8,32,64').split(',').map(Number);
const BODY = Buffer.alloc(1024, 'x');

const nginxPort = await freePort();
const nginx = await startNginx(
  [`server { listen 127.0.0.1:${nginxPort}; location / { return 200 "ok"; } }`],
  [nginxPort],
);
if (nginx === undefined) {
  console.log('\nlatency: skipped (no nginx: apt-get install nginx)');
  process.exit(0);
}
const haPort = await freePort();
const haproxy = await startHaproxy([
  { name: 'nginx', port: haPort, target: `127.0.0.1:${nginxPort}` },
]);
const picop = await startPicopProxy([
  '--default',
  `127.0.0.1:${nginxPort}`,
  '--route',
  `main=127.0.0.1:${nginxPort}`,
]);

const targets = [
  { name: 'direct', port: nginxPort, header: false },
  ...(haproxy ? [{ name: 'haproxy', port: haPort, header: false }] : []),
  { name: 'picop-proxy', port: picop.port, header: true },
];

const REQUEST = Buffer.concat([
  Buffer.from(
    `POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\nContent-Length: ${BODY.length}\r\n\r\n`,
  ),
  BODY,
]);

/** One keep-alive connection: send() resolves when its response is complete. */
async function openConnection(target) {
  const socket = target.header
    ? connect({ host: '127.0.0.1', port: target.port, fields: { 'Env-Id': 'main' } })
    : net.connect({ host: '127.0.0.1', port: target.port, noDelay: true });
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let pending;
  let buffer = '';
  socket.setEncoding('latin1');
  socket.on('data', (d) => {
    buffer += d;
    const end = buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const length = Number(/content-length: (\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
    if (buffer.length < end + 4 + length) return;
    buffer = buffer.slice(end + 4 + length);
    const done = pending;
    pending = undefined;
    done();
  });
  return {
    send: () =>
      new Promise((resolve) => {
        pending = resolve;
        socket.write(REQUEST);
      }),
    close: () => socket.destroy(),
  };
}

/** RATE requests/s spread over `n` connections for SECONDS; latencies from each request's due time. */
async function openLoop(target, n, seconds = SECONDS) {
  const connections = await Promise.all(Array.from({ length: n }, () => openConnection(target)));
  const total = RATE * seconds;
  const interval = 1000 / RATE;
  const latencies = [];
  const queues = connections.map(() => []);
  const busy = connections.map(() => false);
  const started = performance.now();
  const drain = async (i) => {
    if (busy[i]) return;
    busy[i] = true;
    while (queues[i].length > 0) {
      const due = queues[i].shift();
      await connections[i].send();
      latencies.push(performance.now() - due);
    }
    busy[i] = false;
  };
  await new Promise((resolve) => {
    let sent = 0;
    const tick = () => {
      const now = performance.now();
      while (sent < total && started + sent * interval <= now) {
        const i = sent % n;
        queues[i].push(now);
        sent++;
        drain(i);
      }
      if (sent < total)
        setTimeout(tick, Math.max(0, started + sent * interval - performance.now()));
      else resolve();
    };
    tick();
  });
  while (latencies.length < total) await new Promise((r) => setImmediate(r));
  for (const c of connections) c.close();
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.floor(latencies.length * q)];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

const signed = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
const rows = [];
for (const n of CONNECTIONS) {
  const results = {};
  for (const target of targets) {
    if (WARMUP_SECONDS > 0) await openLoop(target, n, WARMUP_SECONDS);
    results[target.name] = await openLoop(target, n);
  }
  for (const target of targets) {
    const r = results[target.name];
    rows.push([
      target === targets[0] ? String(n) : '',
      target.name,
      r.p50.toFixed(3),
      r.p90.toFixed(3),
      r.p99.toFixed(3),
      target.name === 'direct' ? '' : signed(r.p90 - results.direct.p90),
      target.name === 'direct' ? '' : signed(r.p99 - results.direct.p99),
    ]);
  }
}
stopAll();
table(
  `latency (1 kB POST to nginx, ${RATE} req/s for ${SECONDS} s, open loop; ms)`,
  ['connections', 'through', 'p50', 'p90', 'p99', 'p90 added', 'p99 added'],
  rows,
);
process.exit(0);
