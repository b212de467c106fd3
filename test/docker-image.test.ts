// The container images (docker/Dockerfile) without Docker, which does not run here: the file is
// checked for what matters (a pinned base, not root, node as the entrypoint, no npx), and its
// install step runs as written, from the packed tarballs; the command it installs then serves and
// drains on SIGTERM, as the image's entrypoint would.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { acceptPicop, connect } from '@picop/net-wrap';
import { beforeAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const dockerfile = readFileSync(join(root, 'docker/Dockerfile'), 'utf8');

describe('docker/Dockerfile', () => {
  it('pins its base, runs as a user, and starts node itself (signals reach it)', () => {
    expect(dockerfile).toMatch(/^FROM node:\d+\.\d+\.\d+-[a-z]+-slim$/m);
    const instructions = dockerfile.replace(/^#.*$/gm, '');
    expect(instructions).not.toMatch(/:latest|npx/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "\/app\/command"\]$/m);
    expect(dockerfile).toMatch(/^RUN \/tmp\/install\.sh "\$COMMAND" \/tmp\/packs/m);
  });
});

/** The line a command logs at start (JSON), and the process. */
async function start(dir: string, args: string[]) {
  const child = spawn(process.execPath, [join(dir, 'command'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const line = await new Promise<Record<string, string>>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const first = out.split('\n').find((l) => l.includes('listening on'));
      if (first !== undefined) resolve(JSON.parse(first));
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  return { child, line };
}

const portOf = (address: string) => Number(address.split(':').at(-1));
const exited = (child: ChildProcess) => once(child, 'exit').then(([code]) => code as number);

describe('the images’ install step and entrypoint, from the packed tarballs', () => {
  let packs: string;
  beforeAll(async () => {
    packs = mkdtempSync(join(tmpdir(), 'picop-packs-'));
    await exec('npm', ['pack', '--workspaces', '--pack-destination', packs, '--silent'], {
      cwd: root,
    });
  }, 120_000);

  async function install(command: string): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), `picop-${command}-`));
    await exec(join(root, 'docker/install.sh'), [command, packs], { cwd: dir });
    return dir;
  }

  it('picop-proxy relays, and on SIGTERM lets an open connection finish, then exits 0', async () => {
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const dir = await install('picop-proxy');
    const { child, line } = await start(dir, [
      '--listen',
      '127.0.0.1:0',
      '--default',
      `127.0.0.1:${(echo.address() as net.AddressInfo).port}`,
      '--grace',
      '30000',
    ]);
    try {
      const socket = connect({ host: '127.0.0.1', port: portOf(line.listen as string) });
      socket.write('hello');
      await once(socket, 'data');
      const exit = exited(child);
      child.kill('SIGTERM');
      // Draining: the open connection still relays.
      socket.write('still');
      const [more] = await once(socket, 'data');
      expect(String(more)).toBe('still');
      socket.end();
      expect(await exit).toBe(0);
    } finally {
      child.kill('SIGKILL');
      echo.close();
    }
  }, 60_000);

  it('picop-gateway forwards, and exits 0 on SIGTERM', async () => {
    const service = acceptPicop(http.createServer((_req, res) => res.end('ok')));
    await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
    const dir = await install('picop-gateway');
    const { child, line } = await start(dir, [
      '--listen',
      '127.0.0.1:0',
      '--upstream',
      `127.0.0.1:${(service.address() as net.AddressInfo).port}`,
      '--log-level',
      'error',
    ]);
    try {
      const res = await fetch(`http://${line.listen}/`);
      expect(await res.text()).toBe('ok');
      const exit = exited(child);
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
    } finally {
      child.kill('SIGKILL');
      service.close();
    }
  }, 60_000);
});
