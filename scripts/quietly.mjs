// `node scripts/quietly.mjs CMD ARGS...`: runs a command with its output held back, printed only
// if it fails (the demo's build: hundreds of lines nobody reads when it works).
import { spawnSync } from 'node:child_process';

const [command, ...args] = process.argv.slice(2);
const { status, stdout, stderr, error } = spawnSync(command, args, { encoding: 'utf8' });
if (status !== 0) {
  process.stdout.write(stdout ?? '');
  process.stderr.write(stderr ?? '');
  if (error) process.stderr.write(`${error.message}\n`);
  process.exit(status ?? 1);
}
