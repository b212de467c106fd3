import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { context, type TextMapPropagator } from '@opentelemetry/api';
import { type Dialect, PICOP_GO_PREFIX_LENGTH, SPEC_PREFIX_LENGTH } from '@picop/codec';
import { headerForContext } from '@picop/propagator';
import { connect, connectTls } from './client.js';
import { refuseDirect } from './wrapper-options.js';

/** Options of {@link createAgent} and {@link createHttpsAgent}, on top of Node's agent options. */
export interface PicopAgentOptions {
  /** @default `EnvIdPropagator` alone */
  propagator?: TextMapPropagator;
  /** @default 'spec' */
  dialect?: Dialect;
}

// The header is fixed on the request's options the first time the agent names its pool, while
// http.request() runs in the caller's context. Node hands the same options object (or a spread
// copy, which keeps symbol keys) to every later getName and createConnection of that request.
const HEADER = Symbol('picop.header');
type WithHeader = { [HEADER]?: Buffer };

function poolName(base: string, options: WithHeader, picop: PicopAgentOptions): string {
  let header = options[HEADER];
  if (header === undefined) {
    header = headerForContext(context.active(), picop);
    options[HEADER] = header;
  }
  // Readable pool names: "host:port::picop=Env-Id:feature-1".
  const prefix = picop.dialect === 'picop-go' ? PICOP_GO_PREFIX_LENGTH : SPEC_PREFIX_LENGTH;
  return `${base}:picop=${header.length > prefix ? header.toString('latin1', prefix) : ''}`;
}

type AgentClass = typeof http.Agent | typeof https.Agent;

/** `Base` with one keep-alive pool per context, its sockets opened by `open` with the header. */
function picopAgent<B extends AgentClass>(Base: B, open: (options: object) => Duplex) {
  return class PicopAgent extends (Base as typeof http.Agent) {
    readonly #picop: PicopAgentOptions;
    constructor(options: http.AgentOptions & PicopAgentOptions) {
      const { propagator, dialect, ...agentOptions } = options;
      // Plain JavaScript may pass them: refused, never ignored (@picop/fetch routes HTTP).
      refuseDirect(options, 'The http agent of @picop/net-wrap (use @picop/fetch for routes)');
      super({ keepAlive: true, ...agentOptions });
      this.#picop = { propagator, dialect };
    }
    override getName(options: http.ClientRequestArgs & WithHeader = {}): string {
      return poolName(super.getName(options), options, this.#picop);
    }
    override createConnection(options: http.ClientRequestArgs & WithHeader): Duplex {
      return open({ ...(options as object), header: options[HEADER] });
    }
  };
}

const PicopHttpAgent = picopAgent(http.Agent, (o) => connect(o as Parameters<typeof connect>[0]));
const PicopHttpsAgent = picopAgent(https.Agent, (o) =>
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
