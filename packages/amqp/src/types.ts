import type { PicopWrapperOptions, SelectiveOptions } from '@picop/net-wrap/internal';
import type { Options } from 'amqplib';

/** The `picop` key of the socket options. */
export interface PicopAmqpOptions extends PicopWrapperOptions, SelectiveOptions {
  /** @deprecated since 0.2.0, removed in 0.3.0: `maxPools`. */
  maxConnections?: number;
  /** Logical isolation on the client's own broker: see {@link AmqpIsolation}. */
  isolate?: AmqpIsolation;
}

/** Each environment in a virtual host of its own on the one broker; the baseline keeps the URL's. */
export interface AmqpIsolation {
  /**
   * The virtual host of an environment (its Env-Id checked first: letters, digits, `_`, `-`);
   * `undefined`: the baseline's.
   */
  vhost: (envId: string) => string | undefined;
  /**
   * Runs before an environment's connection opens (e.g. the management API's
   * `PUT /api/vhosts/{vhost}` and its permissions); never implicit. A failure fails that
   * environment's channel, and the next use tries again.
   */
  create?: (environment: { envId: string; vhost: string }) => Promise<void>;
}

/** amqplib's socket options plus `picop` (`false` turns PiCoP off: plain amqplib). */
export type PicopSocketOptions = Record<string, unknown> & {
  picop?: PicopAmqpOptions | false;
  /** amqplib 2.x connection recovery; each new connection carries the header. */
  recovery?: unknown;
};

/** A URL string or amqplib's object form. */
export type AmqpUrl = string | Options.Connect;
