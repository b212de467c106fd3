// Real server instances for integration tests: the machine's default ones, and extra ones a test
// starts on free ports and stops afterwards.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_HOST = process.env.REDIS_HOST ?? '127.0.0.1';
export const REDIS_PORT = Number(process.env.REDIS_PORT ?? 6379);
export const MYSQL_HOST = process.env.MYSQL_HOST ?? '127.0.0.1';
export const MYSQL_PORT = Number(process.env.MYSQL_PORT ?? 3306);
export const MYSQL_USER = process.env.MYSQL_USER ?? 'root';
export const MYSQL_PASSWORD = process.env.MYSQL_PASSWORD ?? '';
export const MYSQL_DATABASE = process.env.MYSQL_DATABASE ?? 'test';
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Starts `server` on a free port of `host` (127.0.0.1 by default); resolves with the port. */
export async function listen(server: net.Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as net.AddressInfo).port;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once `port` accepts connections, or rejects after `timeoutMs`. */
export async function waitForPort(
  port: number,
  timeoutMs = 30_000,
  child?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child?.exitCode != null)
      throw new Error(`server exited with code ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    // pacing: another process's server has no event to await until it listens
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface ExtraServer {
  port: number;
  /** The server's process id (for the benchmarks' memory readings). */
  pid: number | undefined;
  stop(): Promise<void>;
}

// Servers a test started die with it, even when its clean-up did not run (a failed hook).
const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of started) child.kill('SIGKILL');
});

function stopper(child: ChildProcess, cleanup?: () => void): () => Promise<void> {
  started.add(child);
  return async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    started.delete(child);
    cleanup?.();
  };
}

/**
 * A second redis-server on a free port (or `port`: a restart), keeping nothing on disk; with `tls`
 * (PEM files), that port speaks TLS only.
 */
export async function startRedis(
  port?: number,
  tls?: { certFile: string; keyFile: string },
): Promise<ExtraServer> {
  port ??= await freePort();
  const listen = tls
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile]
    : ['--port', String(port)];
  if (tls) listen.push('--tls-key-file', tls.keyFile, '--tls-auth-clients', 'no');
  const child = spawn(
    'redis-server',
    [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  await waitForPort(port, 15_000, child);
  return { port, pid: child.pid, stop: stopper(child) };
}

/** A second MariaDB on a free port, in a temporary data directory (root, no password, database test). */
export async function startMariadb(
  options: { ssl?: { cert: Buffer; key: Buffer } } = {},
): Promise<ExtraServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'picop-mariadb-'));
  const datadir = join(dir, 'data');
  const sslArgs: string[] = [];
  if (options.ssl !== undefined) {
    writeFileSync(join(dir, 'cert.pem'), options.ssl.cert);
    writeFileSync(join(dir, 'key.pem'), options.ssl.key);
    sslArgs.push(`--ssl-cert=${join(dir, 'cert.pem')}`, `--ssl-key=${join(dir, 'key.pem')}`);
  }
  // Its own temporary directory: two instances set up at once clash in a shared /tmp.
  const env = { ...process.env, TMPDIR: dir };
  await run(
    'mariadb-install-db',
    [
      '--no-defaults',
      `--datadir=${datadir}`,
      '--auth-root-authentication-method=normal',
      '--user=root',
      '--skip-test-db',
    ],
    env,
  );
  const child = spawn(
    'mariadbd',
    [
      '--no-defaults',
      `--datadir=${datadir}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${join(dir, 'mysqld.sock')}`,
      `--pid-file=${join(dir, 'mysqld.pid')}`,
      '--user=root',
      '--skip-log-bin',
      '--innodb-buffer-pool-size=16M',
      '--skip-name-resolve',
      '--init-file=' + writeInit(dir),
      `--tmpdir=${dir}`,
      ...sslArgs,
    ],
    { stdio: 'ignore', env },
  );
  await waitForPort(port, 60_000, child);
  return {
    port,
    pid: child.pid,
    stop: stopper(child, () => rmSync(dir, { recursive: true, force: true })),
  };
}

function writeInit(dir: string): string {
  const file = join(dir, 'init.sql');
  writeFileSync(
    file,
    "CREATE DATABASE IF NOT EXISTS test;\nALTER USER 'root'@'localhost' IDENTIFIED BY '';\nCREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';\nGRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n",
  );
  return file;
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  user: { uid?: number; gid?: number } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env, ...user });
    let err = '';
    child.stderr?.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err}`)),
    );
  });
}

/**
 * A second RabbitMQ node on a free port (guest/guest from loopback), with its own node name, data
 * and logs in a temporary directory. rabbitmq-server drops root for the `rabbitmq` user, which
 * must own that directory.
 */
export async function startRabbitmq(): Promise<ExtraServer> {
  const port = await freePort();
  const dist = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'picop-rabbitmq-'));
  writeFileSync(join(dir, 'rabbitmq.conf'), `listeners.tcp.local = 127.0.0.1:${port}\n`);
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  await run('chown', ['-R', 'rabbitmq:rabbitmq', dir]).catch(() => undefined);
  const env = {
    ...process.env,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(dist),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_FEATURE_FLAGS_FILE: join(dir, 'feature_flags'),
    RABBITMQ_PID_FILE: join(dir, 'pid'),
  };
  const node = `picop${port}@localhost`;
  const child = spawn('rabbitmq-server', [], {
    stdio: 'ignore',
    env: { ...env, RABBITMQ_NODENAME: node },
  });
  // The Erlang VM runs in a session of its own, beyond the reach of signals to this child.
  const shutdown = () => run('rabbitmqctl', ['-n', node, 'shutdown']);
  started.add(child);
  try {
    await waitForPort(port, 120_000, child);
  } catch (err) {
    await shutdown().catch(() => undefined);
    throw err;
  }
  return {
    port,
    pid: child.pid,
    stop: async () => {
      await shutdown();
      started.delete(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const PG_HOST = process.env.PGHOST_TEST ?? '127.0.0.1';
export const PG_PORT = Number(process.env.PG_PORT ?? 5432);

/**
 * A second PostgreSQL on a free port, in a temporary data directory (trust auth, user postgres,
 * database postgres). PostgreSQL refuses to run as root, so it runs as `postgres` when this
 * process is root.
 */
export async function startPostgres(
  options: { ssl?: { cert: Buffer; key: Buffer } } = {},
): Promise<ExtraServer> {
  const port = await freePort();
  const version = readdirSync('/usr/lib/postgresql').sort().at(-1) ?? '';
  const bin = join('/usr/lib/postgresql', version, 'bin');
  const dir = mkdtempSync(join(tmpdir(), 'picop-postgres-'));
  const root = process.getuid?.() === 0;
  const user = root ? { uid: idOf('-u', 'postgres'), gid: idOf('-g', 'postgres') } : {};
  if (user.uid !== undefined && user.gid !== undefined) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  await run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres'], process.env, user);
  const sslArgs: string[] = [];
  if (options.ssl !== undefined) {
    // PostgreSQL wants its key readable by its user alone.
    writeFileSync(join(dir, 'cert.pem'), options.ssl.cert);
    writeFileSync(join(dir, 'key.pem'), options.ssl.key, { mode: 0o600 });
    if (user.uid !== undefined && user.gid !== undefined) {
      chownSync(join(dir, 'cert.pem'), user.uid, user.gid);
      chownSync(join(dir, 'key.pem'), user.uid, user.gid);
    }
    sslArgs.push(
      '-c',
      'ssl=on',
      '-c',
      `ssl_cert_file=${join(dir, 'cert.pem')}`,
      '-c',
      `ssl_key_file=${join(dir, 'key.pem')}`,
    );
  }
  const child = spawn(
    join(bin, 'postgres'),
    ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'].concat([
      '-c',
      `unix_socket_directories=${dir}`,
      '-c',
      'fsync=off',
      ...sslArgs,
    ]),
    { stdio: 'ignore', ...user },
  );
  await waitForPort(port, 60_000, child);
  // The port opens before PostgreSQL takes logins ("the database system is starting up").
  for (let i = 0; ; i++) {
    try {
      await run(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-q']);
      break;
    } catch (err) {
      if (i >= 300 || child.exitCode !== null) throw err;
      // pacing: another process's server has no event to await until it takes logins
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    pid: child.pid,
    stop: stopper(child, () => rmSync(dir, { recursive: true, force: true })),
  };
}

function idOf(flag: '-u' | '-g', name: string): number {
  return Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
}

export const MQTT_HOST = process.env.MQTT_HOST ?? '127.0.0.1';
export const MQTT_PORT = Number(process.env.MQTT_PORT ?? 1883);

/**
 * A second Mosquitto on a free port (or on `port`, to restart one), anonymous, keeping nothing on
 * disk; with `tls`, its listener speaks MQTT over TLS.
 */
export async function startMosquitto(
  options: { port?: number; tls?: { cert: Buffer; key: Buffer } } = {},
): Promise<ExtraServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'picop-mosquitto-'));
  const config = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'log_dest none',
    // Started as root, Mosquitto would switch to its own user, who cannot read this directory.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
  ];
  if (options.tls !== undefined) {
    writeFileSync(join(dir, 'cert.pem'), options.tls.cert);
    writeFileSync(join(dir, 'key.pem'), options.tls.key);
    config.push(`certfile ${join(dir, 'cert.pem')}`, `keyfile ${join(dir, 'key.pem')}`);
  }
  writeFileSync(join(dir, 'mosquitto.conf'), `${config.join('\n')}\n`);
  const child = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  await waitForPort(port, 15_000, child);
  return {
    port,
    pid: child.pid,
    stop: stopper(child, () => rmSync(dir, { recursive: true, force: true })),
  };
}
