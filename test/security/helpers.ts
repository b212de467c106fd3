import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export { listen } from '../support/servers.js';

const dir = fileURLToPath(new URL('.', import.meta.url));

/** The README's service in a process of its own: its port, and the process to kill after. */
export async function startReadmeService(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    ['--require', '../../examples/esm-and-cjs/instrumentation.cjs', 'readme-service.cjs'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [line] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  const port = Number(/listening on (\d+)/.exec(line.toString())?.[1]);
  if (!(port > 0)) throw new Error(`the service did not start: ${line}`);
  return { child, port };
}
