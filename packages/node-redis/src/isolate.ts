// Each environment's keys on the client's own Redis: in a database of its own, or behind a key
// prefix the baseline cannot name.
import { PicopError } from '@picop/codec';
import { ISOLATED_KEYS, isolatedKeyPrefix, isolationName } from '@picop/net-wrap/internal';

const LABEL = '@picop/node-redis';

/**
 * Each environment's keys on the one Redis: in a database of its own, or behind a key prefix. The
 * baseline keeps the client's own `database` and `keyPrefix`.
 */
export interface NodeRedisIsolation {
  /**
   * The database index of an environment (`SELECT`); `undefined`: the baseline's. It may not be
   * the baseline's own database (the client's `database`, 0 by default).
   */
  db?: (envId: string) => number | undefined;
  /**
   * redis 6: `true` gives feature-1's keys the prefix `picop-env:feature-1:`, after the client's
   * own `keyPrefix` (`shop:picop-env:feature-1:cart`). A function names the part after
   * `picop-env:`; `undefined`: the baseline's keys. The baseline cannot name a key under
   * `picop-env:`.
   */
  keyPrefix?: true | ((envId: string) => string | undefined);
}

interface IsolatedOptions {
  database?: number;
  url?: string;
  keyPrefix?: unknown;
}

/**
 * The options of environment `envId`'s client under `isolate`. Throws `ERR_PICOP_INVALID_ARG` for
 * an Env-Id that cannot name an isolated environment, or a database that is not an index or is
 * the baseline's own.
 */
export function isolated<O extends IsolatedOptions>(
  options: O,
  isolate: NodeRedisIsolation | undefined,
  envId: string | undefined,
): O {
  if (isolate === undefined || envId === undefined) return options;
  const name = isolationName(envId);
  const out: IsolatedOptions = { ...options };
  if (isolate.keyPrefix !== undefined) {
    const prefix = isolatedKeyPrefix(isolate.keyPrefix, name, ownPrefix(options.keyPrefix));
    if (prefix !== undefined) out.keyPrefix = prefix;
  }
  const db = isolate.db?.(name);
  if (db !== undefined) {
    const own = options.database ?? databaseOfUrl(options.url) ?? 0;
    if (!Number.isInteger(db) || db < 0 || db === own) {
      throw new PicopError(
        'ERR_PICOP_INVALID_ARG',
        `${LABEL}: isolate.db(${JSON.stringify(envId)}) must be a database index other than the baseline's (${own}), got ${JSON.stringify(db)}`,
      );
    }
    // node-redis reads a database from the URL's path, over the option.
    if (options.url !== undefined) out.url = withoutDatabase(options.url);
    out.database = db;
  }
  return out as O;
}

/**
 * With key-prefix isolation: the baseline's client (not connected yet) refuses, with
 * `ERR_PICOP_INVALID_ARG`, every command, transaction and pipeline with an argument in the
 * environments' namespace. Throws `ERR_PICOP_UNSUPPORTED` on a node-redis without `keyPrefix`.
 */
export function guardBaseline(
  client: Record<PropertyKey, unknown>,
  isolate: NodeRedisIsolation | undefined,
  keyPrefix: unknown,
): void {
  if (isolate?.keyPrefix === undefined) return;
  if (!('_keyPrefix' in client)) {
    throw new PicopError(
      'ERR_PICOP_UNSUPPORTED',
      `${LABEL}: \`isolate.keyPrefix\` needs node-redis's \`keyPrefix\` option (redis 6): use \`isolate.db\`, or upgrade`,
    );
  }
  const namespace = `${ownPrefix(keyPrefix)}${ISOLATED_KEYS}`;
  const refused = (args: readonly unknown[]): PicopError | undefined => {
    const arg = args.find((a) =>
      (typeof a === 'string' ? a : Buffer.isBuffer(a) ? a.toString('latin1') : '').startsWith(
        namespace,
      ),
    );
    if (arg === undefined) return undefined;
    return new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `${LABEL}: the baseline cannot use ${JSON.stringify(String(arg))}: keys under ${JSON.stringify(namespace)} are isolated environments'`,
    );
  };
  // On the client itself (`_self`), which every view of it (withTypeMapping, legacy) inherits from.
  const self = client._self as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const send = self.sendCommand as (...args: unknown[]) => Promise<unknown>;
  self.sendCommand = function guarded(this: unknown, ...args: unknown[]) {
    const err = refused(args[0] as unknown[]);
    return err === undefined ? send.apply(this, args) : Promise.reject(err);
  };
  for (const name of ['_executeMulti', '_executePipeline']) {
    const execute = self[name] as (...args: unknown[]) => Promise<unknown>;
    self[name] = function guarded(this: unknown, ...args: unknown[]) {
      for (const command of args[0] as Array<{ args: unknown[] }>) {
        const err = refused(command.args);
        if (err !== undefined) return Promise.reject(err);
      }
      return execute.apply(this, args);
    };
  }
}

function ownPrefix(keyPrefix: unknown): string {
  if (keyPrefix === undefined) return '';
  return Buffer.isBuffer(keyPrefix) ? keyPrefix.toString('latin1') : String(keyPrefix);
}

function databaseOfUrl(url: string | undefined): number | undefined {
  const path = url === undefined ? '' : new URL(url).pathname.slice(1);
  return path === '' ? undefined : Number(path);
}

function withoutDatabase(url: string): string {
  const parsed = new URL(url);
  parsed.pathname = '';
  return parsed.toString();
}
