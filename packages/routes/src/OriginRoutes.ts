import { EventEmitter } from 'node:events';
import { originMatcher } from './origin-patterns.js';
import { type Route, Routes, type RoutesOptions } from './Routes.js';

/** `protocol//host:port` of a URL, the port always written (`http://orders:80`). */
export function originOf(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
}

/** Origins whose answer {@link OriginRoutes.speaksPicop} keeps; past it the cache starts anew. */
const MAX_CACHED_ORIGINS = 1024;

/**
 * The routes of an HTTP client, one {@link Routes} per service it calls: `'http://orders:8080'` to
 * that service's routes; and which origins speak PiCoP: those matching `origins` (patterns such as
 * `*.svc.cluster.local`) and the routed ones. Emits `'change'` and `'error'` of any routes.
 *
 * @example
 * const routes = new OriginRoutes({ 'http://orders:8080': { table: { 'feature-1': 'orders-f1:8080' } } });
 * routes.destination('http://orders:8080', 'feature-1'); // { host: 'orders-f1', port: 8080, header: false }
 */
export class OriginRoutes extends EventEmitter<{ change: []; error: [err: Error] }> {
  readonly #byOrigin = new Map<string, Routes>();
  readonly #matches: (origin: string) => boolean;
  readonly #speaks = new Map<string, boolean>();

  /** Throws `ERR_PICOP_INVALID_ARG` for bad options, as {@link Routes} does, or a bad pattern. */
  constructor(byOrigin: Record<string, RoutesOptions> = {}, origins: readonly string[] = []) {
    super();
    this.#matches = originMatcher(origins);
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

  /**
   * Whether connections to `url`'s origin start with the PiCoP header: it matches `origins`, or it
   * is routed. Any other origin gets the bytes it would get without PiCoP.
   */
  speaksPicop(url: string): boolean {
    let speaks = this.#speaks.get(url);
    if (speaks === undefined) {
      const origin = originOf(url);
      speaks = this.#byOrigin.has(origin) || this.#matches(origin);
      if (this.#speaks.size >= MAX_CACHED_ORIGINS) this.#speaks.clear();
      this.#speaks.set(url, speaks);
    }
    return speaks;
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
