// Load helpers shared by the macro benchmarks: closed-loop concurrency with latency percentiles,
// and starting the picop-proxy command and HAProxy as separate processes.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.mjs';

export const env = (name, fallback) => Number(process.env[name] ?? fallback);

/**
 * Runs `op` `total` times with `concurrency` in flight; returns ops/s, p50 / p99 in ms, and this
 * process's CPU microseconds per operation.
 */
export async function closedLoop(total, concurrency, op) {
  const latencies = new Float64Array(total);
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const t = performance.now();
        await op(i);
        latencies[i] = performance.now() - t;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  latencies.sort();
  return {
    opsPerSec: total / seconds,
    // This process's CPU time per operation: the client-side cost, whatever else the machine does.
    cpuUsPerOp: (used.user + used.system) / total,
    ops: total,
    p50: latencies[Math.floor(total * 0.5)],
    p99: latencies[Math.floor(total * 0.99)],
  };
}

const TICKS_PER_SECOND =
  Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/**
 * CPU milliseconds (user + system) process `pid` has used so far, from /proc; undefined where
 * there is no /proc. Steadier than throughput on a shared machine: it is the proxy's own cost.
 */
export function cpuMsOf(pid) {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Process `pid` and its children (nginx's workers), from /proc. */
function treeOf(pid) {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return [pid, ...children.split(' ').filter(Boolean).map(Number)];
  } catch {
    return [pid];
  }
}

/** Resident memory of process `pid` and its children in MB, from /proc. */
export function rssMbOf(pid) {
  let kb = 0;
  for (const p of treeOf(pid)) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {}
  }
  return kb / 1024;
}

const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
export function stopAll() {
  for (const c of children) c.kill('SIGTERM');
  children.clear();
}

/** Starts the picop-proxy command with `args`; resolves with its port and process id. */
export function startPicopProxy(args) {
  const cli = fileURLToPath(new URL('../packages/proxy/dist/cli.js', import.meta.url));
  return startNode(cli, ['--listen', '127.0.0.1:0', '--log-level', 'error', ...args], undefined, [
    // As docker/Dockerfile runs it (its README, "Memory").
    '--max-semi-space-size=2',
  ]);
}

/**
 * Starts the authors' Go proxy (picop-rd/proxy) from the binary `PICOP_GO_PROXY` names, on `port`
 * with `target` as its default route (where every Env-Id of the benchmarks goes), header
 * propagation off, Go code on one thread (GOMAXPROCS=1) as the others; resolves with its pid, or
 * undefined when `PICOP_GO_PROXY` is unset. This repository carries neither the binary nor a
 * recipe for it: build it from the authors' source (packages/proxy/README.md, "Against the Go proxy").
 */
export async function startGoProxy(port, target) {
  const bin = process.env.PICOP_GO_PROXY;
  if (!bin) return undefined;
  const child = spawn(
    bin,
    [
      '-proxy-port',
      String(port),
      '-admin-port',
      String(await freePort()),
      '-default-addr',
      target,
      '-propagate=false',
      '-id',
      'bench',
      // It keeps asking a controller to activate it: none here.
      '-controller-url',
      'http://127.0.0.1:1',
    ],
    { stdio: 'ignore', env: { ...process.env, GOMAXPROCS: '1' } },
  );
  children.add(child);
  await waitForPort(port, child);
  return { port, pid: child.pid };
}

/** Starts bench/naive-relay.mjs (`pipe()` both ways) in front of `targetPort`. */
export function startNaiveRelay(targetPort) {
  return startNode(fileURLToPath(new URL('naive-relay.mjs', import.meta.url)), [
    String(targetPort),
  ]);
}

/** Runs a Node script that prints "listening on <host>:<port>"; resolves with port and pid. */
function startNode(script, args, listening = /listening on .*:(\d+)/, nodeFlags = []) {
  const child = spawn(process.execPath, [...nodeFlags, script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = listening.exec(out);
      if (m) resolve({ port: Number(m[1]), pid: child.pid });
    });
    child.on('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

/** Starts HAProxy in TCP mode with one thread, one listener per `{ name, port, target }`. */
export async function startHaproxy(listeners) {
  if (spawnSync('haproxy', ['-v']).error) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'picop-bench-haproxy-'));
  const cfg = [
    'global',
    '  nbthread 1',
    '  maxconn 4000',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    ...listeners.flatMap(({ name, port, target }) => [
      `listen ${name}`,
      `  bind 127.0.0.1:${port}`,
      `  server ${name} ${target}`,
    ]),
  ].join('\n');
  writeFileSync(join(dir, 'haproxy.cfg'), `${cfg}\n`);
  const child = spawn('haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.add(child);
  for (const { port } of listeners) await waitForPort(port, child);
  return child;
}

/**
 * Starts HAProxy on the configuration `picop-haproxy` prints for picop-proxy's `args` (PiCoP on
 * HAProxy), with one thread as `startHaproxy`; resolves with its port and pid, or undefined
 * without HAProxy.
 */
export async function startPicopHaproxy(port, args) {
  if (spawnSync('haproxy', ['-v']).error) return undefined;
  const cli = fileURLToPath(new URL('../packages/proxy/dist/haproxy-cli.js', import.meta.url));
  const generated = spawnSync(
    process.execPath,
    [cli, '--listen', `127.0.0.1:${port}`, '--max-connections', '4000', ...args],
    { encoding: 'utf8' },
  );
  if (generated.status !== 0) throw new Error(`picop-haproxy: ${generated.stderr}`);
  const dir = mkdtempSync(join(tmpdir(), 'picop-bench-haproxy-lua-'));
  writeFileSync(
    join(dir, 'haproxy.cfg'),
    generated.stdout.replace('global\n', 'global\n  nbthread 1\n'),
  );
  const child = spawn('haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.add(child);
  await waitForPort(port, child);
  return { port, pid: child.pid };
}

/** Resolves once `port` on 127.0.0.1 accepts connections; throws if `child` exits first. */
export async function waitForPort(port, child) {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null)
      throw new Error(`${child.spawnfile} exited with ${child.exitCode}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s.destroy() || true));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

/**
 * Runs every case `rounds` times, interleaved (the order reversed every other round, so drift in
 * the machine's speed hits each case alike); returns Map name -> the result with the most ops/s.
 * The first `warmup` rounds are not counted (V8 has not yet compiled the code a case shares with
 * none of the others: a wrapper's own).
 */
export async function bestOf(cases, rounds, warmup = 0) {
  const best = new Map();
  for (let round = -warmup; round < rounds; round++) {
    const order = Object.entries(cases);
    if (round % 2 === 1) order.reverse();
    for (const [name, run] of order) {
      const r = await run();
      if (round < 0) continue;
      if (!best.has(name) || r.opsPerSec > best.get(name).opsPerSec) best.set(name, r);
    }
  }
  return best;
}

/**
 * Every load run with every client, `rounds` interleaved rounds (see {@link bestOf}): `loads` maps
 * a name to `(open, options) => result`, `clients` a name to `[open, options]`. Returns table rows
 * (load, client, then {@link resultRow}'s cells), each against the first client of its load.
 */
export async function loadsByClient(loads, clients, rounds, warmup = 0) {
  const cases = {};
  for (const [load, fn] of Object.entries(loads)) {
    for (const [client, [open, options]] of Object.entries(clients))
      cases[`${load}|${client}`] = () => fn(open, options);
  }
  const best = await bestOf(cases, rounds, warmup);
  const [first] = Object.keys(clients);
  const rows = [];
  for (const load of Object.keys(loads)) {
    const baseline = best.get(`${load}|${first}`);
    for (const client of Object.keys(clients)) {
      const [, ...cells] = resultRow(client, best.get(`${load}|${client}`), baseline);
      rows.push([client === first ? load : '', client, ...cells]);
    }
  }
  return rows;
}

/** A table row of a result against a baseline: ops/s, p50, p99, CPU, and both ratios. */
export function resultRow(label, r, baseline) {
  return [
    label,
    Math.round(r.opsPerSec).toLocaleString('en-US'),
    r.p50.toFixed(3),
    r.p99.toFixed(3),
    r.cpuUsPerOp.toFixed(1),
    `${(r.opsPerSec / baseline.opsPerSec).toFixed(2)}x`,
    `${(r.cpuUsPerOp / baseline.cpuUsPerOp).toFixed(2)}x`,
  ];
}

/** Starts the picop-gateway command with `args`; resolves with its port and process id. */
export function startPicopGateway(args) {
  const cli = fileURLToPath(new URL('../packages/gateway/dist/cli.js', import.meta.url));
  // At info: the start-up line carries the port; nothing is logged per request.
  return startNode(cli, ['--listen', '127.0.0.1:0', ...args], /"listen":"[^"]*:(\d+)"/);
}

/**
 * Starts nginx with one worker and `blocks` in its `http { }` (`server { }`, `upstream { }`);
 * resolves with its process once every port in `ports` answers. Undefined without nginx.
 */
export async function startNginx(blocks, ports) {
  if (spawnSync('nginx', ['-v']).error) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'picop-bench-nginx-'));
  const cfg = [
    'worker_processes 1;',
    'user root;',
    'pid nginx.pid;',
    'error_log stderr error;',
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;`,
    '  keepalive_requests 1000000;',
    ...blocks.map((b) => `  ${b}`),
    '}',
  ].join('\n');
  writeFileSync(join(dir, 'nginx.conf'), `${cfg}\n`);
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.add(child);
  for (const port of ports) await waitForPort(port, child);
  return child;
}

/**
 * Runs wrk against `url` with `connections` (one thread) for `seconds`; returns requests/s, p50 and
 * p99 in ms, and the CPU ms each of `pids` used meanwhile.
 */
export function wrk(url, { connections, seconds, headers = {}, pids = [] }) {
  const before = pids.map(cpuMsOfTree);
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  const out = spawnSync('wrk', [...args, url], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr}`);
  const text = out.stdout;
  const ms = (label) => {
    const m = new RegExp(`${label}\\s+([\\d.]+)(us|ms|s)`).exec(text);
    if (!m) return Number.NaN;
    return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]];
  };
  const requests = Number(/(\d+) requests in/.exec(text)?.[1]);
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  if (errors) throw new Error(`wrk: ${errors[1]} error responses from ${url}`);
  return {
    opsPerSec: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]),
    p50: ms('50%'),
    p99: ms('99%'),
    ops: requests,
    cpuMs: pids.map((pid, i) => cpuMsOfTree(pid) - before[i]),
  };
}

/** CPU milliseconds of process `pid` and its children (nginx's workers), from /proc. */
function cpuMsOfTree(pid) {
  return treeOf(pid).reduce((sum, p) => sum + (cpuMsOf(p) ?? 0), 0);
}
