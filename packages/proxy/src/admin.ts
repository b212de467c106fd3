import http from 'node:http';
import https from 'node:https';
import { equalSecret } from '@picop/cli-kit';
import { isPicopError } from '@picop/codec';
import { type Address, formatAddress } from '@picop/routes';
import { Counter } from 'prom-client';
import type { PicopProxy } from './PicopProxy.js';

const MAX_BODY_BYTES = 1 << 20;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The whole JSON body, where it must be another shape (the Go reference proxy's). */
    readonly body?: unknown,
  ) {
    super(message);
  }
}

// The Go reference proxy's (Echo's) error bodies.
const REFERENCE_ERRORS: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
};

function referenceError(status: number): HttpError {
  const message = REFERENCE_ERRORS[status] ?? 'Internal Server Error';
  return new HttpError(status, 'ERR_REFERENCE', message, { message });
}

/** Options of {@link createAdminServer}. */
export interface AdminOptions {
  /**
   * Bearer token every request needs (`Authorization: Bearer TOKEN`), but `GET /healthz` and
   * `GET /metrics`. Compared in constant time; a missing or wrong one is a 401, counted.
   */
  token?: string;
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/**
 * The admin HTTP API of a proxy: `GET /routes`, `PUT /routes/:envId` `{"destination":"host:port"}`,
 * `DELETE /routes/:envId`; the Go proxy's `PUT /envs` `[{"env_id","destination"}]`,
 * `GET /envs/:envId`, `DELETE /envs/:envId`; the Go reference proxy's own paths under `/admin`
 * (`PUT /admin/envs`, `GET` and `DELETE /admin/env/:envId`, with its shapes); `GET /healthz`;
 * `GET /metrics` (Prometheus). Errors are JSON `{"error":{"code","message"}}` with status 400, 404
 * or 405 (`{"message"}` under `/admin`, as the reference answers).
 *
 * @example
 * const admin = createAdminServer(proxy);
 * admin.listen(9001, '127.0.0.1');
 */
export function createAdminServer(proxy: PicopProxy, options: AdminOptions = {}): http.Server {
  const unauthorized =
    (proxy.registry.getSingleMetric('picop_proxy_admin_unauthorized_total') as
      | Counter
      | undefined) ??
    new Counter({
      name: 'picop_proxy_admin_unauthorized_total',
      help: 'Admin API requests refused for a missing or wrong token.',
      registers: [proxy.registry],
    });
  const listener: http.RequestListener = (req, res) => {
    authorize(req, options.token, unauthorized)
      .then(() => handle(proxy, req))
      .then(({ status, body, type }) => {
        if (body === undefined) res.writeHead(status);
        else res.writeHead(status, { 'content-type': type ?? 'application/json' });
        res.end(
          body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
        );
      })
      .catch((err: unknown) => {
        const e =
          err instanceof HttpError
            ? err
            : isPicopError(err)
              ? new HttpError(400, err.code, err.message)
              : new HttpError(500, 'ERR_INTERNAL', 'internal error');
        res.writeHead(e.status, {
          'content-type': 'application/json',
          ...(e.status === 401 ? { 'www-authenticate': 'Bearer' } : {}),
        });
        res.end(JSON.stringify(e.body ?? { error: { code: e.code, message: e.message } }));
      });
  };
  return options.tls === undefined
    ? http.createServer(listener)
    : https.createServer({ cert: options.tls.cert, key: options.tls.key }, listener);
}

/** Resolves when the request may go on: a valid token, or no token needed. */
async function authorize(
  req: http.IncomingMessage,
  token: string | undefined,
  unauthorized: Counter,
): Promise<void> {
  if (token === undefined) return;
  const path = new URL(req.url ?? '/', 'http://admin').pathname;
  if (req.method === 'GET' && (path === '/healthz' || path === '/metrics')) return;
  const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
  if (given !== undefined && equalSecret(given, token)) return;
  unauthorized.inc();
  throw new HttpError(401, 'ERR_UNAUTHORIZED', 'A valid "Authorization: Bearer" token is needed');
}

interface Reply {
  status: number;
  body?: unknown;
  type?: string;
}

async function handle(proxy: PicopProxy, req: http.IncomingMessage): Promise<Reply> {
  const url = new URL(req.url ?? '/', 'http://admin');
  let parts: string[];
  try {
    parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw new HttpError(400, 'ERR_BAD_REQUEST', `Bad percent-encoding in ${url.pathname}`);
  }
  const method = req.method ?? 'GET';
  if (parts[0] === 'admin') return handleReference(proxy, req, method, parts.slice(1));
  const [resource, envId, extra] = parts;
  if (extra !== undefined)
    throw new HttpError(404, 'ERR_NOT_FOUND', `No such path ${url.pathname}`);

  if (resource === 'healthz' && envId === undefined) {
    allow(method, ['GET']);
    return { status: 200, body: { status: 'ok', connections: proxy.connections } };
  }
  if (resource === 'metrics' && envId === undefined) {
    allow(method, ['GET']);
    return { status: 200, body: await proxy.metrics(), type: proxy.registry.contentType };
  }
  if (resource === 'routes') {
    if (envId === undefined) {
      allow(method, ['GET']);
      return { status: 200, body: routesJson(proxy) };
    }
    allow(method, ['GET', 'PUT', 'DELETE']);
    if (method === 'PUT') {
      const body = await readJson(req);
      const destination = (body as { destination?: unknown } | null)?.destination;
      if (typeof destination !== 'string') {
        throw new HttpError(400, 'ERR_BAD_REQUEST', 'Body must be {"destination":"host:port"}');
      }
      return {
        status: 200,
        body: { envId, destination: formatAddress(proxy.routes.set(envId, destination)) },
      };
    }
    return routeOf(proxy, method, envId, (destination) => ({ envId, destination }));
  }
  if (resource === 'envs') {
    if (envId === undefined) {
      allow(method, ['PUT']);
      const body = await readJson(req);
      if (!Array.isArray(body)) {
        throw new HttpError(
          400,
          'ERR_BAD_REQUEST',
          'Body must be [{"env_id":"...","destination":"host:port"}]',
        );
      }
      // Validate everything first: one bad entry changes nothing.
      const entries = body.map((item: unknown) => {
        const { env_id, destination } = (item ?? {}) as { env_id?: unknown; destination?: unknown };
        if (typeof env_id !== 'string' || typeof destination !== 'string') {
          throw new HttpError(
            400,
            'ERR_BAD_REQUEST',
            'Each entry needs string "env_id" and "destination"',
          );
        }
        return [env_id, destination] as const;
      });
      // One replace: every entry checked (its own address included) before anything changes.
      proxy.routes.replace({ ...proxy.routes.toJSON(), ...Object.fromEntries(entries) });
      return {
        status: 200,
        body: entries.map(([env_id, destination]) => ({ env_id, destination })),
      };
    }
    allow(method, ['GET', 'DELETE']);
    return routeOf(proxy, method, envId, (destination) => ({ env_id: envId, destination }));
  }
  throw new HttpError(404, 'ERR_NOT_FOUND', `No such path ${url.pathname}`);
}

/**
 * The Go reference proxy's admin API, path for path and byte for byte, so that its controller
 * (picop-rd/proxy-controller) can drive this proxy: `PUT /admin/envs` `[{"env_id","destination"}]`
 * (upsert; 200, empty body), `GET /admin/env/:envId` (200 `{"env_id","destination"}`, 404
 * `{"message":"Not Found"}`), `DELETE /admin/env/:envId` (200, empty body, also when absent).
 */
async function handleReference(
  proxy: PicopProxy,
  req: http.IncomingMessage,
  method: string,
  parts: string[],
): Promise<Reply> {
  const [resource, envId, extra] = parts;
  if (resource === 'envs' && envId === undefined) {
    if (method !== 'PUT') throw referenceError(405);
    const body = await readJson(req).catch(() => {
      throw referenceError(400);
    });
    if (!Array.isArray(body)) throw referenceError(400);
    const entries = body.map((item: unknown) => {
      const { env_id, destination } = (item ?? {}) as { env_id?: unknown; destination?: unknown };
      if (typeof env_id !== 'string' || typeof destination !== 'string') throw referenceError(400);
      if (env_id === '' || destination === '') throw referenceError(400);
      return [env_id, destination] as const;
    });
    try {
      proxy.routes.replace({ ...proxy.routes.toJSON(), ...Object.fromEntries(entries) });
    } catch {
      throw referenceError(400);
    }
    return { status: 200 };
  }
  if (resource === 'env' && envId !== undefined && extra === undefined) {
    if (method === 'GET') {
      const address = proxy.routes.get(envId);
      if (address === undefined) throw referenceError(404);
      return { status: 200, body: { env_id: envId, destination: formatAddress(address) } };
    }
    if (method === 'DELETE') {
      proxy.routes.delete(envId);
      return { status: 200 };
    }
    throw referenceError(405);
  }
  throw referenceError(404);
}

function routeOf(
  proxy: PicopProxy,
  method: string,
  envId: string,
  shape: (destination: string) => unknown,
): Reply {
  const address: Address | undefined = proxy.routes.get(envId);
  if (address === undefined)
    throw new HttpError(404, 'ERR_NOT_FOUND', `No route for Env-Id ${JSON.stringify(envId)}`);
  if (method === 'DELETE') {
    proxy.routes.delete(envId);
    return { status: 204 };
  }
  return { status: 200, body: shape(formatAddress(address)) };
}

function routesJson(proxy: PicopProxy): unknown {
  const fallback = proxy.routes.default;
  return {
    default: fallback === undefined ? null : formatAddress(fallback),
    routes: proxy.routes.toJSON(),
  };
}

function allow(method: string, methods: string[]): void {
  if (!methods.includes(method)) {
    throw new HttpError(
      405,
      'ERR_METHOD_NOT_ALLOWED',
      `${method} is not allowed here; use ${methods.join(' or ')}`,
    );
  }
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(400, 'ERR_BAD_REQUEST', 'Body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'ERR_BAD_REQUEST', 'Body is not valid JSON');
  }
}
