import diagnostics from 'node:diagnostics_channel';
import type http from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  type Attributes,
  type Context,
  type Counter,
  context,
  createContextKey,
  defaultTextMapGetter,
  metrics,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  trace,
} from '@opentelemetry/api';
import { PicopError } from '@picop/codec';
import { DEFAULT_FIELD_NAME } from './constants.js';
import { getEnvId, setEnvId } from './env-id.js';

// Shared by every copy of this module in a process (its ESM and CommonJS builds): a guard made
// with one turns on the marks of wrappers that load the other.
const ROUTED = createContextKey('picop.routed');
const GUARDS = Symbol.for('picop.guards');
const WARNED = Symbol.for('picop.guard.warned');
const COVERED = Symbol.for('picop.covered');
const ROUTED_ATTRIBUTE = 'picop.routed';
type Global = { [GUARDS]?: number; [WARNED]?: Set<string>; [COVERED]?: Set<string> };

/**
 * Records that a `@picop` package routes `what` in this process (a library's name, or
 * `perEnvironment`, `createAgent`): {@link PicopGuard}'s start-up check does not warn about it.
 */
export function coverLibrary(what: string): void {
  const global = globalThis as Global;
  global[COVERED] ??= new Set();
  global[COVERED].add(what);
}

/**
 * Client libraries that reach their servers without PiCoP unless a `@picop` package routes them:
 * the library, what covers it (see {@link coverLibrary}), and the fix a warning names.
 */
const KNOWN_CLIENTS: ReadonlyArray<readonly [library: string, coveredBy: string, fix: string]> = [
  ['pg', 'pg', 'use @picop/pg'],
  ['mysql2', 'mysql2', 'use @picop/mysql'],
  ['ioredis', 'ioredis', 'use @picop/redis'],
  ['redis', 'redis', 'use @picop/node-redis'],
  ['amqplib', 'amqplib', 'use @picop/amqp'],
  ['mqtt', 'mqtt', 'use @picop/mqtt'],
  ['knex', 'perEnvironment', "make one per environment with @picop/net-wrap's perEnvironment"],
  ['sequelize', 'perEnvironment', "make one per environment with @picop/net-wrap's perEnvironment"],
  [
    'pg-promise',
    'perEnvironment',
    "make one per environment with @picop/net-wrap's perEnvironment",
  ],
  [
    '@prisma/client',
    'perEnvironment',
    "make one per environment with @picop/net-wrap's perEnvironment",
  ],
  ['bullmq', 'bullmq', 'use @picop/bullmq'],
  ['bee-queue', 'bee-queue', 'its jobs carry no Env-Id: put one in their data'],
  ['undici', 'undici', "give it @picop/fetch's dispatcher"],
  ['axios', 'createAgent', "give it @picop/net-wrap's createAgent"],
  ['kafkajs', 'kafkajs', 'no @picop package routes it: its messages run in the baseline'],
  ['mongodb', 'mongodb', 'no @picop package routes it: its queries go to the baseline'],
];

/** Emits a `PicopWarning` once per process for each `key`, however many guards see it. */
function warnOnce(key: string, message: string, code: string): void {
  const global = globalThis as Global;
  global[WARNED] ??= new Set();
  if (global[WARNED].has(key)) return;
  global[WARNED].add(key);
  process.emitWarning(message, { type: 'PicopWarning', code });
}

/** Whether a {@link PicopGuard} is running in this process (the wrappers mark their work then). */
export function guarded(): boolean {
  return ((globalThis as Global)[GUARDS] ?? 0) > 0;
}

// Contexts are immutable and a request's is reused for each of its calls: its mark is made once.
const marked = new WeakMap<Context, Context>();

/**
 * Runs `fn` (a library call a `@picop/*` wrapper has routed) in the active context marked as
 * routed, so that a {@link PicopGuard} passes the spans the library's instrumentation starts in
 * it. Without a guard it only calls `fn`.
 */
export function inRouted<A extends unknown[], R>(
  fn: (...args: A) => R,
  thisArg: unknown,
  ...args: A
): R {
  if (!guarded()) return fn.apply(thisArg, args);
  const active = context.active();
  let routed = marked.get(active);
  if (routed === undefined) {
    routed = active.setValue(ROUTED, true);
    marked.set(active, routed);
  }
  return context.with(routed, fn, thisArg, ...args);
}

/**
 * Marks the active span as routed: for code that runs inside the span an instrumentation started
 * (an HTTP agent picking the connection of a request).
 */
export function markActiveSpanRouted(): void {
  if (guarded()) trace.getActiveSpan()?.setAttribute(ROUTED_ATTRIBUTE, true);
}

/** What a {@link PicopGuard} sees of a span: the parts of the SDK's `Span` it reads. */
export interface GuardedSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly attributes: Attributes;
  readonly instrumentationScope?: { name: string };
  /** OpenTelemetry SDK 1.x's name for `instrumentationScope`. */
  readonly instrumentationLibrary?: { name: string };
}

/** An operation of a non-baseline environment that no PiCoP wrapper routed. */
export interface UnroutedOperation {
  /** `db.system.name` / `db.system`, `messaging.system`, `rpc.system`, or `http`. */
  system: string;
  envId: string;
  /** The span's name. */
  operation: string;
  /** The instrumentation that made the span. */
  instrumentation: string | undefined;
}

/** Options of {@link PicopGuard}. */
export interface PicopGuardOptions {
  /**
   * `'warn'`: one warning per system and environment (`process.emitWarning`, code
   * `PICOP_UNROUTED`). `'throw'` (for tests and CI): also throws `ERR_PICOP_UNROUTED` from the
   * span's start, so the operation fails where the instrumentation lets the error through (HTTP
   * client spans, known only at their end, are recorded and warned).
   * @default 'warn'
   */
  mode?: 'warn' | 'throw';
  /** Work with this Env-Id is the baseline's: never flagged. @default 'main' */
  baselineEnvId?: string;
  /**
   * At the first span, warn once for each client library loaded in the process that no `@picop`
   * package routes (pg without `@picop/pg`, knex without `perEnvironment`, ...).
   * @default true
   */
  checkModules?: boolean;
}

/** Node's diagnostics channel of every HTTP request a server starts on. */
const REQUEST_START = 'http.server.request.start';
interface RequestStart {
  request: http.IncomingMessage;
  server: http.Server;
}

/** Operations {@link PicopGuard.unrouted} keeps (the first ones). */
const KEPT = 1000;

/** The `@picop` package that routes a system's clients. */
const FIX: Record<string, string> = {
  postgresql: '@picop/pg (knex, Sequelize, pg-promise: the per-environment recipes)',
  mysql: '@picop/mysql (knex, Sequelize: the per-environment recipes)',
  mariadb: '@picop/mysql (knex, Sequelize: the per-environment recipes)',
  redis: '@picop/redis',
  rabbitmq: '@picop/amqp',
  mqtt: '@picop/mqtt',
  http: "@picop/fetch's dispatcher or @picop/net-wrap's createAgent",
};

/**
 * A span processor that sees work leave its environment: a client span of a database, cache,
 * messaging or RPC system (or an HTTP client span), started in a context whose Env-Id is not the
 * baseline's, that no `@picop/*` wrapper routed. Such work goes wherever the unwrapped client
 * points, usually the baseline's store. For each, it warns once per system and environment with the
 * fix, counts `picop.unrouted.operations` (attributes `system`, `env_id`) through the
 * OpenTelemetry metrics API, keeps it in {@link unrouted}, and in `mode: 'throw'` fails the
 * operation. On its first span it also warns when no context manager is registered or the global
 * propagator does not carry the Env-Id. Work with no instrumentation makes no span: the guard
 * cannot see it.
 *
 * @example
 * new NodeSDK({ spanProcessors: [new BatchSpanProcessor(exporter), new PicopGuard()], ... });
 */
export class PicopGuard {
  readonly #throws: boolean;
  readonly #baselineEnvId: string;
  readonly #checkModules: boolean;
  readonly #unrouted: UnroutedOperation[] = [];
  readonly #httpSpans = new WeakMap<GuardedSpan, UnroutedOperation>();
  // A guard given twice to the SDK sees each span twice: reported once.
  readonly #reported = new WeakSet<GuardedSpan>();
  #counter: Counter | undefined;
  #checked = false;
  #active = true;
  readonly #onRequest = (message: unknown) => this.#checkRequest(message as RequestStart);

  constructor(options: PicopGuardOptions = {}) {
    if (options.mode !== undefined && options.mode !== 'warn' && options.mode !== 'throw') {
      throw new PicopError(
        'ERR_PICOP_INVALID_ARG',
        `PicopGuard: mode must be 'warn' or 'throw', not ${JSON.stringify(options.mode)}`,
      );
    }
    this.#throws = options.mode === 'throw';
    this.#baselineEnvId = options.baselineEnvId ?? 'main';
    this.#checkModules = options.checkModules ?? true;
    const global = globalThis as Global;
    global[GUARDS] = (global[GUARDS] ?? 0) + 1;
    diagnostics.subscribe(REQUEST_START, this.#onRequest);
  }

  /** The unrouted operations seen so far (the first 1,000): assert it is empty in a test. */
  get unrouted(): readonly UnroutedOperation[] {
    return this.#unrouted;
  }

  onStart(span: GuardedSpan, parentContext: Context): void {
    if (!this.#checked) this.#checkSetUp();
    if (span.kind !== SpanKind.CLIENT && span.kind !== SpanKind.PRODUCER) return;
    if (parentContext.getValue(ROUTED) !== undefined) return;
    const envId = getEnvId(parentContext);
    if (envId === undefined || envId === this.#baselineEnvId) return;
    const attributes = span.attributes ?? {};
    const system =
      attributes['db.system.name'] ??
      attributes['db.system'] ??
      attributes['messaging.system'] ??
      attributes['rpc.system'];
    const operation: UnroutedOperation = {
      system: String(system ?? 'http'),
      envId,
      operation: span.name,
      instrumentation: (span.instrumentationScope ?? span.instrumentationLibrary)?.name,
    };
    if (system === undefined) {
      // An HTTP client span: our agents mark it once they hold the request, at its end we know.
      if (
        attributes['http.request.method'] !== undefined ||
        attributes['http.method'] !== undefined
      ) {
        this.#httpSpans.set(span, operation);
      }
      return;
    }
    if (this.#reported.has(span)) return;
    this.#reported.add(span);
    const error = this.#report(operation);
    if (this.#throws) throw error;
  }

  onEnd(span: GuardedSpan): void {
    const operation = this.#httpSpans.get(span);
    if (operation === undefined) return;
    this.#httpSpans.delete(span);
    if (span.attributes?.[ROUTED_ATTRIBUTE] !== true) this.#report(operation);
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  /** Stops the guard; the wrappers stop marking their work once no guard is left. */
  shutdown(): Promise<void> {
    if (this.#active) {
      this.#active = false;
      diagnostics.unsubscribe(REQUEST_START, this.#onRequest);
      (globalThis as Global)[GUARDS] = ((globalThis as Global)[GUARDS] ?? 1) - 1;
    }
    return Promise.resolve();
  }

  #report(operation: UnroutedOperation): PicopError {
    const { system, envId, instrumentation } = operation;
    const message = `PiCoP: a ${system} operation ("${operation.operation}") in environment ${JSON.stringify(envId)} went through a client no @picop wrapper routed (span of ${instrumentation ?? 'an unknown instrumentation'}): it reached whatever that client points at, not ${envId}'s store. Use ${FIX[system] ?? 'a @picop wrapper for it'}`;
    if (this.#unrouted.length < KEPT) this.#unrouted.push(operation);
    this.#counter ??= metrics
      .getMeter('@picop/propagator')
      .createCounter('picop.unrouted.operations', {
        description: 'Operations of a non-baseline environment that no PiCoP wrapper routed',
      });
    this.#counter.add(1, { system, env_id: envId });
    warnOnce(`${system}\n${envId}`, message, 'PICOP_UNROUTED');
    return new PicopError('ERR_PICOP_UNROUTED', message);
  }

  // At the first request that names an Env-Id: a server whose handlers no HTTP instrumentation
  // (nor acceptPicop) runs never extracts it, and the request runs in the baseline.
  #checkRequest({ request, server }: RequestStart): void {
    const named =
      request.headers[DEFAULT_FIELD_NAME.toLowerCase()] !== undefined ||
      /(^|[\s,;])env-id\s*=/i.test(String(request.headers.baggage ?? ''));
    if (!named) return;
    diagnostics.unsubscribe(REQUEST_START, this.#onRequest);
    const emit = server.emit as { __wrapped?: boolean };
    if (emit.__wrapped === true || Object.hasOwn(server, 'emit')) return;
    warnOnce(
      'http-not-instrumented',
      "PiCoP: a request named an Env-Id, but no HTTP instrumentation runs this server's handlers: the Env-Id was not extracted, and the request runs in the baseline. Give the NodeSDK the HttpInstrumentation; an ES module app also registers OpenTelemetry's loader hook first (register('@opentelemetry/instrumentation/hook.mjs', import.meta.url) in a file loaded with node --import)",
      'PICOP_HTTP_NOT_INSTRUMENTED',
    );
  }

  // Once, at the first span (the SDK has started): the set-up mistakes that lose every Env-Id.
  #checkSetUp(): void {
    this.#checked = true;
    const probe = setEnvId(ROOT_CONTEXT, 'picop-probe');
    if (!context.with(probe, () => context.active() === probe)) {
      warnOnce(
        'no-context-manager',
        'PiCoP: no OpenTelemetry context manager is registered: every request runs with no Env-Id, in the baseline. Start the NodeSDK (it registers one), or context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())',
        'PICOP_NO_CONTEXT_MANAGER',
      );
    }
    // An incoming request's `Env-Id` header, as Node's http module gives it.
    const carrier = { [DEFAULT_FIELD_NAME.toLowerCase()]: 'picop-probe' };
    const extracted = propagation.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
    if (getEnvId(extracted) !== 'picop-probe') {
      warnOnce(
        'no-propagator',
        'PiCoP: the global propagator does not read the Env-Id header (EnvIdPropagator is not in it): incoming requests run in the baseline. Give the NodeSDK textMapPropagator: new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new EnvIdPropagator()] })',
        'PICOP_NO_ENV_ID_PROPAGATOR',
      );
    }
    if (this.#checkModules) checkLoadedClients();
  }
}

/** Warns once for each known client library loaded (as CommonJS, or imported) and not routed. */
function checkLoadedClients(): void {
  const loaded = Object.keys(createRequire(join(process.cwd(), 'picop.js')).cache);
  const covered = (globalThis as Global)[COVERED] ?? new Set();
  for (const [library, coveredBy, fix] of KNOWN_CLIENTS) {
    if (covered.has(coveredBy)) continue;
    const marker = `/node_modules/${library}/`;
    if (!loaded.some((file) => file.replaceAll('\\', '/').includes(marker))) continue;
    warnOnce(
      `module:${library}`,
      `PiCoP: ${library} is loaded, and no @picop package routes it: its work goes wherever its connections point (usually the baseline), whatever the request's environment. To route it, ${fix}. (PicopGuard({ checkModules: false }) turns this check off.)`,
      'PICOP_UNROUTED_MODULE',
    );
  }
}
