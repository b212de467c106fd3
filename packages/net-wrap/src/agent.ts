import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { context, diag, type TextMapPropagator } from '@opentelemetry/api';
import { type Dialect, PICOP_GO_PREFIX_LENGTH, SPEC_PREFIX_LENGTH } from '@picop/codec';
import { getEnvId, headerForContext } from '@picop/propagator';
import { coverLibrary, markActiveSpanRouted } from '@picop/propagator/internal';
import { OriginRoutes, type Routes, type RoutesOptions } from '@picop/routes';
import { connect, connectTls } from './client.js';
import { type PicopWrapperOptions, picopOrigins, refuseDirect } from './wrapper-options.js';

/** Options of {@link createAgent} and {@link createHttpsAgent}, on top of Node's agent options. */
export interface PicopAgentOptions {
  /** @default `EnvIdPropagator` alone */
  propagator?: TextMapPropagator;
  /** @default 'spec' */
  dialect?: Dialect;
  /**
   * The hosts that speak PiCoP (picop-proxies, `acceptPicop` services): patterns such as
   * `'*.svc.cluster.local'`, `'orders:8080'`, `'https://payments:*'`. Requests to them are pooled
   * per environment, each socket starting with its header; requests to any other host use plain
   * sockets, exactly as Node's own agent would. Required unless `PICOP_ORIGINS` is set or
   * `routes` lists every origin to reach.
   * @default process.env.PICOP_ORIGINS
   */
  origins?: string | readonly string[];
  /**
   * Proxyless routing, per service: requests to an origin listed here (`'http://orders:8080'`)
   * connect straight to the environment's route (no header unless the route says so);
   * environments without one go to the URL's own host.
   */
  routes?: Record<string, RoutesOptions>;
}

// The header is fixed on the request's options the first time the agent names its pool, while
// http.request() runs in the caller's context. Node hands the same options object (or a spread
// copy, which keeps symbol keys) to every later getName and createConnection of that request.
const HEADER = Symbol('picop.header');
const ENV_ID = Symbol('picop.envId');
// A request to an origin that does not speak PiCoP: Node's own pool and socket.
const PLAIN = Symbol('picop.plain');
type WithHeader = { [HEADER]?: Buffer; [ENV_ID]?: string; [PLAIN]?: boolean };

function poolName(base: string, options: WithHeader, picop: PicopAgentOptions): string {
  let header = options[HEADER];
  if (header === undefined) {
    header = headerForContext(context.active(), picop);
    options[HEADER] = header;
    options[ENV_ID] = getEnvId();
  }
  // Readable pool names: "host:port::picop=Env-Id:feature-1".
  const prefix = picop.dialect === 'picop-go' ? PICOP_GO_PREFIX_LENGTH : SPEC_PREFIX_LENGTH;
  return `${base}:picop=${header.length > prefix ? header.toString('latin1', prefix) : ''}`;
}

type AgentClass = typeof http.Agent | typeof https.Agent;

/** `scheme//host:port` of a request's options, as `originOf` writes it. */
function originOfRequest(scheme: string, options: http.ClientRequestArgs): string {
  const host = options.hostname ?? options.host ?? 'localhost';
  const port = Number(options.port) || (scheme === 'https:' ? 443 : 80);
  return `${scheme}//${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** `Base` with one keep-alive pool per context, its sockets opened by `open` with the header. */
function picopAgent<B extends AgentClass>(
  Base: B,
  scheme: 'http:' | 'https:',
  open: (options: object) => Duplex,
) {
  return class PicopAgent extends (Base as typeof http.Agent) {
    readonly #picop: PicopAgentOptions;
    readonly #routes: OriginRoutes;
    constructor(options: http.AgentOptions & PicopAgentOptions) {
      const { propagator, dialect, routes, origins, ...agentOptions } = options;
      const what = 'The http agent of @picop/net-wrap';
      // Plain JavaScript may pass it: refused, never ignored.
      refuseDirect(options as PicopWrapperOptions, what, ['isolate']);
      const picopOriginList = picopOrigins(origins, routes, what, 'origins');
      super({ keepAlive: true, ...agentOptions });
      coverLibrary('createAgent');
      this.#picop = { propagator, dialect };
      this.#routes = new OriginRoutes(routes, picopOriginList);
      // Kept-alive sockets may lead to a former destination: closed; those in use finish.
      this.#routes.on('change', () => {
        for (const sockets of Object.values(this.freeSockets)) {
          for (const socket of sockets ?? []) socket.destroy();
        }
      });
      this.#routes.on('error', (err) =>
        diag.warn(`picop: routes kept as they were: ${err.message}`),
      );
    }
    override getName(options: http.ClientRequestArgs & WithHeader = {}): string {
      // Called as the request is made, inside the HTTP instrumentation's span.
      markActiveSpanRouted();
      if (options[PLAIN] === undefined) {
        options[PLAIN] = !this.#routes.speaksPicop(originOfRequest(scheme, options));
      }
      if (options[PLAIN]) return super.getName(options);
      return poolName(super.getName(options), options, this.#picop);
    }
    override createConnection(
      options: http.ClientRequestArgs & WithHeader,
      callback?: (err: Error | null, socket: Duplex) => void,
    ): Duplex | null | undefined {
      if (options[PLAIN]) return super.createConnection(options, callback);
      const host = options.hostname ?? options.host ?? 'localhost';
      // Throws while the routes of a `url` are unread: the request fails, never goes elsewhere.
      const routed = this.#routes.destination(originOfRequest(scheme, options), options[ENV_ID]);
      if (routed === undefined) return open({ ...(options as object), header: options[HEADER] });
      return open({
        ...(options as object),
        host: routed.host,
        port: routed.port,
        servername: host,
        header: routed.header ? options[HEADER] : Buffer.alloc(0),
      });
    }
    /** The routes of a routed origin: `failures` counts reloads that failed. */
    routesOf(origin: string): Routes | undefined {
      return this.#routes.of(origin);
    }
    override destroy(): void {
      this.#routes.close();
      super.destroy();
    }
  };
}

const PicopHttpAgent = picopAgent(http.Agent, 'http:', (o) =>
  connect(o as Parameters<typeof connect>[0]),
);
const PicopHttpsAgent = picopAgent(https.Agent, 'https:', (o) =>
  connectTls(o as Parameters<typeof connectTls>[0]),
);

/**
 * An `http.Agent` whose connections start with the PiCoP header of the context each request is
 * made in, keeping one keep-alive pool per context: two environments never share a socket, and
 * requests of one environment reuse theirs. Keep-alive is on unless `keepAlive: false` is given;
 * bound the sockets with Node's `maxSockets` / `maxFreeSockets` / `maxTotalSockets`.
 *
 * @example
 * const agent = createAgent();
 * await withEnvId('feature-1', () => fetchJson('http://svc-b/items', { agent }));
 */
export function createAgent(options: http.AgentOptions & PicopAgentOptions = {}): http.Agent {
  return new PicopHttpAgent(options);
}

/** {@link createAgent} for HTTPS: the header goes in clear, then TLS over the same socket. */
export function createHttpsAgent(
  options: https.AgentOptions & PicopAgentOptions = {},
): https.Agent {
  return new PicopHttpsAgent(options) as unknown as https.Agent;
}
