import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * Runs `picop-proxy` or `picop-gateway` (their committed bin, over the build) to its exit:
 * the exit code and what it wrote to stderr.
 */
export async function runCommand(
  name: 'proxy' | 'gateway',
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stderr: string }> {
  const bin = fileURLToPath(
    new URL(`../../packages/${name}/bin/picop-${name}.js`, import.meta.url),
  );
  return promisify(execFile)(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env },
  }).then(
    ({ stderr }) => ({ code: 0, stderr }),
    (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
  );
}
