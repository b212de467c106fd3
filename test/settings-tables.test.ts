// The settings tables of the commands' READMEs come from the same table as their --help and their
// validation: a setting added, renamed or re-defaulted in one place shows in the other.
import { readFileSync } from 'node:fs';
import { markdownTable, type Setting } from '@picop/cli-kit';
import { describe, expect, it } from 'vitest';
import { SETTINGS as GATEWAY } from '../packages/gateway/src/config.js';
import { SETTINGS as PROXY } from '../packages/proxy/src/config.js';

/** A Markdown table's cells, row by row (Biome pads the columns; `\|` is a pipe in a cell). */
function cells(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|[\s-|]+\|$/.test(l))
    .map((l) => l.split(/(?<!\\)\|/).map((c) => c.trim()));
}

const commands: Array<[string, string, readonly Setting[]]> = [
  ['picop-proxy', 'packages/proxy/README.md', PROXY],
  ['picop-gateway', 'packages/gateway/README.md', GATEWAY],
];

describe('settings tables', () => {
  for (const [command, readme, settings] of commands) {
    it(`${readme} lists the settings of ${command}`, () => {
      const text = readFileSync(new URL(`../${readme}`, import.meta.url), 'utf8');
      const start = text.indexOf('| Flag');
      const table = text.slice(start, text.indexOf('\n\n', start));
      expect(cells(table)).toEqual(cells(markdownTable(settings)));
    });
  }
});
