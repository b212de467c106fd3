import { envIdProblem, PicopError } from '@picop/codec';
import { type Address, formatAddress, parseAddress } from './address.js';

/**
 * The proxy's routes: Env-Id -> destination, and the default route for connections without a
 * header, without Env-Id or with an Env-Id that has no route. Changes apply to new connections.
 */
export class RouteTable {
  #routes = new Map<string, Address>();
  #default: Address | undefined;
  /**
   * Called with every destination before it is set (routes and default); throws to refuse it.
   * A proxy refuses its own address here.
   */
  check: ((destination: Address, what: string) => void) | undefined;
  /** Called after every change (a route set, replaced or deleted, the default route set). */
  onChange: (() => void) | undefined;

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
    const what = `The destination of ${envId}`;
    const address = parseAddress(destination, what);
    this.check?.(address, what);
    this.#routes.set(envId, address);
    this.onChange?.();
    return address;
  }

  /**
   * Replaces every route at once (the default route stays): a connection routed meanwhile sees
   * the old table or the new one, never a mix. Validates everything first; throws
   * `ERR_PICOP_INVALID_ARG` and changes nothing on a bad entry.
   */
  replace(routes: Record<string, string | Address>): void {
    const next = new RouteTable();
    next.check = this.check;
    for (const [envId, destination] of Object.entries(routes)) next.set(envId, destination);
    this.#routes = next.#routes;
    this.onChange?.();
  }

  delete(envId: string): boolean {
    const deleted = this.#routes.delete(envId);
    if (deleted) this.onChange?.();
    return deleted;
  }

  get default(): Address | undefined {
    return this.#default;
  }

  /** Sets the default route, or removes it with `undefined`. */
  setDefault(destination: string | Address | undefined): void {
    const address =
      destination === undefined ? undefined : parseAddress(destination, 'The default route');
    if (address !== undefined) this.check?.(address, 'The default route');
    this.#default = address;
    this.onChange?.();
  }

  /** Every destination: the default route's first, then each route's, with what it is. */
  *destinations(): IterableIterator<[what: string, destination: Address]> {
    if (this.#default !== undefined) yield ['The default route', this.#default];
    for (const [envId, address] of this.#routes) yield [`The destination of ${envId}`, address];
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

// The build renames a class that refers to itself (`_RouteTable`): it keeps its own name.
Object.defineProperty(RouteTable, 'name', { value: 'RouteTable' });
