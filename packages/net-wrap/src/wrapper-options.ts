import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { type Context, context, ROOT_CONTEXT, type TextMapPropagator } from '@opentelemetry/api';
import { type Dialect, PicopError } from '@picop/codec';
import { envIdProblem, getEnvId, headerForContext, setEnvId } from '@picop/propagator';
import { type Route, Routes, type RoutesOptions } from '@picop/routes';
import { ENV_ID_VARIABLE, ORIGINS_VARIABLE } from './constants.js';

/** The `picop` options every client wrapper (mysql, redis, amqp) accepts. */
export interface PicopWrapperOptions {
  /**
   * Most environments with a client of their own (a pool, a connection) at once; past it the
   * least recently used idle one is closed. The baseline's is not counted: it is never evicted
   * or refused.
   * @default 32
   */
  maxPools?: number;
  /**
   * Propagator that turns a context into the connection header.
   * @default `EnvIdPropagator` alone
   */
  propagator?: TextMapPropagator;
  /**
   * Env-Id of work that runs with no Env-Id in its context (consumers, cron jobs); `null`: none,
   * whatever `PICOP_ENV_ID` says (such work is the baseline's).
   * @default process.env.PICOP_ENV_ID
   */
  envId?: string | null;
  /**
   * Close an environment's client after this long unused (0: never).
   * @default 60000
   */
  idleTimeoutMs?: number;
  /** @default 'spec' */
  dialect?: Dialect;
  /**
   * Proxyless routing: each environment's connections go straight to its route's destination;
   * environments without one, and work without an Env-Id, to the client's own address.
   */
  routes?: RoutesOptions;
  /**
   * Logical isolation: each environment gets its own database, key prefix, virtual host... on
   * the client's own server (the shape is each wrapper's). Connections carry no header.
   */
  isolate?: object;
}

/** Environment variable that turns every wrapper into the plain library: `PICOP_DISABLED=1`. */
export const DISABLED_VARIABLE = 'PICOP_DISABLED';

/**
 * Whether a wrapper should add PiCoP: not when its `picop` option is `false`, nor when
 * `PICOP_DISABLED` is `1` or `true`.
 */
export function picopEnabled(option: unknown): boolean {
  if (option === false) return false;
  const disabled = process.env[DISABLED_VARIABLE];
  return !(disabled === '1' || disabled === 'true');
}

/**
 * The Env-Id of work without one: `option`, else `PICOP_ENV_ID`, else none.
 * Throws `ERR_PICOP_INVALID_ARG` for an invalid one.
 */
export function fallbackEnvId(option: string | null | undefined): string | undefined {
  if (option === null) return undefined;
  const value = option ?? (process.env[ENV_ID_VARIABLE] || undefined);
  const problem = value === undefined ? undefined : envIdProblem(value);
  if (problem !== undefined) {
    const source = option === undefined ? ENV_ID_VARIABLE : '`envId`';
    throw new PicopError('ERR_PICOP_INVALID_ARG', `The fallback Env-Id from ${source} ${problem}`);
  }
  return value;
}

/** `ctx` (default: the active one), with `fallback` as its Env-Id when it has none. */
export function withFallbackEnvId(
  fallback: string | undefined,
  ctx: Context = context.active(),
): Context {
  return fallback !== undefined && getEnvId(ctx) === undefined ? setEnvId(ctx, fallback) : ctx;
}

/**
 * A wrapped library's options split in two: whether PiCoP is on, the `picop` options (`{}` when
 * absent), and the library's own options without the `picop` key.
 */
export function splitOptions<P extends PicopWrapperOptions, O extends { picop?: P | false }>(
  options: O,
): { enabled: boolean; picop: P; library: Omit<O, 'picop'> } {
  const { picop, ...library } = options;
  return { enabled: picopEnabled(picop), picop: (picop || {}) as P, library };
}

/** The context of work without an Env-Id: the fallback Env-Id's, or none. */
function baseContext(options: PicopWrapperOptions): Context {
  return withFallbackEnvId(fallbackEnvId(options.envId), ROOT_CONTEXT);
}

/**
 * Whether the connections to the client's own address start with the header: not when it routes
 * itself (unless `routes.header`) or isolates environments on that server.
 */
export function sendsHeader(options: PicopWrapperOptions): boolean {
  if (options.routes !== undefined) return options.routes.header ?? false;
  return options.isolate === undefined;
}

/**
 * The header of the baseline client: the fallback Env-Id's, or the header without fields; none
 * when {@link sendsHeader} says so.
 */
export function baseHeader(options: PicopWrapperOptions): Buffer {
  if (!sendsHeader(options)) return Buffer.alloc(0);
  return headerForContext(baseContext(options), options);
}

/**
 * Where isolated environments' Redis keys live, after a client's own key prefix
 * (`shop:picop-env:feature-1:cart`). The baseline cannot name a key there, so no key the baseline
 * writes is an environment's.
 */
export const ISOLATED_KEYS = 'picop-env:';

/**
 * The key prefix of the isolated environment `name` (from {@link isolationName}): `true` gives
 * `<name>:`, a function names the part after `picop-env:` (`undefined`: the baseline's keys).
 */
export function isolatedKeyPrefix(
  keyPrefix: true | ((name: string) => string | undefined),
  name: string,
  ownPrefix = '',
): string | undefined {
  const prefix = keyPrefix === true ? `${name}:` : keyPrefix(name);
  return prefix === undefined ? undefined : `${ownPrefix}${ISOLATED_KEYS}${prefix}`;
}

/** Env-Ids that may become part of a database, schema, vhost or key name. */
const IDENTIFIER_SAFE = /^[A-Za-z0-9_-]{1,48}$/;

/**
 * `envId`, checked before it becomes part of an identifier (a database or schema name, a key
 * prefix, a virtual host): letters, digits, `_` and `-`, at most 48. Anything else throws
 * `ERR_PICOP_INVALID_ARG`: such an environment cannot be isolated, and its work fails rather
 * than land elsewhere.
 */
export function isolationName(envId: string): string {
  if (!IDENTIFIER_SAFE.test(envId)) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `Env-Id ${JSON.stringify(envId)} cannot name an isolated environment: only letters, digits, _ and - (at most 48) may become part of an identifier`,
    );
  }
  return envId;
}

/** What a store keeps of an isolation name: its limits and the characters it refuses or alters. */
export interface StoreNameRules {
  /** The name's kind, for messages: `'PostgreSQL schema'`. */
  kind: string;
  /** The option that made it: `'isolate.schema'`. */
  option: string;
  /** Longest name in UTF-8 bytes; a longer one is truncated or refused by the store. */
  maxBytes?: number;
  /** Longest name in characters. */
  maxChars?: number;
  /** Characters the store refuses, or that would change how the name is read. */
  forbidden?: RegExp;
  /** The store may fold upper case to lower (MySQL's lower_case_table_names, unquoted SQL). */
  foldsCase?: boolean;
}

/**
 * `name`, the store name an `isolate` option gave for `envId`, if the store keeps it as it is:
 * else `ERR_PICOP_INVALID_ARG`, before anything is written. A name the store would truncate, fold
 * or refuse could be another environment's too (two Env-Ids sharing one schema).
 */
export function storeName(name: string, envId: string, rules: StoreNameRules): string {
  const problem =
    name.length === 0
      ? 'is empty'
      : rules.maxBytes !== undefined && Buffer.byteLength(name) > rules.maxBytes
        ? `is ${Buffer.byteLength(name)} bytes, and the store keeps ${rules.maxBytes}: two environments could share it`
        : rules.maxChars !== undefined && [...name].length > rules.maxChars
          ? `is ${[...name].length} characters, and the store keeps ${rules.maxChars}: two environments could share it`
          : rules.forbidden?.test(name)
            ? `has ${JSON.stringify(rules.forbidden.exec(name)?.[0])}, which the store refuses or reads otherwise`
            : rules.foldsCase && name !== name.toLowerCase()
              ? 'has upper case, which the store may fold to lower case: two environments could share it'
              : undefined;
  if (problem === undefined) return name;
  throw new PicopError(
    'ERR_PICOP_INVALID_ARG',
    `${rules.option}(${JSON.stringify(envId)}) gives the ${rules.kind} ${JSON.stringify(name)}, which ${problem}; change \`${rules.option}\``,
  );
}

/** The part of an event emitter {@link emitError} uses (mqtt.js's typed emitter has it too). */
interface ErrorEmitter {
  listenerCount(event: 'error'): number;
  emit(event: 'error', ...args: unknown[]): boolean;
}

/**
 * What every wrapper does with an error of an environment's client: emit it on the wrapper with
 * the library's own arguments (`rest`: node-postgres's client) and the Env-Id after them, when the
 * wrapper has `'error'` listeners; else report it on stderr, as ioredis does, and never throw (one
 * environment's connection does not crash the process).
 */
export function emitError(
  wrapper: ErrorEmitter,
  label: string,
  err: unknown,
  envId: string | undefined,
  rest: readonly unknown[] = [],
): void {
  if (wrapper.listenerCount('error') > 0) {
    wrapper.emit('error', err, ...rest, envId);
    return;
  }
  console.error(`[${label}] Unhandled error event (Env-Id ${envId ?? 'none'}):`, err);
}

/**
 * Re-emits `events` of an environment's client on the wrapper, with the Env-Id appended;
 * `'error'` goes through {@link emitError}.
 */
export function forwardEvents(
  client: EventEmitter,
  wrapper: EventEmitter,
  events: readonly string[],
  envId: string | undefined,
  label: string,
): void {
  for (const event of events) {
    client.on(event, (...args: unknown[]) => {
      if (event === 'error') emitError(wrapper, label, args[0], envId, args.slice(1));
      else wrapper.emit(event, ...args, envId);
    });
  }
}

/**
 * For the clients that cannot route themselves or isolate yet: `routes` or `isolate` (those in
 * `which`) is an `ERR_PICOP_UNSUPPORTED` error, never silently ignored.
 */
export function refuseDirect(
  options: PicopWrapperOptions,
  what: string,
  which: ReadonlyArray<'routes' | 'isolate'> = ['routes', 'isolate'],
): void {
  for (const option of which) {
    if (options[option] !== undefined) {
      throw new PicopError(
        'ERR_PICOP_UNSUPPORTED',
        `${what} does not support \`picop.${option}\` yet`,
      );
    }
  }
}

// One `Routes` per `routes` options object, kept (a file stays watched): each new connection
// reads the current routes without reading the file again.
const onceRoutes = new WeakMap<RoutesOptions, Routes>();

/**
 * For one connection (not a pool): its environment's route, from a `table` or a `file` (the
 * routes as they are when it opens), and whether it starts with the header. A `url` is
 * `ERR_PICOP_UNSUPPORTED` (it is read later; a pool follows it).
 */
export function routeOnce(
  options: PicopWrapperOptions,
  envId: string | undefined,
  what: string,
): { route: Route | undefined; header: boolean } {
  const init = options.routes;
  if (init?.url !== undefined) {
    throw new PicopError(
      'ERR_PICOP_UNSUPPORTED',
      `${what} reads \`routes\` once, from a \`table\` or a \`file\`: for \`url\` use a pool`,
    );
  }
  let routes = init === undefined ? undefined : onceRoutes.get(init);
  if (init !== undefined && routes === undefined) {
    routes = new Routes(init);
    onceRoutes.set(init, routes);
  }
  const route = routes?.get(envId);
  return { route, header: route?.header ?? sendsHeader(options) };
}

/**
 * The origins an HTTP client sends the PiCoP header to: `option`, else `PICOP_ORIGINS`. With
 * neither, and no origin in `routes`, throws `ERR_PICOP_INVALID_ARG`: a client that would send the
 * header to every host breaks calls to the rest of the world, and one that sends it nowhere
 * is a mistake, so the user says which.
 */
export function picopOrigins(
  option: string | readonly string[] | undefined,
  routes: object | undefined,
  what: string,
  optionName: string,
): readonly string[] {
  const value = option ?? (process.env[ORIGINS_VARIABLE] || undefined);
  if (value === undefined) {
    if (Object.keys(routes ?? {}).length > 0) return [];
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `${what} needs to know which hosts speak PiCoP (picop-proxies, acceptPicop services): set \`${optionName}\` (e.g. ['*.svc.cluster.local']) or ${ORIGINS_VARIABLE}. Requests to any other host go out plain, as without PiCoP`,
    );
  }
  return typeof value === 'string' ? value.split(/[\s,]+/).filter(Boolean) : value;
}

const RESETS = new Set(['ECONNRESET', 'EPIPE']);

/**
 * For a client whose server answers what it sends: a socket whose peer hangs up right after the
 * header, before a byte of answer (or whose first answer `refused` recognises as a refusal of the
 * header), fails with `ERR_PICOP_PEER_CLOSED` naming the likely causes and the options, in place
 * of the library's bare "connection lost". Call it before the library sees the socket.
 */
export function explainRefusal(
  socket: Socket,
  header: Buffer,
  label: string,
  refused?: (first: Buffer) => boolean,
): void {
  if (header.length === 0) return;
  const emit = socket.emit;
  const pass = (self: Socket, event: string | symbol, args: unknown[]): boolean =>
    Reflect.apply(emit, self, [event, ...args]) as boolean;
  let peer = 'the server';
  const explained = (what: string) =>
    new PicopError(
      'ERR_PICOP_PEER_CLOSED',
      `${label}: ${peer} ${what}. Either it is the server itself, which does not read PiCoP: point the client at the picop-proxy in front of it, or reach the server directly with \`picop.routes\` or \`picop.isolate\` (or \`picop: false\`); or it is a picop-proxy that could not reach this environment's destination: its log names the route`,
    );
  // The first answer tells: looked at until a refusal shows, or for its first kilobyte (a server
  // that speaks first sends its greeting, then its refusal, possibly in pieces).
  let received = Buffer.alloc(0);
  let watching = true;
  const write = socket.write;
  const done = () => {
    watching = false;
    socket.emit = emit;
    socket.write = write;
  };
  const hungUp = () =>
    explained(
      received.length === 0
        ? 'hung up on the PiCoP header without answering'
        : 'hung up right after its greeting, before the login (as a server that refuses the PiCoP header does)',
    );
  // The client answering the greeting (its login): the server's next bytes end the watch, so
  // a close much later (an idle timeout, a proxy restart) is the library's own, not a refusal.
  let answered = false;
  // A library may learn of the hang-up from a write's callback rather than an 'error' event.
  socket.write = function (this: Socket, ...args: unknown[]): boolean {
    if (received.length > 0) answered = true;
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === 'function') {
      args[last] = (err?: Error & { code?: string }) =>
        callback(
          err !== undefined && err !== null && watching && RESETS.has(err.code ?? '')
            ? hungUp()
            : err,
        );
    }
    return Reflect.apply(write, this, args) as boolean;
  } as Socket['write'];
  socket.emit = function (this: Socket, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'connect') peer = `${socket.remoteAddress}:${socket.remotePort}`;
    if (event === 'data') {
      if (answered) {
        done();
        return pass(this, event, args);
      }
      received = Buffer.concat([received, args[0] as Buffer]);
      if (refused?.(received)) {
        done();
        return pass(this, 'error', [explained('refused the PiCoP header')]);
      }
      if (refused === undefined || received.length >= 1024) done();
      return pass(this, event, args);
    }
    const reset = event === 'error' && RESETS.has((args[0] as { code?: string })?.code ?? '');
    if (event === 'end' || reset) {
      done();
      // The client ended first (pg's connect() then end() at once): the peer's close answers it.
      if (socket.writableEnded) return pass(this, event, args);
      // Nothing, or (a server that speaks first) its greeting alone: the reset may have lost
      // its refusal.
      const error = hungUp();
      if (event === 'end') {
        socket.destroy(error);
        return true;
      }
      return pass(this, 'error', [error]);
    }
    return pass(this, event, args);
  } as Socket['emit'];
}
