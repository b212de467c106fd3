import type { PicopWrapperOptions } from '@picop/net-wrap';
import type { Options } from 'amqplib';

/** The `picop` key of the socket options. */
export interface PicopAmqpOptions extends PicopWrapperOptions {
  /**
   * Most environments with a connection at once; past it the least recently used idle one (no
   * open channel) is closed.
   * @default 32
   */
  maxConnections?: number;
  /**
   * Selective consumption: a consumer handles only the messages of its own environment (`envId` /
   * `PICOP_ENV_ID`), and a baseline consumer (no `envId`, or one equal to `baselineEnvId`) handles
   * messages without Env-Id and those of environments not in `ownConsumers`. Every other message
   * is acknowledged without calling the handler: each environment's consumers must read their own
   * queue bound to the same exchange, so every queue gets a copy and exactly one consumer acts.
   * @default false
   */
  selective?: boolean;
  /** Environments that run their own consumers (selective mode). A function is asked per message. */
  ownConsumers?: Iterable<string> | (() => Iterable<string>);
  /**
   * The Env-Id of the baseline deployment (selective mode).
   * @default 'main'
   */
  baselineEnvId?: string;
}

/** amqplib's socket options plus `picop` (`false` turns PiCoP off: plain amqplib). */
export type PicopSocketOptions = Record<string, unknown> & {
  picop?: PicopAmqpOptions | false;
  /** amqplib 2.x connection recovery; each new connection carries the header. */
  recovery?: unknown;
};

/** A URL string or amqplib's object form. */
export type AmqpUrl = string | Options.Connect;
