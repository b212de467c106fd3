import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';

export interface Seen {
  topic: string;
  payload: string;
  /** The `Env-Id` user property, if the message has one. */
  envId: string | undefined;
  retain: boolean;
  qos: number;
}

/**
 * A plain mqtt.js client connected straight to a broker, subscribed to `topic`, recording what the
 * broker delivers: how a test reads back where messages landed.
 */
export class Observer {
  readonly seen: Seen[] = [];
  readonly #waiters = new Set<() => void>();

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet: IPublishPacket) => {
      const value = packet.properties?.userProperties?.['Env-Id'];
      this.seen.push({
        topic,
        payload: payload.toString(),
        envId: Array.isArray(value) ? value[0] : value,
        retain: packet.retain,
        qos: packet.qos,
      });
      for (const wake of this.#waiters) wake();
    });
  }

  static async start(port: number, topic: string, options: IClientOptions = {}) {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      protocolVersion: 5,
      ...options,
    });
    const observer = new Observer(client);
    await client.subscribeAsync(topic, { qos: 2 });
    return observer;
  }

  /** Resolves once `count` messages on topics starting with `prefix` have arrived. */
  async take(prefix: string, count: number): Promise<Seen[]> {
    const matching = () => this.seen.filter((s) => s.topic.startsWith(prefix));
    while (matching().length < count) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiters.delete(wake);
          resolve();
        };
        this.#waiters.add(wake);
      });
    }
    return matching();
  }

  async stop(): Promise<void> {
    await this.client.endAsync();
  }
}

/** Resolves with the arguments of the next `event` of `emitter`. */
export function next<T extends unknown[]>(
  emitter: { once(event: string, listener: (...args: T) => void): unknown },
  event: string,
): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (...args: T) => resolve(args)));
}
