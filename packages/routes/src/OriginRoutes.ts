import { EventEmitter } from 'node:events';
import { type Route, Routes, type RoutesOptions } from './Routes.js';

/** `protocol//host:port` of a URL, the port always written (`http://orders:80`). */
export function originOf(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
}

/**
 * The routes of an HTTP client, one {@link Routes} per service it calls: `'http://orders:8080'` to
 * that service's routes. Emits `'change'` and `'error'` of any of them.
 *
 * @example
 * const routes = new OriginRoutes({ 'http://orders:8080': { table: { 'feature-1': 'orders-f1:8080' } } });
 * routes.destination('http://orders:8080', 'feature-1'); // { host: 'orders-f1', port: 8080, header: false }
 */
export class OriginRoutes extends EventEmitter<{ change: []; error: [err: Error] }> {
  readonly #byOrigin = new Map<string, Routes>();

  /** Throws `ERR_PICOP_INVALID_ARG` for bad options, as {@link Routes} does. */
  constructor(byOrigin: Record<string, RoutesOptions> = {}) {
    super();
    for (const [origin, options] of Object.entries(byOrigin)) {
      const routes = new Routes(options);
      routes.on('change', () => this.emit('change'));
      routes.on('error', (err) => {
        if (this.listenerCount('error') > 0) this.emit('error', err);
      });
      this.#byOrigin.set(originOf(origin), routes);
    }
  }

  /** Number of routed origins. */
  get size(): number {
    return this.#byOrigin.size;
  }

  /** The routes of the origin of `url`, if it is routed. */
  of(url: string): Routes | undefined {
    return this.#byOrigin.get(originOf(url));
  }

  /**
   * Where a connection of `envId` to `url`'s origin goes: `undefined` when the origin is not
   * routed; else its route, or the origin's own host, with whether it carries the header. Throws
   * as {@link Routes.get} does while routes from a `url` are unread.
   */
  destination(url: string, envId: string | undefined): Route | undefined {
    const routes = this.of(url);
    if (routes === undefined) return undefined;
    const route = routes.get(envId);
    if (route !== undefined) return route;
    const u = new URL(originOf(url));
    return {
      host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(u.port),
      header: routes.header,
    };
  }

  /** Stops watching and polling. */
  close(): void {
    for (const routes of this.#byOrigin.values()) routes.close();
  }
}
