// picop-proxy and PiCoP on HAProxy (picop-haproxy's configuration, the Lua action) against plain
// HAProxy (TCP mode, nbthread 1), a naive pipe() relay, a direct connection and, with
// PICOP_GO_PROXY naming its binary, the authors' Go proxy, side by side in one run on 127.0.0.1,
// each proxy a separate process. Tune with BENCH_* variables.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { connect } from '@picop/net-wrap';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { fmtOps, fmtRatio, table } from './lib.mjs';
import {
  closedLoop,
  cpuMsOf,
  env,
  rssMbOf,
  startGoProxy,
  startHaproxy,
  startNaiveRelay,
  startPicopHaproxy,
  startPicopProxy,
  stopAll,
} from './load.mjs';
import { freePort } from './ports.mjs';

const REDIS = { host: '127.0.0.1', port: env('REDIS_PORT', 6379) };
const MYSQL = {
  host: '127.0.0.1',
  port: env('MYSQL_PORT', 3306),
  user: 'root',
  password: '',
  database: 'test',
};
const N_REDIS = env('BENCH_REDIS_OPS', 100_000);
const N_MYSQL = env('BENCH_MYSQL_OPS', 30_000);
const N_CONNECT = env('BENCH_CONNECT_OPS', 5_000);
const INFLIGHT = env('BENCH_INFLIGHT', 32);
const ROUNDS = env('BENCH_ROUNDS', 2);

const haproxyPorts = { redis: await freePort(), mysql: await freePort() };
const haproxy = await startHaproxy([
  { name: 'redis', port: haproxyPorts.redis, target: `${REDIS.host}:${REDIS.port}` },
  { name: 'mysql', port: haproxyPorts.mysql, target: `${MYSQL.host}:${MYSQL.port}` },
]);
const picop = {
  redis: await startPicopProxy([
    '--default',
    `${REDIS.host}:${REDIS.port}`,
    '--header',
    'optional',
  ]),
  mysql: await startPicopProxy(['--default', `${MYSQL.host}:${MYSQL.port}`]),
};

// PiCoP on HAProxy: the same settings through picop-haproxy and the Lua action.
const picopHaproxy = {
  redis: await startPicopHaproxy(await freePort(), [
    '--default',
    `${REDIS.host}:${REDIS.port}`,
    '--header',
    'optional',
  ]),
  mysql: await startPicopHaproxy(await freePort(), ['--default', `${MYSQL.host}:${MYSQL.port}`]),
};

// The authors' Go proxy: it takes no client without a header (the plain loads skip it).
const goProxy = {
  redis: await startGoProxy(await freePort(), `${REDIS.host}:${REDIS.port}`),
  mysql: await startGoProxy(await freePort(), `${MYSQL.host}:${MYSQL.port}`),
};

const naive = {
  redis: await startNaiveRelay(REDIS.port),
  mysql: await startNaiveRelay(MYSQL.port),
};

/**
 * A proxy process per server (`pair`: { redis, mysql } of { port, pid }) as a target, or none
 * where it did not start (not installed, not given).
 */
const proxied = (name, pair, options) =>
  pair.redis && pair.mysql
    ? [
        {
          name,
          redis: pair.redis.port,
          mysql: pair.mysql.port,
          pids: [pair.redis.pid, pair.mysql.pid],
          ...options,
        },
      ]
    : [];

const targets = [
  { name: 'direct', redis: REDIS.port, mysql: MYSQL.port, header: false },
  ...(haproxy
    ? [
        {
          name: 'haproxy',
          redis: haproxyPorts.redis,
          mysql: haproxyPorts.mysql,
          header: false,
          pids: [haproxy.pid],
        },
      ]
    : []),
  ...proxied('naive pipe()', naive, { header: false }),
  ...proxied('picop-proxy', picop, { header: true }),
  ...proxied('haproxy + picop.lua', picopHaproxy, { header: true }),
  // The Go reference reads its own dialect (a 1-byte length) only, and no client without one.
  ...proxied('Go proxy (authors)', goProxy, {
    header: true,
    dialect: 'picop-go',
    headerOnly: true,
  }),
];

/** The proxy processes' CPU milliseconds so far (one of them works per case). */
const proxyCpuMs = (target) =>
  target.pids?.reduce((sum, pid) => sum + (cpuMsOf(pid) ?? Number.NaN), 0);

function redisBenchmark(port) {
  const out = spawnSync(
    'redis-benchmark',
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-t',
      'get',
      '-c',
      String(INFLIGHT),
      '-n',
      String(N_REDIS * 2),
      '--csv',
    ],
    { encoding: 'utf8' },
  );
  const row = out.stdout
    .trim()
    .split('\n')
    .find((l) => l.startsWith('"GET"'));
  if (!row) throw new Error(`redis-benchmark failed: ${out.stderr}`);
  const cells = row.split(',').map((c) => Number(c.replaceAll('"', '')));
  return { opsPerSec: cells[1], p50: cells[4], p99: cells[6], ops: N_REDIS * 2 };
}

async function ioredisGets(port) {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  await client.set('picop:bench', 'value');
  const result = await closedLoop(N_REDIS, INFLIGHT, () => client.get('picop:bench'));
  client.disconnect();
  return result;
}

/** A connection to `port` that sends the header first, in the target's dialect. */
const withHeader = (target, port) =>
  connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'bench' }, dialect: target.dialect });

async function mysqlSelects(target) {
  const pool = mysql.createPool({
    ...MYSQL,
    connectionLimit: 10,
    ...(target.header
      ? {
          stream: () => withHeader(target, target.mysql),
        }
      : { host: '127.0.0.1', port: target.mysql }),
  });
  await pool.query('SELECT 1');
  const result = await closedLoop(N_MYSQL, INFLIGHT, () => pool.query('SELECT 1'));
  await pool.end();
  return result;
}

/**
 * GET on `connections` persistent connections, one in flight on each: raw RESP over sockets that
 * send the header where the target reads one (all proxies alike: the Go proxy takes no other).
 */
async function respGets(target, connections) {
  const GET = Buffer.from('*2\r\n$3\r\nGET\r\n$11\r\npicop:bench\r\n');
  const REPLY = '$5\r\nvalue\r\n'.length;
  const open = () =>
    new Promise((resolve, reject) => {
      const socket = target.header
        ? withHeader(target, target.redis)
        : net.connect({ host: '127.0.0.1', port: target.redis, noDelay: true });
      socket.on('error', reject);
      let got = 0;
      let done;
      const get = () =>
        new Promise((r) => {
          done = r;
          socket.write(GET);
        });
      socket.write('*3\r\n$3\r\nSET\r\n$11\r\npicop:bench\r\n$5\r\nvalue\r\n');
      // +OK, then a GET's reply at a time.
      socket.once('data', () => {
        socket.on('data', (d) => {
          got += d.length;
          if (got >= REPLY) {
            got -= REPLY;
            done();
          }
        });
        resolve({ socket, get });
      });
    });
  const clients = await Promise.all(Array.from({ length: connections }, open));
  const idle = [...clients];
  const result = await closedLoop(N_REDIS, connections, async () => {
    const client = idle.pop();
    await client.get();
    idle.push(client);
  });
  for (const { socket } of clients) socket.destroy();
  return result;
}

function pingOnNewConnection(target) {
  return new Promise((resolve, reject) => {
    const socket = target.header
      ? withHeader(target, target.redis)
      : net.connect({ host: '127.0.0.1', port: target.redis, noDelay: true });
    socket.on('error', reject);
    socket.write('PING\r\n');
    socket.once('data', () => {
      socket.destroy();
      resolve();
    });
  });
}

// Loads of clients that send no header (picop-proxy and PiCoP on HAProxy take them in optional
// mode) skip the Go proxy.
const PLAIN = true;
const CASES = [
  ['redis-benchmark GET -c 32', (t) => redisBenchmark(t.redis), PLAIN],
  ['ioredis GET, 32 in flight', (t) => ioredisGets(t.redis), PLAIN],
  ['GET on 32 connections (header)', (t) => respGets(t, 32)],
  ['GET on 1 connection (header)', (t) => respGets(t, 1)],
  ['mysql2 pool of 10, SELECT 1, 32 in flight', (t) => mysqlSelects(t)],
  [
    'new connection per op (PING)',
    (t) => closedLoop(N_CONNECT, INFLIGHT, () => pingOnNewConnection(t)),
  ],
];

const only = process.env.BENCH_CASES; // e.g. BENCH_CASES=ioredis,mysql
const rows = [];
for (const [label, run, plain] of CASES.filter(
  ([l]) => !only || only.split(',').some((w) => l.includes(w)),
)) {
  const best = new Map();
  const through = targets.filter((t) => !(plain && t.headerOnly));
  // Rounds interleave the targets, so drift in the machine's speed hits each of them alike.
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of through) {
      const cpuBefore = proxyCpuMs(target);
      const r = await run(target);
      r.proxyCpuUsPerOp = ((proxyCpuMs(target) - cpuBefore) * 1000) / r.ops;
      r.rssMb = target.pids?.reduce((sum, pid) => sum + rssMbOf(pid), 0);
      const prev = best.get(target.name);
      if (!prev || r.opsPerSec > prev.opsPerSec) best.set(target.name, r);
    }
  }
  const direct = best.get('direct');
  const ha = best.get('haproxy');
  const go = best.get('Go proxy (authors)');
  for (const target of through) {
    const r = best.get(target.name);
    rows.push([
      target === through[0] ? label : '',
      target.name,
      fmtOps(r.opsPerSec),
      r.p50.toFixed(3),
      r.p99.toFixed(3),
      fmtRatio(r.opsPerSec / direct.opsPerSec),
      ha ? fmtRatio(r.opsPerSec / ha.opsPerSec) : 'n/a',
      Number.isNaN(r.proxyCpuUsPerOp) ? '' : r.proxyCpuUsPerOp.toFixed(1),
      ha && target.pids ? fmtRatio(r.proxyCpuUsPerOp / ha.proxyCpuUsPerOp) : '',
      r.rssMb === undefined ? '' : r.rssMb.toFixed(0),
      go && target.pids
        ? `${fmtRatio(r.opsPerSec / go.opsPerSec)} (CPU ${fmtRatio(r.proxyCpuUsPerOp / go.proxyCpuUsPerOp)})`
        : '',
    ]);
  }
}
stopAll();
table(
  `proxy (best of ${ROUNDS} interleaved rounds; ${haproxy ? 'HAProxy nbthread 1' : 'HAProxy not installed: apt-get install haproxy'}; latencies in ms)`,
  [
    'load',
    'through',
    'ops/s',
    'p50',
    'p99',
    'vs direct',
    'vs HAProxy',
    'proxy CPU µs/op',
    'CPU vs HAProxy',
    'RSS MB (its processes)',
    goProxy.redis ? 'vs Go proxy (CPU)' : 'vs Go proxy: set PICOP_GO_PROXY',
  ],
  rows,
);
process.exit(0);
