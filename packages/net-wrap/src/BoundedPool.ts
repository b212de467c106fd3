import { diag } from '@opentelemetry/api';
import { PicopError } from '@picop/codec';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_POOLS } from './constants.js';

/** Options of {@link BoundedPool}. */
export interface BoundedPoolOptions<T> {
  /** Closes a client: on eviction, idle timeout, retirement and `close()`. May return a promise. */
  destroy(client: T): void | Promise<void>;
  /**
   * Whether a client may be closed now (nothing in flight, no subscription, no transaction).
   * Busy clients are neither evicted nor expired, and a retired one waits until it is idle.
   * @default () => true
   */
  isIdle?(client: T): boolean;
  /**
   * Most clients held at once, not counting `reserved`'s; past it the least recently used idle
   * one is closed.
   * @default 32
   */
  max?: number;
  /**
   * Close a client unused for this long (0: never).
   * @default 60000
   */
  idleTimeoutMs?: number;
  /** The key whose client is never counted, evicted or refused (the baseline's). */
  reserved?: string;
}

interface Entry<T> {
  client: T;
  lastUsed: number;
}

// A retired client (its route changed while it was busy) is looked at this often until it is idle.
const RETIRE_CHECK_MS = 1000;

/** Checks the numbers a {@link BoundedPool} takes; `ERR_PICOP_INVALID_ARG` names the bad one. */
export function checkBounds(max: number | undefined, idleTimeoutMs: number | undefined): void {
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `\`maxPools\` must be a positive integer, got ${max}`,
    );
  }
  if (idleTimeoutMs !== undefined && !(idleTimeoutMs >= 0)) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `\`idleTimeoutMs\` must be >= 0, got ${idleTimeoutMs}`,
    );
  }
}

/**
 * A bounded map of clients by key: least recently used idle client closed past `max`, idle ones
 * closed after `idleTimeoutMs`, retired ones closed once idle. One timer, running only while
 * there is something to look at. Knows nothing of contexts: {@link ContextPools} keys it.
 */
export class BoundedPool<T> {
  readonly #options: BoundedPoolOptions<T>;
  readonly #entries = new Map<string, Entry<T>>();
  readonly #max: number;
  readonly #idleTimeoutMs: number;
  readonly #retiring = new Set<T>();
  readonly #closing = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #timerDelay = 0;
  #created = 0;
  #evicted = 0;
  #expired = 0;

  constructor(options: BoundedPoolOptions<T>) {
    checkBounds(options.max, options.idleTimeoutMs);
    this.#options = options;
    this.#max = options.max ?? DEFAULT_MAX_POOLS;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  }

  /** Number of clients held (not the retired ones). */
  get size(): number {
    return this.#entries.size;
  }
  /** Clients added so far. */
  get created(): number {
    return this.#created;
  }
  /** Clients closed to stay within `max`. */
  get evicted(): number {
    return this.#evicted;
  }
  /** Clients closed after `idleTimeoutMs` unused. */
  get expired(): number {
    return this.#expired;
  }

  /** The client of `key`, marked as used now. */
  get(key: string): T | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    entry.lastUsed = performance.now();
    return entry.client;
  }

  /** The client of `key`, without marking it used. */
  peek(key: string): T | undefined {
    return this.#entries.get(key)?.client;
  }

  /**
   * Makes room for one more client (closing the least recently used idle one past `max`), or
   * throws `ERR_PICOP_TOO_MANY_CONTEXTS` when every one is busy. Never for `reserved`.
   */
  reserve(key: string): void {
    if (key === this.#options.reserved) return;
    const counted =
      this.#entries.size - (this.#entries.has(this.#options.reserved ?? '\0') ? 1 : 0);
    if (counted < this.#max || this.#evictOne()) return;
    throw new PicopError(
      'ERR_PICOP_TOO_MANY_CONTEXTS',
      `All ${this.#max} per-environment clients are busy; one for a new environment cannot be opened: raise \`maxPools\``,
    );
  }

  /** Holds `client` under `key` (after {@link reserve}). */
  add(key: string, client: T): void {
    this.#entries.set(key, { client, lastUsed: performance.now() });
    this.#created++;
    this.#schedule();
  }

  /** The keys and clients held, in creation order. */
  *entries(): IterableIterator<[string, T]> {
    for (const [key, entry] of this.#entries) yield [key, entry.client];
  }

  /** The clients held, in creation order. */
  *values(): IterableIterator<T> {
    for (const entry of this.#entries.values()) yield entry.client;
  }

  /** Forgets a client that closed by itself, without destroying it. */
  remove(client: T): boolean {
    for (const [key, entry] of this.#entries) {
      if (entry.client === client) {
        this.#entries.delete(key);
        this.#schedule();
        return true;
      }
    }
    return false;
  }

  /** Takes `key`'s client out now (the next use makes a new one) and closes it once it is idle. */
  retire(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    if (this.#isIdle(entry.client)) this.#destroy(entry.client);
    else this.#retiring.add(entry.client);
    this.#schedule();
  }

  /** Closes `key`'s client now. */
  delete(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#destroy(entry.client);
    this.#schedule();
  }

  /** Destroys every client held and waits for them; with `retired`, the retired ones too. */
  async clear(retired = false): Promise<void> {
    for (const client of this.#entries.values()) this.#destroy(client.client);
    this.#entries.clear();
    if (retired) {
      for (const client of this.#retiring) this.#destroy(client);
      this.#retiring.clear();
    }
    this.#schedule();
    await Promise.all(this.#closing);
  }

  #isIdle(client: T): boolean {
    try {
      return this.#options.isIdle?.(client) ?? true;
    } catch (err) {
      diag.error('picop: isIdle() threw; client kept', err);
      return false;
    }
  }

  #evictOne(): boolean {
    let oldest: [string, Entry<T>] | undefined;
    for (const item of this.#entries) {
      if (
        item[0] !== this.#options.reserved &&
        (oldest === undefined || item[1].lastUsed < oldest[1].lastUsed) &&
        this.#isIdle(item[1].client)
      )
        oldest = item;
    }
    if (oldest === undefined) return false;
    this.#entries.delete(oldest[0]);
    this.#destroy(oldest[1].client);
    this.#evicted++;
    return true;
  }

  #tick(): void {
    this.#timer = undefined;
    for (const client of this.#retiring) {
      if (this.#isIdle(client)) {
        this.#retiring.delete(client);
        this.#destroy(client);
      }
    }
    if (this.#idleTimeoutMs > 0) {
      const cutoff = performance.now() - this.#idleTimeoutMs;
      for (const [key, entry] of this.#entries) {
        if (entry.lastUsed <= cutoff && this.#isIdle(entry.client)) {
          this.#entries.delete(key);
          this.#destroy(entry.client);
          this.#expired++;
        }
      }
    }
    this.#schedule();
  }

  // The one timer: at the idle sweep's pace while clients are held, faster while one is retired,
  // none when there is nothing to look at (a wrapper with no client leaves no timer behind).
  #schedule(): void {
    const sweeping = this.#idleTimeoutMs > 0 && this.#entries.size > 0;
    const sweep = Math.max(10, Math.min(this.#idleTimeoutMs / 2, 30_000));
    const delay =
      this.#retiring.size > 0
        ? sweeping
          ? Math.min(sweep, RETIRE_CHECK_MS)
          : RETIRE_CHECK_MS
        : sweeping
          ? sweep
          : 0;
    if (delay === this.#timerDelay && (delay === 0) === (this.#timer === undefined)) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDelay = delay;
    if (delay > 0) {
      this.#timer = setTimeout(() => this.#tick(), delay);
      this.#timer.unref();
    }
  }

  #destroy(client: T): void {
    const done = (async () => {
      try {
        await this.#options.destroy(client);
      } catch (err) {
        diag.error('picop: closing a per-environment client failed', err);
      }
    })();
    this.#closing.add(done);
    void done.finally(() => this.#closing.delete(done));
  }
}
