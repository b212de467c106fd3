import { type Context, context, ROOT_CONTEXT, type TextMapPropagator } from '@opentelemetry/api';
import { PicopError } from '@picop/codec';
import type { ContextPools, PicopPools } from '@picop/net-wrap';
import type { PicopWrapperOptions, SelectiveOptions } from '@picop/net-wrap/internal';
import {
  baseHeader,
  coverLibrary,
  emitError,
  fallbackEnvId,
  inRouted,
  isolationName,
  type MessageFields,
  messageFieldsGetter,
  routeOr,
  selectionOf,
  storeName,
  withContextFields,
  withFallbackEnvId,
  wrapperPools,
} from '@picop/net-wrap/internal';
import { getEnvId, setEnvId } from '@picop/propagator';
import { defaultConnectionPropagator } from '@picop/propagator/internal';
import {
  type ClientSubscribeCallback,
  type DoneCallback,
  type IClientOptions,
  type IClientPublishOptions,
  type IClientSubscribeOptions,
  type IClientSubscribeProperties,
  type IClientUnsubscribeProperties,
  type IDisconnectPacket,
  type IPublishPacket,
  type ISubscriptionMap,
  MqttClient,
  type PacketCallback,
} from 'mqtt';
import { checkMqttClient } from './mqtt-check.js';
import { streamOf } from './stream.js';

// PicopGuard's start-up check: mqtt is routed in this process.
coverLibrary('mqtt');

const LABEL = '@picop/mqtt';

/** The `picop` options of {@link connect}. */
export interface PicopMqttOptions extends PicopWrapperOptions, SelectiveOptions {
  /** @deprecated since 0.2.0, removed in 0.3.0: `maxPools`. */
  maxConnections?: number;
  /** Logical isolation on the client's own broker: see {@link MqttIsolation}. */
  isolate?: MqttIsolation;
}

/**
 * Each environment's topics behind a prefix of its own on the one broker, under `picop-env/`: its
 * publishes, subscriptions (shared ones too) and retained messages live under the prefix, and its
 * listeners see the topics without it. The baseline keeps the topics as they are, and may not
 * name one under `picop-env/` (its wildcard subscriptions never deliver one).
 */
export interface MqttIsolation {
  /**
   * The prefix of an environment's topics after `picop-env/` (`feature-1/`: its topics are
   * `picop-env/feature-1/...`), its Env-Id checked first (letters, digits, `_`, `-`);
   * `undefined`: the baseline's topics.
   */
  topicPrefix: (envId: string) => string | undefined;
}

/** Where isolated environments' topics live: a namespace the baseline cannot name. */
export const ISOLATED_TOPICS = 'picop-env/';

/** Whether a topic (or filter, shared or not) is in the isolated environments' namespace. */
const isIsolatedTopic = (topic: string) =>
  topic.replace(/^\$share\/[^/]+\//, '').startsWith(ISOLATED_TOPICS);

/** `topic` under `prefix`; a shared subscription keeps its `$share/<group>/` in front. */
function prefixed(prefix: string, topic: string): string {
  const shared = /^\$share\/[^/]+\//.exec(topic);
  return shared === null
    ? `${prefix}${topic}`
    : `${shared[0]}${prefix}${topic.slice(shared[0].length)}`;
}

function prefixedTopics(prefix: string | undefined, topics: Topics): Topics {
  if (prefix === undefined) return topics;
  if (typeof topics === 'string') return prefixed(prefix, topics);
  if (Array.isArray(topics)) return topics.map((t) => prefixed(prefix, t));
  const map: ISubscriptionMap = {};
  for (const [topic, options] of Object.entries(topics)) {
    if (topic === 'resubscribe') map.resubscribe = options as boolean;
    else map[prefixed(prefix, topic)] = options as IClientSubscribeOptions;
  }
  return map;
}

type Topics = string | string[] | ISubscriptionMap;

function topicsOf(topics: Topics): string[] {
  if (typeof topics === 'string') return [topics];
  return Array.isArray(topics) ? topics : Object.keys(topics);
}

/**
 * The context a message carries (its Env-Id, from its MQTT 5 user properties), on top of `base`.
 *
 * @example
 * client.on('packetreceive', (packet) => {
 *   if (packet.cmd === 'publish') console.log(getEnvId(contextOfPacket(packet)));
 * });
 */
export function contextOfPacket(
  packet: IPublishPacket,
  base: Context = ROOT_CONTEXT,
  propagator: TextMapPropagator = defaultConnectionPropagator,
): Context {
  const fields = packet.properties?.userProperties as MessageFields | undefined;
  return fields === undefined ? base : propagator.extract(base, fields, messageFieldsGetter);
}

/**
 * What {@link connect} returns: mqtt.js's `MqttClient`, which is itself the connection of work
 * without an Env-Id (or of `picop.envId`), plus one connection per environment for the rest.
 * See the package README.
 */
export class PicopMqttClient extends MqttClient {
  readonly #connections: ContextPools<MqttClient>;
  readonly #topics = new WeakMap<MqttClient, Set<string>>();
  // Isolation: each environment connection's topic prefix.
  readonly #prefixes = new WeakMap<MqttClient, string>();
  readonly #ownEnvId: string | undefined;
  readonly #propagator: TextMapPropagator;
  readonly #v5: boolean;
  readonly #handles: ((envId: string | undefined) => boolean) | undefined;
  readonly #isolating: boolean;
  // end() by the user, until reconnect().
  #ended = false;

  /** `options` as {@link resolveOptions} returns them. */
  constructor(options: IClientOptions, picop: PicopMqttOptions) {
    // Checked before mqtt.js's constructor connects: a bad option opens nothing.
    const ownEnvId = fallbackEnvId(picop.envId);
    const ownContext = withFallbackEnvId(ownEnvId, ROOT_CONTEXT);
    const v5 = options.protocolVersion === 5;
    if (picop.selective && !v5) {
      throw new PicopError(
        'ERR_PICOP_INVALID_ARG',
        `${LABEL}: \`selective\` needs \`protocolVersion: 5\`: MQTT 3.1.1 messages cannot carry an Env-Id`,
      );
    }
    const handles = selectionOf(picop, ownEnvId, LABEL);
    const header = baseHeader(picop);
    // Environment connections: their own client id (a session per environment) and stores.
    const {
      clientId,
      incomingStore: _in,
      outgoingStore: _out,
      messageIdProvider: _ids,
      ...shared
    } = options;
    const connections = wrapperPools<MqttClient>(
      picop,
      LABEL,
      {
        base: () => this,
        create: ({ header, envId, route }) => {
          const ctx = envId === undefined ? ROOT_CONTEXT : setEnvId(ROOT_CONTEXT, envId);
          // Proxyless: this environment's broker, not `servers`.
          const own = route
            ? {
                ...shared,
                host: route.host,
                hostname: route.host,
                port: route.port,
                servers: undefined,
              }
            : shared;
          const prefix = envId === undefined ? undefined : topicPrefixOf(picop.isolate, envId);
          const client = new MqttClient(streamOf(own, header, ctx), {
            ...shared,
            ...(clientId && { clientId: `${clientId}/${envId}` }),
          });
          if (prefix !== undefined) this.#prefixes.set(client, prefix);
          client.on('error', (err) => emitError(this, LABEL, err, envId));
          client.on('message', (topic, payload, packet) => {
            // The environment's listeners see its topics as it named them.
            const name =
              prefix !== undefined && topic.startsWith(prefix) ? topic.slice(prefix.length) : topic;
            this.#deliver(envId, false, name, payload, packet);
          });
          return client;
        },
        destroy: (client) => client.endAsync(),
        isIdle: (client) =>
          (this.#topics.get(client)?.size ?? 0) === 0 &&
          client.queue.length === 0 &&
          Object.keys(client.outgoing).length === 0,
      },
      'maxConnections',
    );
    // Everything of ours is checked and made: mqtt.js's constructor connects.
    try {
      super(streamOf(options, header, ownContext), { ...options });
    } catch (err) {
      void connections.close();
      throw err;
    }
    try {
      checkMqttClient(this);
    } catch (err) {
      void connections.close();
      super.end(true);
      throw err;
    }
    this.#connections = connections;
    // As mqtt.js's connect(): an error without listeners is not thrown (it reconnects).
    this.on('error', () => {});
    this.#ownEnvId = ownEnvId;
    this.#propagator = picop.propagator ?? defaultConnectionPropagator;
    this.#v5 = v5;
    this.#handles = handles;
    this.#isolating = picop.isolate !== undefined;
  }

  /**
   * The connections of the environments other than the baseline (this one): counters `size`,
   * `created`, `evicted`, `expired`, and `byEnvId()`.
   */
  get pools(): PicopPools<MqttClient> {
    return this.#connections;
  }

  /** @deprecated since 0.2.0, removed in 0.3.0: `pools.size`. */
  get connections(): number {
    return this.#connections.size;
  }

  /**
   * mqtt.js calls this for every event of this connection: a message is handled in its own
   * environment.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'message') return super.emit(event as 'end', ...(args as []));
    const [topic, payload, packet] = args as [string, Buffer, IPublishPacket];
    // An environment's message reaching a baseline wildcard (`#`): never the baseline's.
    if (this.#isolating && isIsolatedTopic(topic)) return false;
    return this.#deliver(this.#ownEnvId, true, topic, payload, packet);
  }

  /**
   * Emits 'message' in the message's environment: its Env-Id, else the connection's. On this
   * connection (the deployment's own subscriptions), selective mode may skip it.
   */
  #deliver(
    connectionEnvId: string | undefined,
    own: boolean,
    topic: string,
    payload: Buffer,
    packet: IPublishPacket,
  ): boolean {
    const base = context.active();
    const fields = packet.properties?.userProperties as MessageFields | undefined;
    const fromMessage =
      fields === undefined
        ? undefined
        : getEnvId(this.#propagator.extract(ROOT_CONTEXT, fields, messageFieldsGetter));
    if (own && this.#handles !== undefined && !this.#handles(fromMessage)) return false;
    const envId = fromMessage ?? connectionEnvId;
    // The connection's socket was made in its own context: usually the Env-Id is already there.
    let ctx = envId === undefined || getEnvId(base) === envId ? base : setEnvId(base, envId);
    // Other fields a custom propagator carries (trace context, say).
    if (fields !== undefined && this.#propagator !== defaultConnectionPropagator) {
      ctx = this.#propagator.extract(ctx, fields, messageFieldsGetter);
    }
    if (ctx === base) return super.emit('message', topic, payload, packet);
    return context.with(ctx, () => super.emit('message', topic, payload, packet));
  }

  /**
   * `options` plus the active Env-Id as an MQTT 5 user property (`Env-Id`), unless one is there.
   * The caller's object is not changed.
   */
  #withEnvId(
    options: IClientPublishOptions | undefined,
    active: Context,
  ): IClientPublishOptions | undefined {
    if (!this.#v5) return options;
    const ctx = withFallbackEnvId(this.#ownEnvId, active);
    const existing = options?.properties?.userProperties as MessageFields | undefined;
    const merged = withContextFields(existing, ctx, this.#propagator);
    if (merged === existing) return options;
    return {
      ...options,
      properties: { ...options?.properties, userProperties: merged as Record<string, string> },
    };
  }

  /** Runs `use` on the active environment's connection; a routing error goes to `callback`. */
  #route(
    callback: ((err: Error) => void) | undefined,
    use: (client: MqttClient) => void,
    active: Context = context.active(),
    topics: readonly string[] = [],
  ): this {
    const client = routeOr(() => this.#connectionOf(active, topics), callback);
    if (client !== undefined) inRouted(use, undefined, client);
    return this;
  }

  #connectionOf(active: Context, topics: readonly string[]): MqttClient {
    if (this.#ended) {
      // After end(), until reconnect(): this connection answers as mqtt.js does; an
      // environment's gets no new connection.
      if (this.#connections.peek(active) === this) return this;
      throw new PicopError(
        'ERR_PICOP_INVALID_STATE',
        `${LABEL}: the client was ended: reconnect() first`,
      );
    }
    const client = this.#connections.acquire(active);
    const isolated = client === this && this.#isolating && topics.find(isIsolatedTopic);
    if (isolated) {
      throw new PicopError(
        'ERR_PICOP_INVALID_ARG',
        `${LABEL}: the baseline cannot use ${JSON.stringify(isolated)}: topics under ${JSON.stringify(ISOLATED_TOPICS)} are isolated environments'`,
      );
    }
    return client;
  }

  /**
   * Publishes on the connection of the environment active at the call; with MQTT 5 the message
   * carries the Env-Id as a user property.
   */
  override publish(topic: string, message: string | Buffer): MqttClient;
  override publish(topic: string, message: string | Buffer, callback?: PacketCallback): MqttClient;
  override publish(
    topic: string,
    message: string | Buffer,
    opts?: IClientPublishOptions,
    callback?: PacketCallback,
  ): MqttClient;
  override publish(
    topic: string,
    message: string | Buffer,
    opts?: IClientPublishOptions | PacketCallback,
    callback?: PacketCallback,
  ): MqttClient {
    if (typeof opts === 'function') [opts, callback] = [undefined, opts];
    const active = context.active();
    const options = this.#withEnvId(opts, active);
    return this.#route(
      callback,
      (client) => {
        if (client === this) super.publish(topic, message, options, callback);
        else
          client.publish(
            prefixedTopic(this.#prefixes.get(client), topic),
            message,
            options,
            callback,
          );
      },
      active,
      [topic],
    );
  }

  /** Subscribes on the connection of the environment active at the call. */
  override subscribe(topicObject: Topics): MqttClient;
  override subscribe(topicObject: Topics, callback?: ClientSubscribeCallback): MqttClient;
  override subscribe(
    topicObject: Topics,
    opts?: IClientSubscribeOptions | IClientSubscribeProperties,
  ): MqttClient;
  override subscribe(
    topicObject: Topics,
    opts?: IClientSubscribeOptions | IClientSubscribeProperties,
    callback?: ClientSubscribeCallback,
  ): MqttClient;
  override subscribe(
    topicObject: Topics,
    opts?: IClientSubscribeOptions | IClientSubscribeProperties | ClientSubscribeCallback,
    callback?: ClientSubscribeCallback,
  ): MqttClient {
    if (typeof opts === 'function') [opts, callback] = [undefined, opts];
    return this.#route(
      callback,
      (client) => {
        const held = this.#topics.get(client) ?? new Set();
        for (const topic of topicsOf(topicObject)) held.add(topic);
        this.#topics.set(client, held);
        if (client === this) super.subscribe(topicObject, opts, callback);
        else
          client.subscribe(prefixedTopics(this.#prefixes.get(client), topicObject), opts, callback);
      },
      context.active(),
      topicsOf(topicObject),
    );
  }

  /**
   * Unsubscribes on the connections that subscribed to any of the topics (else on the active
   * environment's), so a subscription made at start-up ends whatever the context of the call.
   */
  override unsubscribe(topic: string | string[]): MqttClient;
  override unsubscribe(topic: string | string[], opts?: IClientUnsubscribeProperties): MqttClient;
  override unsubscribe(topic: string | string[], callback?: PacketCallback): MqttClient;
  override unsubscribe(
    topic: string | string[],
    opts?: IClientUnsubscribeProperties,
    callback?: PacketCallback,
  ): MqttClient;
  override unsubscribe(
    topic: string | string[],
    opts?: IClientUnsubscribeProperties | PacketCallback,
    callback?: PacketCallback,
  ): MqttClient {
    if (typeof opts === 'function') [opts, callback] = [undefined, opts];
    const topics = topicsOf(topic);
    const holders = [this, ...this.#connections.values()].filter((c) =>
      topics.some((t) => this.#topics.get(c)?.has(t)),
    );
    if (holders.length === 0) {
      return this.#route(callback, (client) => {
        if (client === this) super.unsubscribe(topic, opts, callback);
        else
          client.unsubscribe(
            prefixedTopics(this.#prefixes.get(client), topic) as string[],
            opts,
            callback,
          );
      });
    }
    let pending = holders.length;
    let failure: Error | undefined;
    const done: PacketCallback = (err) => {
      failure ??= err;
      if (--pending === 0) callback?.(failure);
    };
    for (const client of holders) {
      for (const t of topics) this.#topics.get(client)?.delete(t);
      if (client === this) super.unsubscribe(topic, opts, done);
      else
        client.unsubscribe(
          prefixedTopics(this.#prefixes.get(client), topic) as string[],
          opts,
          done,
        );
    }
    return this;
  }

  /** Connects this connection again after `end()`; environments connect anew on their next use. */
  override reconnect(opts?: Parameters<MqttClient['reconnect']>[0]): MqttClient {
    if (#ended in this) this.#ended = false;
    return super.reconnect(opts);
  }

  /** Ends every environment's connection and this one (mqtt.js's arguments). */
  override end(cb?: DoneCallback): MqttClient;
  override end(force?: boolean): MqttClient;
  override end(opts?: Partial<IDisconnectPacket>, cb?: DoneCallback): MqttClient;
  override end(force?: boolean, cb?: DoneCallback): MqttClient;
  override end(force?: boolean, opts?: Partial<IDisconnectPacket>, cb?: DoneCallback): MqttClient;
  override end(
    ...args: Array<boolean | Partial<IDisconnectPacket> | DoneCallback | undefined>
  ): MqttClient {
    const cb = args.find((a): a is DoneCallback => typeof a === 'function');
    const force = args[0] === true;
    const opts = args.find((a): a is Partial<IDisconnectPacket> => typeof a === 'object');
    // mqtt.js's constructor may end the client itself (a bad auth property), before this class's
    // fields exist: there is nothing of ours to end yet.
    if (!(#connections in this)) return super.end(force, opts, cb);
    // Ended, not closed: mqtt.js's reconnect() may follow, and environments then connect anew.
    this.#ended = true;
    const others = this.#connections.clear();
    super.end(force, opts, (err) => {
      others.then(
        () => cb?.(err),
        () => cb?.(err),
      );
    });
    return this;
  }
}

function prefixedTopic(prefix: string | undefined, topic: string): string {
  return prefix === undefined ? topic : prefixed(prefix, topic);
}

/** The topic prefix of `envId` under `isolate`, checked: no wildcard, no NUL, within a topic. */
function topicPrefixOf(isolate: MqttIsolation | undefined, envId: string): string | undefined {
  if (isolate === undefined) return undefined;
  const prefix = isolate.topicPrefix(isolationName(envId));
  return prefix === undefined
    ? undefined
    : `${ISOLATED_TOPICS}${storeName(prefix, envId, {
        kind: 'MQTT topic prefix',
        option: 'isolate.topicPrefix',
        maxBytes: 65_535 - ISOLATED_TOPICS.length,
        forbidden: /[+#\u0000]/,
      })}`;
}
