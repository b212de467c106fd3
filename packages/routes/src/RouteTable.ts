import { envIdProblem, PicopError } from '@picop/codec';
import { type Address, formatAddress, parseAddress } from './address.js';

/**
 * The proxy's routes: Env-Id -> destination, and the default route for connections without a
 * header, without Env-Id or with an Env-Id that has no route. Changes apply to new connections.
 */
export class RouteTable {
  #routes = new Map<string, Address>();
  #default: Address | undefined;

  constructor(routes: Record<string, string | Address> = {}, defaultRoute?: string | Address) {
    for (const [envId, destination] of Object.entries(routes)) this.set(envId, destination);
    if (defaultRoute !== undefined) this.setDefault(defaultRoute);
  }

  /** The destination of `envId`, if it has a route. */
  get(envId: string): Address | undefined {
    return this.#routes.get(envId);
  }

  /** Routes `envId` to `destination` (`"host:port"` or `{ host, port }`). Throws `ERR_PICOP_INVALID_ARG`. */
  set(envId: string, destination: string | Address): Address {
    const problem = envIdProblem(envId);
    if (problem !== undefined) {
      throw new PicopError(
        'ERR_PICOP_INVALID_ARG',
        `Route Env-Id ${JSON.stringify(envId)} ${problem}`,
      );
    }
    const address = parseAddress(destination, `The destination of ${envId}`);
    this.#routes.set(envId, address);
    return address;
  }

  /**
   * Replaces every route at once (the default route stays): a connection routed meanwhile sees
   * the old table or the new one, never a mix. Validates everything first; throws
   * `ERR_PICOP_INVALID_ARG` and changes nothing on a bad entry.
   */
  replace(routes: Record<string, string | Address>): void {
    const next = new RouteTable(routes);
    this.#routes = next.#routes;
  }

  delete(envId: string): boolean {
    return this.#routes.delete(envId);
  }

  get default(): Address | undefined {
    return this.#default;
  }

  /** Sets the default route, or removes it with `undefined`. */
  setDefault(destination: string | Address | undefined): void {
    this.#default =
      destination === undefined ? undefined : parseAddress(destination, 'The default route');
  }

  /** The routes as `{ envId: "host:port" }`. */
  toJSON(): Record<string, string> {
    return Object.fromEntries(
      [...this.#routes].map(([envId, address]) => [envId, formatAddress(address)]),
    );
  }

  get size(): number {
    return this.#routes.size;
  }
}
