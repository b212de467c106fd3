import { EventEmitter } from 'node:events';
import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import { PicopError } from '@picop/codec';
import type { ContextPools, PicopPools } from '@picop/net-wrap';
import {
  coverLibrary,
  fallbackEnvId,
  forwardEvents,
  inRouted,
  routeOr,
  selectionOf,
  withFallbackEnvId,
  wrapperPools,
} from '@picop/net-wrap/internal';
import { getEnvId } from '@picop/propagator';
import { defaultConnectionPropagator } from '@picop/propagator/internal';
import type {
  Channel,
  ChannelOptions,
  ConfirmChannel,
  Connection,
  ConsumeMessage,
  Options,
  ChannelModel as PromiseConnection,
} from 'amqplib';
import { amqplibInternals, openChannels } from './amqplib-internals.js';
import { contextOfMessage, withContextHeaders } from './message-context.js';
import { environmentUrl, openModel } from './open.js';
import { LABEL, SideChannels } from './side-channels.js';
import type { AmqpUrl, PicopAmqpOptions, PicopSocketOptions } from './types.js';

// connect / disconnect come from amqplib 2.x recovering connections.
// PicopGuard's start-up check: amqplib is routed in this process.
coverLibrary('amqplib');

const FORWARDED = [
  'error',
  'close',
  'blocked',
  'unblocked',
  'update-secret-ok',
  'connect',
  'disconnect',
] as const;
// RabbitMQ's direct reply-to pseudo-queue.
const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/**
 * What `connect` from `@picop/amqp` resolves to, an amqplib `ChannelModel`: channels are created
 * on the connection of the active context's environment. See {@link connect}.
 */
export class PicopConnection extends EventEmitter implements PromiseConnection {
  readonly #pools: ContextPools<Promise<PromiseConnection>>;
  readonly #models = new WeakMap<Promise<PromiseConnection>, PromiseConnection>();
  readonly #sideCounts = new WeakMap<PromiseConnection, number>();
  readonly #picop: PicopAmqpOptions;
  readonly #ownEnvId: string | undefined;

  constructor(url: AmqpUrl, socketOptions: PicopSocketOptions, picop: PicopAmqpOptions) {
    super();
    this.#picop = picop;
    this.#ownEnvId = fallbackEnvId(picop.envId);
    const { picop: _picop, ...options } = socketOptions;
    // Checked before anything opens: an amqplib without the internals used is refused here.
    const { recovery } = amqplibInternals();
    const split = recovery?.splitConnectionOptions(options);
    const connectionOptions = split?.connectionOptions ?? options;
    const recovers = recovery?.recoveryEnabled(split?.recovery) === true;
    this.#pools = wrapperPools<Promise<PromiseConnection>>(
      picop,
      LABEL,
      {
        create: ({ header, envId, route }) => {
          const own = environmentUrl(url, route, picop.isolate, envId);
          const open = () => openModel(own.url, connectionOptions, header);
          const vhost = own.vhost;
          const create = picop.isolate?.create;
          // The isolated environment's virtual host first, outside the environment's context.
          const prepared =
            envId !== undefined && vhost !== undefined && create !== undefined
              ? context.with(ROOT_CONTEXT, () => create({ envId, vhost }))
              : undefined;
          const connect = () =>
            recovers && recovery
              ? recovery.connectWithRecoveryPromise(open, split?.recovery)
              : open();
          const opening = prepared === undefined ? connect() : prepared.then(connect);
          opening.then(
            (model) => this.#adopt(opening, model, envId, recovers),
            () => this.#pools.remove(opening),
          );
          return opening;
        },
        destroy: (opening) => opening.then((model) => model.close()).catch(() => undefined),
        isIdle: (opening) => {
          const model = this.#models.get(opening);
          // Channels kept only to publish from another environment's channel keep it no busier.
          return model !== undefined && openChannels(model) === (this.#sideCounts.get(model) ?? 0);
        },
      },
      'maxConnections',
    );
  }

  #connectionOf(): Promise<PromiseConnection> {
    try {
      return this.#pools.acquire();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The per-environment connections (each a promise of amqplib's `ChannelModel`): counters
   * `size`, `created`, `evicted`, `expired`, and `byEnvId()`.
   */
  get pools(): PicopPools<Promise<PromiseConnection>> {
    return this.#pools;
  }

  /**
   * amqplib's connection object of the active environment. Throws `ERR_PICOP_INVALID_STATE` when
   * that environment's connection is not open yet (`await conn.open()` first).
   */
  get connection(): Connection {
    const model = this.#models.get(this.#pools.peek() as Promise<PromiseConnection>);
    if (model === undefined) {
      throw new PicopError(
        'ERR_PICOP_INVALID_STATE',
        "The active environment's AMQP connection is not open yet: await open() first",
      );
    }
    return model.connection;
  }

  /** The connection of the active environment, opened on first use. */
  open(): Promise<PromiseConnection> {
    return this.#connectionOf();
  }

  /**
   * A channel on the active environment's connection: consuming, acks and the rest run there;
   * `publish` and `sendToQueue` go over the connection of the environment active at each call.
   */
  async createChannel(options?: ChannelOptions): Promise<Channel> {
    const home = this.#connectionOf();
    return this.#wrap(await (await home).createChannel(options), home, false);
  }

  /** A confirm channel, as {@link createChannel}; `waitForConfirms()` waits for every environment. */
  async createConfirmChannel(options?: ChannelOptions): Promise<ConfirmChannel> {
    const home = this.#connectionOf();
    return this.#wrap(await (await home).createConfirmChannel(options), home, true);
  }

  /** Updates the secret of every environment's open connection. */
  async updateSecret(newSecret: Buffer, reason: string): Promise<void> {
    const opening = [...this.#pools.values()];
    await Promise.all(opening.map((o) => o.then((model) => model.updateSecret(newSecret, reason))));
  }

  /** Closes every environment's connection. */
  close(): Promise<void> {
    return this.#pools.close();
  }

  #adopt(
    opening: Promise<PromiseConnection>,
    model: PromiseConnection,
    envId: string | undefined,
    recovers: boolean,
  ): void {
    this.#models.set(opening, model);
    // Without recovery a closed connection leaves the pool: the next call opens a new one, which
    // carries the header again.
    if (!recovers) model.on('close', () => this.#pools.remove(opening));
    forwardEvents(model, this, FORWARDED, envId, LABEL);
  }

  // The channel is amqplib's own; only this instance's publish, consume, waitForConfirms and close
  // are wrapped.
  #wrap<C extends Channel>(channel: C, home: Promise<PromiseConnection>, confirm: boolean): C {
    const propagator = this.#picop.propagator ?? defaultConnectionPropagator;
    const ownEnvId = this.#ownEnvId;
    const pools = this.#pools;
    const sides = new SideChannels(channel, confirm, this.#sideCounts);
    const publish = channel.publish;
    channel.publish = function picopPublish(
      this: C,
      exchange: string,
      routingKey: string,
      content: Buffer,
      options?: Options.Publish,
      callback?: (err: unknown, ok: unknown) => void,
    ) {
      const ctx = withFallbackEnvId(ownEnvId, context.active());
      const args: Parameters<ConfirmChannel['publish']> = [
        exchange,
        routingKey,
        content,
        withContextHeaders(options, ctx, propagator) as Options.Publish,
        callback as Parameters<ConfirmChannel['publish']>[4],
      ];
      let connection = home;
      // Direct reply-to requests and replies stay on the channel they were made on: the
      // pseudo-queue lives on the broker of the channel that consumes it.
      if (
        options?.replyTo !== DIRECT_REPLY_TO &&
        !(exchange === '' && routingKey.startsWith(`${DIRECT_REPLY_TO}.`))
      ) {
        const routed = routeOr(() => pools.acquire(ctx), callback, undefined);
        if (routed === undefined) return false;
        connection = routed;
      }
      if (connection === home) {
        return inRouted(publish as (...a: unknown[]) => boolean, this, ...args);
      }
      return inRouted(sides.publish, sides, connection, getEnvId(ctx), args);
    } as C['publish'];

    if (confirm) {
      const waitForConfirms = (channel as unknown as ConfirmChannel).waitForConfirms;
      (channel as unknown as ConfirmChannel).waitForConfirms = async function picopWait(
        this: ConfirmChannel,
      ) {
        await Promise.all([waitForConfirms.call(this), sides.waitForConfirms()]);
      };
    }

    const close = channel.close;
    channel.close = async function picopClose(this: C) {
      await Promise.all([close.call(this), sides.close()]);
    } as C['close'];

    const consume = channel.consume;
    const handles = selectionOf(this.#picop, ownEnvId, LABEL);
    channel.consume = function picopConsume(
      this: C,
      queue: string,
      onMessage: (msg: ConsumeMessage | null) => void,
      options?: Options.Consume,
    ) {
      const deliver = (msg: ConsumeMessage | null) => {
        if (msg === null) return onMessage(msg);
        if (
          handles !== undefined &&
          !handles(getEnvId(contextOfMessage(msg, ROOT_CONTEXT, propagator)))
        ) {
          // Another environment's consumer handles this message (it has its own copy in its queue).
          if (!options?.noAck) channel.ack(msg);
          return;
        }
        // The context amqplib runs the callback in (an instrumentation's `process` span), plus
        // the message's Env-Id.
        const base = withFallbackEnvId(ownEnvId, context.active());
        return context.with(contextOfMessage(msg, base, propagator), onMessage, undefined, msg);
      };
      return consume.call(this, queue, deliver, options);
    } as C['consume'];
    return channel;
  }
}
