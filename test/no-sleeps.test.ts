// Tests wait on events (or fake timers), never on the clock: a sleep as synchronisation passes on
// a quiet machine and fails on a busy one. A timer that is the load or the subject of a test is
// marked `// pacing:` on the line above it, with the reason.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const SLEEP = /setTimeout\(\s*(r|resolve)\s*,|\bsleep\(\s*\d/;

function* testFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.'))
      continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* testFiles(path);
    else if (
      /\.(test\.ts|ts)$/.test(entry.name) &&
      /(^|\/)(test|examples)\//.test(relative(root, path))
    )
      yield path;
  }
}

describe('the tests', () => {
  it('never sleep to synchronise: every timer is marked as pacing', () => {
    const unmarked: string[] = [];
    for (const file of testFiles(root)) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (SLEEP.test(line) && !/\/\/ pacing:/.test(lines[i - 1] ?? '') && !line.includes('SLEEP'))
          unmarked.push(`${relative(root, file)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(unmarked).toEqual([]);
  });
});
