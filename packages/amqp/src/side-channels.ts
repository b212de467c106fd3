import { emitError, forwardEvents } from '@picop/net-wrap/internal';
import type { Channel, ConfirmChannel, ChannelModel as PromiseConnection } from 'amqplib';

export const LABEL = '@picop/amqp';

type PublishArgs = Parameters<ConfirmChannel['publish']>;
interface Side {
  channel?: Channel;
  ready: Promise<Channel>;
}

/**
 * The channels a channel opened in one environment keeps on other environments' connections, to
 * publish there: one per connection, opened on first use, gone when it closes. Messages published
 * before it is open wait for it, in order; if it cannot open, a confirm callback gets the error,
 * else the channel the user holds emits it.
 */
export class SideChannels {
  readonly #owner: Channel;
  readonly #confirm: boolean;
  readonly #counts: WeakMap<PromiseConnection, number>;
  readonly #sides = new Map<Promise<PromiseConnection>, Side>();

  /** `counts`: side channels open per connection (they do not keep a connection busy). */
  constructor(owner: Channel, confirm: boolean, counts: WeakMap<PromiseConnection, number>) {
    this.#owner = owner;
    this.#confirm = confirm;
    this.#counts = counts;
  }

  publish(connection: Promise<PromiseConnection>, envId: string | undefined, args: PublishArgs) {
    const side = this.#sides.get(connection) ?? this.#open(connection, envId);
    if (side.channel !== undefined) return (side.channel as ConfirmChannel).publish(...args);
    side.ready.then(
      (channel) => (channel as ConfirmChannel).publish(...args),
      (err: unknown) => {
        const callback = args[4];
        if (typeof callback === 'function') callback(err, {} as never);
        else emitError(this.#owner, LABEL, err, envId);
      },
    );
    return true;
  }

  /** Waits for the confirms of every side channel. */
  async waitForConfirms(): Promise<void> {
    await Promise.all(
      [...this.#sides.values()].map((side) =>
        side.ready.then((channel) => (channel as ConfirmChannel).waitForConfirms()),
      ),
    );
  }

  async close(): Promise<void> {
    const sides = [...this.#sides.values()];
    this.#sides.clear();
    await Promise.all(
      sides.map((side) => side.ready.then((channel) => channel.close()).catch(() => undefined)),
    );
  }

  #open(connection: Promise<PromiseConnection>, envId: string | undefined): Side {
    const side: Side = {
      ready: connection.then(async (model) => {
        const channel = this.#confirm
          ? await model.createConfirmChannel()
          : await model.createChannel();
        this.#counts.set(model, (this.#counts.get(model) ?? 0) + 1);
        forwardEvents(channel, this.#owner, ['error', 'return'], envId, LABEL);
        channel.once('close', () => {
          this.#counts.set(model, (this.#counts.get(model) ?? 1) - 1);
          if (this.#sides.get(connection) === side) this.#sides.delete(connection);
        });
        side.channel = channel;
        return channel;
      }),
    };
    side.ready.catch(() => {
      if (this.#sides.get(connection) === side) this.#sides.delete(connection);
    });
    this.#sides.set(connection, side);
    return side;
  }
}
