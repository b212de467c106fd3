// One table of a command's settings: each once, with its flag, environment variable, config-file
// key, type, default and help line. `--help`, the README's table and validation come from it.

import { timingSafeEqual } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { PicopError } from '@picop/codec';
import { routesValue } from '@picop/routes';

/** One setting of a command; `K`, the command's config keys. */
export interface Setting<K extends string = string> {
  /** Config-file key, and the key of the loaded values. */
  key: K;
  /** Flag, without `--`. */
  flag: string;
  /** Environment variable. */
  env: string;
  /**
   * `string`; `boolean` (flag without value; `1`/`true`/`yes` or `0`/`false`/`no` elsewhere);
   * `integer` (within `min`..`max`); `list` (repeated flag, comma-separated variable, JSON list);
   * `routes` (`ENV=HOST:PORT` repeated or comma-separated; in the file an object or the Go
   * reference's `[{"env_id","destination"}]`).
   */
  type: 'string' | 'boolean' | 'integer' | 'list' | 'routes';
  /** Placeholder of the value in `--help`, e.g. `HOST:PORT`. */
  arg?: string;
  help: string;
  /**
   * Default, as shown in `--help` and the README: `String()` of the command's `DEFAULTS` entry,
   * which the code applies, or words (`off`) for a feature that is off until set.
   */
  default?: string;
  /** Allowed values of a `string`. */
  values?: readonly string[];
  min?: number;
  max?: number;
  required?: boolean;
}

/** What a command is configured with: values by key. */
export type SettingValues = Record<
  string,
  string | boolean | number | string[] | Record<string, string>
>;

const bad = (message: string) => new PicopError('ERR_PICOP_INVALID_ARG', message);

const placeholder = (s: Setting) =>
  s.type === 'boolean' ? '' : ` ${s.arg ?? (s.type === 'integer' ? 'N' : 'VALUE')}`;

/** `--help` text: usage line, summary, then one line per setting and the built-in flags. */
export function usage(
  command: string,
  summary: string,
  settings: readonly Setting[],
  example: string,
): string {
  const rows: Array<[string, string, string]> = [
    ...settings.map((s): [string, string, string] => [
      `--${s.flag}${placeholder(s)}`,
      s.help,
      `$${s.env}${s.default === undefined ? '' : `, default ${s.default}`}`,
    ]),
    ['--config FILE', 'JSON file with the keys below', `$${configVariable(settings)}`],
    ['--help', 'this text', ''],
    ['--version', 'the version', ''],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  const lines = rows.map(([flag, help, more]) =>
    [`  ${flag.padEnd(width)}  ${help}`, more && `  ${' '.repeat(width)}  ${more}`]
      .filter(Boolean)
      .join('\n'),
  );
  const required = settings.filter((s) => s.required).map((s) => `--${s.flag}${placeholder(s)}`);
  return `Usage: ${command} ${required.join(' ')} [options]\n\n${summary}\n\nOptions (each also from its environment variable and a --config file key; flags win over\nvariables, variables over the file):\n${lines.join('\n')}\n\nConfig-file keys: ${settings.map((s) => s.key).join(', ')}\n\nExample:\n${example}\n`;
}

/** The settings as a Markdown table, for a README. */
export function markdownTable(settings: readonly Setting[]): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const rows = settings.map(
    (s) =>
      `| \`${cell(`--${s.flag}${placeholder(s)}`)}\` | \`${s.env}\` | \`${s.key}\` | ${s.default ?? ''} | ${cell(s.help)} |`,
  );
  return [
    '| Flag | Environment variable | Config key | Default | What |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

function configVariable(settings: readonly Setting[]): string {
  const prefix = settings[0]?.env.replace(/_[^_]+$/, '') ?? 'PICOP';
  return `${prefix}_CONFIG`;
}

/**
 * Reads the settings from flags, environment variables and the `--config` JSON file, in that
 * order of precedence. Returns `'help'` / `'version'` for those flags. Throws
 * `ERR_PICOP_INVALID_ARG` naming the flag, variable or key at fault; an unknown flag, config-file
 * key or variable of the command's own prefix (`PICOP_PROXY_…`) names the closest valid one.
 * `otherVariables`: the command's variables outside the table (its secrets).
 */
export function loadSettings(
  settings: readonly Setting[],
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  otherVariables: readonly string[] = [],
): SettingValues | 'help' | 'version' {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    config: { type: 'string' },
    help: { type: 'boolean' },
    version: { type: 'boolean' },
  };
  for (const s of settings) {
    options[s.flag] = {
      type: s.type === 'boolean' ? 'boolean' : 'string',
      multiple: s.type === 'list' || s.type === 'routes',
    };
  }
  let flags: Record<string, string | boolean | Array<string | boolean> | undefined>;
  try {
    flags = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const unknown = /Unknown option '--([^']+)'/.exec((err as Error).message)?.[1];
    const hint =
      unknown === undefined
        ? ''
        : `; did you mean --${settings.find((s) => s.key === closest(unknown, settings))?.flag}?`;
    throw bad(`${(err as Error).message}${hint} (see --help)`);
  }
  if (flags.help) return 'help';
  if (flags.version) return 'version';
  checkVariables(settings, env, otherVariables);

  const file = (flags.config as string | undefined) ?? env[configVariable(settings)];
  const fromFile = file === undefined ? {} : readConfigFile(file, settings);
  const values: SettingValues = {};
  for (const s of settings) {
    const flag = flags[s.flag];
    const value =
      flag !== undefined
        ? parse(s, flag, `--${s.flag}`)
        : env[s.env] !== undefined
          ? parse(s, env[s.env] as string, s.env)
          : fromFile[s.key] !== undefined
            ? parse(s, fromFile[s.key], `"${s.key}" in ${file}`)
            : undefined;
    if (value !== undefined) values[s.key] = value;
    else if (s.required) throw bad(`--${s.flag} is required (see --help)`);
  }
  return values;
}

/**
 * A variable of the command's own prefix that it does not read is a typo (`PICOP_PROXY_DEFUALT`):
 * an error naming the closest one, as an unknown config-file key is, never ignored.
 */
function checkVariables(
  settings: readonly Setting[],
  env: NodeJS.ProcessEnv,
  otherVariables: readonly string[],
): void {
  const prefix = `${configVariable(settings).replace(/CONFIG$/, '')}`;
  const known = new Set([
    ...settings.map((s) => s.env),
    configVariable(settings),
    ...otherVariables,
  ]);
  for (const name of Object.keys(env)) {
    if (!name.startsWith(prefix) || known.has(name)) continue;
    const asKey = name
      .slice(prefix.length)
      .toLowerCase()
      .replace(/_(.)/g, (_, c) => c.toUpperCase());
    const guess = settings.find((s) => s.key === closest(asKey, settings))?.env;
    throw bad(`Unknown variable ${name}; did you mean ${guess}? (see --help)`);
  }
}

function readConfigFile(file: string, settings: readonly Setting[]): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw bad(`--config: cannot read ${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw bad(`--config: ${file} is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(`--config: ${file} must hold a JSON object`);
  }
  const keys = settings.map((s) => s.key);
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) {
      throw bad(
        `--config: unknown key ${JSON.stringify(key)} in ${file}; did you mean ${JSON.stringify(closest(key, settings))}?`,
      );
    }
  }
  return value as Record<string, unknown>;
}

/** The key of the setting whose key or flag is the fewest edits away from `word`. */
function closest(word: string, settings: readonly Setting[]): string {
  const distance = (a: string, b: string) => {
    let row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      const next = [i];
      for (let j = 1; j <= b.length; j++) {
        const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1;
        next[j] = Math.min(
          (row[j] as number) + 1,
          (next[j - 1] as number) + 1,
          (row[j - 1] as number) + cost,
        );
      }
      row = next;
    }
    return row[b.length] as number;
  };
  const score = (s: Setting) => Math.min(distance(word, s.key), distance(word, s.flag));
  return [...settings].sort((a, b) => score(a) - score(b))[0]?.key ?? '';
}

function parse(s: Setting, raw: unknown, where: string) {
  switch (s.type) {
    case 'boolean':
      return parseBoolean(raw, where);
    case 'integer':
      return parseInteger(raw, where, s.min ?? 0, s.max ?? Number.MAX_SAFE_INTEGER);
    case 'list':
      return parseList(raw, where);
    case 'routes':
      return routesValue(raw, where);
    default: {
      if (typeof raw !== 'string' && typeof raw !== 'number') {
        throw bad(`${where} must be a string, got ${JSON.stringify(raw)}`);
      }
      const text = String(raw);
      if (s.values !== undefined && !s.values.includes(text)) {
        throw bad(`${where} must be ${s.values.join(' or ')}, got ${JSON.stringify(text)}`);
      }
      return text;
    }
  }
}

function parseBoolean(raw: unknown, where: string): boolean {
  if (typeof raw === 'boolean') return raw;
  if (['1', 'true', 'yes'].includes(String(raw))) return true;
  if (['0', 'false', 'no', ''].includes(String(raw))) return false;
  throw bad(`${where} must be true or false, got ${JSON.stringify(raw)}`);
}

function parseInteger(raw: unknown, where: string, min: number, max: number): number {
  const n =
    typeof raw === 'number'
      ? raw
      : typeof raw === 'string' && raw.trim() !== ''
        ? Number(raw)
        : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw bad(
      `${where} must be an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? '' : ` to ${max}`}, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

function parseList(raw: unknown, where: string): string[] {
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
  if (items === undefined || items.some((i) => typeof i !== 'string')) {
    throw bad(`${where} must be a list of strings, got ${JSON.stringify(raw)}`);
  }
  return (items as string[]).map((i) => i.trim()).filter(Boolean);
}

/**
 * A secret from `file` (trimmed) if given, else from the environment variable `variable`, else
 * none. Throws `ERR_PICOP_INVALID_ARG` naming `flag` for a file that cannot be read or is empty.
 */
export function readSecret(
  file: string | undefined,
  variable: string,
  env: NodeJS.ProcessEnv,
  flag: string,
): string | undefined {
  if (file === undefined) {
    const value = env[variable];
    // Set but empty is a mistake (a missing Secret), never "no secret".
    if (value !== undefined && value.trim() === '') {
      throw bad(`${variable} is set but empty: give it the secret, or unset it`);
    }
    return value;
  }
  let secret: string;
  try {
    secret = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw bad(`${flag}: cannot read ${file}: ${(err as Error).message}`);
  }
  if (secret === '') throw bad(`${flag}: ${file} is empty`);
  return secret;
}

/**
 * The start of a command: its configuration from `load`, or, for `--help` / `--version`, the text
 * printed and `undefined`. A bad setting is printed (naming it) with exit code 2.
 */
export function startCommand<T>(
  command: string,
  load: () => T | 'help' | 'version',
  usageText: string,
  packageDir: string,
): T | undefined {
  let config: T | 'help' | 'version';
  try {
    config = load();
  } catch (err) {
    process.stderr.write(`${command}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (config === 'help') {
    process.stdout.write(usageText);
    return undefined;
  }
  if (config === 'version') {
    const pkg = JSON.parse(readFileSync(`${packageDir}/package.json`, 'utf8'));
    process.stdout.write(`${pkg.version}\n`);
    return undefined;
  }
  return config;
}

/**
 * Whether every address `host` resolves to is a loopback one (127.0.0.0/8, ::1): what an admin
 * address is checked with, so that `127.attacker.example` is seen for what it resolves to. A name
 * that does not resolve is `ERR_PICOP_INVALID_ARG`, naming `flag`.
 */
export async function resolvesToLoopback(host: string, flag: string): Promise<boolean> {
  let addresses: Array<{ address: string }>;
  try {
    addresses = await lookup(host, { all: true });
  } catch (err) {
    throw bad(`${flag}: cannot resolve ${JSON.stringify(host)}: ${(err as Error).message}`);
  }
  return (
    addresses.length > 0 &&
    addresses.every(({ address }) => /^(::ffff:)?127\./.test(address) || address === '::1')
  );
}

/**
 * Whether two secrets are equal, in time that does not depend on where they differ (the admin
 * API's bearer token, the gateway's token).
 */
export function equalSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
