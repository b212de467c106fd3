import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { PicopError } from '@picop/codec';
import { parseAddress } from './address.js';
import { RoutesFile } from './RoutesFile.js';
import { RouteTable } from './RouteTable.js';
import { routesValue } from './routes-value.js';

/** Where one environment's connections go when a client routes them itself. */
export interface Route {
  host: string;
  port: number;
  /** Whether the connection starts with the PiCoP header (a PiCoP-aware service wants it). */
  header: boolean;
}

/** A route of the `table` form: `"host:port"`, or with its own `header` choice. */
export type RouteInit = string | { destination: string; header?: boolean };

/**
 * Proxyless routing: where a client sends each environment's connections. Exactly one source:
 * `table`, `file` or `url`. Environments without a route, and work without an Env-Id, use the
 * client's own address (its config's host and port), as a picop-proxy uses its default route.
 */
export interface RoutesOptions {
  /** Env-Id to `"host:port"` (or `{ destination, header }`). */
  table?: Record<string, RouteInit>;
  /**
   * A routes file in picop-proxy's `--routes-file` format (`{"env": "host:port"}` or
   * `[{"env_id", "destination"}]`), watched: one ConfigMap can feed the proxies and the clients.
   */
  file?: string;
  /** A picop-proxy admin address (`http://proxy-admin:9901`): its `GET /routes`, polled. */
  url?: string;
  /** Bearer token of the admin API (`url`). */
  token?: string;
  /**
   * How often `url` is read again.
   * @default 5000
   */
  pollIntervalMs?: number;
  /**
   * Whether connections start with the PiCoP header (a route of `table` may say otherwise).
   * @default false (a database, a cache, a broker: they do not read it)
   */
  header?: boolean;
}

/** Longest answer of an admin API read for routes. */
const MAX_ROUTES_BODY_BYTES = 4 * 1024 * 1024;
const POLL_TIMEOUT_MS = 10_000;

// The admin API is read with agents of our own, never the global ones: a process whose global
// dispatcher or agent adds the PiCoP header must still reach it with plain HTTP.
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 4 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 4 }),
};

/** The JSON body of a `GET url` (with `headers`), over a plain connection. */
function getJson(url: string, headers: http.OutgoingHttpHeaders): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const protocol = new URL(url).protocol as keyof typeof agents;
    const get = protocol === 'https:' ? https.get : http.get;
    const req = get(url, { agent: agents[protocol], headers, timeout: POLL_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      let length = 0;
      res.on('data', (chunk: Buffer) => {
        length += chunk.length;
        if (length > MAX_ROUTES_BODY_BYTES) {
          req.destroy(new Error(`answered more than ${MAX_ROUTES_BODY_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`answered ${res.statusCode}`));
          return;
        }
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          reject(new Error(`answered a body that is not JSON (${(err as Error).message})`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${POLL_TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

/**
 * A client's routes, kept current: a table, a watched routes file, or a proxy's admin API read
 * every `pollIntervalMs`. Emits `'change'` when a reload changes them, and `'error'` when one
 * fails (the last good routes stay). Throws `ERR_PICOP_INVALID_ARG` for bad options or a bad
 * file or table at the start.
 *
 * @example
 * const routes = new Routes({ table: { 'feature-1': '10.0.0.6:3306' } });
 * routes.get('feature-1'); // { host: '10.0.0.6', port: 3306, header: false }
 */
export class Routes extends EventEmitter<{ change: []; error: [err: Error] }> {
  readonly #header: boolean;
  readonly #headers = new Map<string, boolean>();
  readonly #table = new RouteTable();
  readonly #file: RoutesFile | undefined;
  readonly #url: string | undefined;
  readonly #token: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #loaded: boolean;
  #failures = 0;
  #closed = false;

  constructor(options: RoutesOptions) {
    super();
    const sources = (['table', 'file', 'url'] as const).filter((k) => options[k] !== undefined);
    if (sources.length !== 1) {
      throw new PicopError(
        'ERR_PICOP_INVALID_ARG',
        `\`routes\` takes exactly one of \`table\`, \`file\` or \`url\`, got ${sources.length === 0 ? 'none' : sources.join(' and ')}`,
      );
    }
    this.#header = options.header ?? false;
    this.#loaded = options.url === undefined;
    if (options.table !== undefined) {
      const table: Record<string, string> = {};
      for (const [envId, init] of Object.entries(options.table)) {
        table[envId] = typeof init === 'string' ? init : init.destination;
        if (typeof init !== 'string' && init.header !== undefined)
          this.#headers.set(envId, init.header);
      }
      this.#table.replace(table);
    }
    if (options.file !== undefined) {
      this.#file = new RoutesFile(options.file, this.#table);
      this.#file.on('reload', () => this.emit('change'));
      this.#file.on('error', (err) => this.#failed(err));
    }
    if (options.url !== undefined) {
      if (!/^https?:\/\/[^/]/i.test(options.url) || !URL.canParse(options.url)) {
        throw new PicopError(
          'ERR_PICOP_INVALID_ARG',
          `\`routes.url\` must be an http:// or https:// address (a picop-proxy's admin), got ${JSON.stringify(options.url)}`,
        );
      }
      this.#url = `${options.url.replace(/\/+$/, '')}/routes`;
      this.#token = options.token;
      const every = options.pollIntervalMs ?? 5000;
      if (!(every > 0)) {
        throw new PicopError('ERR_PICOP_INVALID_ARG', '`pollIntervalMs` must be > 0');
      }
      void this.#poll();
      this.#timer = setInterval(() => void this.#poll(), every);
      this.#timer.unref();
    }
  }

  /**
   * The route of `envId`, or `undefined` when it has none (the client's own address). Throws
   * `ERR_PICOP_INVALID_STATE` while routes from `url` have not been read yet: a connection is
   * never opened to a guess. Work without an Env-Id (`undefined`) has no route.
   */
  get(envId: string | undefined): Route | undefined {
    if (envId === undefined) return undefined;
    if (!this.#loaded) {
      throw new PicopError(
        'ERR_PICOP_INVALID_STATE',
        `The routes from ${this.#url} have not been read yet${this.#failures > 0 ? ` (${this.#failures} attempts failed)` : ''}`,
      );
    }
    const address = this.#table.get(envId);
    if (address === undefined) return undefined;
    return { ...address, header: this.#headers.get(envId) ?? this.#header };
  }

  /** Whether connections to the client's own address carry the header. */
  get header(): boolean {
    return this.#header;
  }

  /** Whether the routes have been read (only `url` routes start unread). */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** Reloads that failed so far (bad file, unreachable or bad admin API). */
  get failures(): number {
    return this.#failures;
  }

  /** Stops watching and polling. */
  close(): void {
    this.#closed = true;
    this.#file?.close();
    clearInterval(this.#timer);
  }

  #failed(err: Error): void {
    this.#failures++;
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  async #poll(): Promise<void> {
    const url = this.#url as string;
    let routes: Record<string, string>;
    try {
      const body = (await getJson(
        url,
        this.#token === undefined ? {} : { authorization: `Bearer ${this.#token}` },
      )) as { routes?: unknown } | null;
      routes = routesValue(body?.routes ?? {}, `The routes from ${url}`);
      // Validates every entry before anything changes.
      for (const destination of Object.values(routes)) parseAddress(destination, url);
    } catch (err) {
      if (!this.#closed)
        this.#failed(
          new PicopError('ERR_PICOP_INVALID_STATE', `${url}: ${(err as Error).message}`),
        );
      return;
    }
    if (this.#closed) return;
    const before = JSON.stringify(this.#table.toJSON());
    this.#table.replace(routes);
    const first = !this.#loaded;
    this.#loaded = true;
    if (first || JSON.stringify(this.#table.toJSON()) !== before) this.emit('change');
  }
}
