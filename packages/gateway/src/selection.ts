import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { equalSecret } from '@picop/cli-kit';
import { envIdProblem, PicopError } from '@picop/codec';
import { baggageValues, DEFAULT_BAGGAGE_KEY, withoutBaggageKey } from '@picop/propagator';
import { DEFAULTS } from './defaults.js';

/** Where the gateway reads a request's Env-Id, and who may leave the baseline. */
export interface SelectionOptions {
  /**
   * Request header holding the Env-Id.
   * @default 'env-id'
   */
  header?: string;
  /**
   * Do not honour the `env-id` entry of the W3C `baggage` header (it is still removed before the
   * request goes on, so the service never reads it either).
   */
  ignoreBaggage?: boolean;
  /** Cookie holding the Env-Id (signed with `cookieKey`, when set). Off if unset. */
  cookie?: string;
  /** Host pattern whose `*` label is the Env-Id, such as `*.preview.example.com`. Off if unset. */
  hostPattern?: string;
  /**
   * Env-Id patterns a request may pick (`*` matches any run of characters). Any other Env-Id is
   * served by the baseline.
   * @default ['*']
   */
  allow?: readonly string[];
  /**
   * A secret a request must show in its `picop-token` header to leave the baseline. Compared in
   * constant time. Off if unset.
   */
  token?: string;
  /**
   * Key of the HMAC-SHA256 that signs the `cookie` (its value: `ENV_ID.ISSUED.SIGNATURE`, from
   * {@link signEnvId}). A valid signed cookie no older than `cookieMaxAge` proves its own Env-Id.
   * Off if unset.
   */
  cookieKey?: string;
  /**
   * How long a signed cookie proves its Env-Id after it was signed, in seconds.
   * @default 604800 (7 days)
   */
  cookieMaxAge?: number;
}

/** What the gateway does with one request. */
export type Selection =
  /** Forward in `envId`'s environment; `undefined`: the baseline. */
  | { kind: 'forward'; envId: string | undefined }
  /** Forward to the baseline without the Env-Id the request asked for. */
  | { kind: 'refused'; reason: 'not_allowed' | 'unproven'; asked: string }
  /** Answer 400: the Env-Id is not a valid one, or the request names two. */
  | {
      kind: 'invalid';
      code: 'ERR_PICOP_INVALID_ENV_ID' | 'ERR_PICOP_AMBIGUOUS_ENV_ID';
      message: string;
    };

/** The header a request proves the gateway's `token` with. */
export const TOKEN_HEADER = 'picop-token';

/**
 * The value of a signed Env-Id cookie: `ENV_ID.ISSUED.SIGNATURE`, `ISSUED` the signing time in
 * Unix seconds and the signature an HMAC-SHA256 (base64url) of `ENV_ID.ISSUED`. The gateway
 * accepts it for `cookieMaxAge` seconds after `issuedAt`.
 */
export function signEnvId(envId: string, key: string, issuedAt: Date = new Date()): string {
  const problem = envIdProblem(envId);
  if (problem !== undefined) {
    throw new PicopError('ERR_PICOP_INVALID_ARG', `Env-Id ${JSON.stringify(envId)} ${problem}`);
  }
  const signed = `${envId}.${Math.floor(issuedAt.getTime() / 1000)}`;
  return `${signed}.${signature(signed, key)}`;
}

const signature = (signed: string, key: string) =>
  createHmac('sha256', key).update(signed).digest('base64url');

/** Seconds a signed cookie may be dated ahead of the gateway's clock (clocks drift). */
const CLOCK_SKEW_SECONDS = 60;

/** `*` globs as one anchored regular expression. */
function allowPattern(patterns: readonly string[]): RegExp {
  const alternatives = patterns.map((p) =>
    p
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*'),
  );
  return new RegExp(`^(?:${alternatives.join('|')})$`);
}

function hostPattern(pattern: string): RegExp {
  if (pattern.split('*').length !== 2) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `The host pattern must have one "*" (the Env-Id), got ${JSON.stringify(pattern)}`,
    );
  }
  const [before, after] = pattern
    .toLowerCase()
    .split('*')
    .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${before}([^.:]+)${after}(?::\\d+)?$`);
}

const one = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

function cookieValue(header: string, name: string): string | undefined {
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

/** Decides each request's environment; built once from the options, which it validates. */
export class EnvIdSelector {
  readonly #header: string;
  readonly #baggage: boolean;
  readonly #cookie: string | undefined;
  readonly #host: RegExp | undefined;
  readonly #allow: RegExp;
  readonly #token: string | undefined;
  readonly #cookieKey: string | undefined;
  readonly #cookieMaxAge: number;

  constructor(options: SelectionOptions = {}) {
    this.#header = (options.header ?? DEFAULTS.header).toLowerCase();
    this.#baggage = !options.ignoreBaggage;
    this.#cookie = options.cookie;
    this.#host = options.hostPattern === undefined ? undefined : hostPattern(options.hostPattern);
    this.#allow = allowPattern(options.allow ?? DEFAULTS.allow);
    this.#token = options.token || undefined;
    this.#cookieKey = options.cookieKey || undefined;
    this.#cookieMaxAge = options.cookieMaxAge ?? DEFAULTS.cookieMaxAge;
    if (!(this.#cookieMaxAge > 0)) {
      throw new PicopError(
        'ERR_PICOP_INVALID_ARG',
        `\`cookieMaxAge\` must be a number of seconds > 0, got ${this.#cookieMaxAge}`,
      );
    }
  }

  /** Whether a request must prove a secret to leave the baseline. */
  get guarded(): boolean {
    return this.#token !== undefined || this.#cookieKey !== undefined;
  }

  select(headers: IncomingHttpHeaders): Selection {
    const cookie = this.#cookieOf(headers);
    const named = this.#named(headers, cookie);
    const distinct = [...new Set(named.map(([, envId]) => envId))];
    if (distinct.length > 1) {
      return {
        kind: 'invalid',
        code: 'ERR_PICOP_AMBIGUOUS_ENV_ID',
        message: `The request names ${distinct.length} Env-Ids (${named.map(([from, envId]) => `${from} ${JSON.stringify(envId)}`).join(', ')}); name one`,
      };
    }
    const asked = distinct[0];
    if (asked === undefined) return { kind: 'forward', envId: undefined };
    const problem = envIdProblem(asked);
    if (problem !== undefined) {
      return {
        kind: 'invalid',
        code: 'ERR_PICOP_INVALID_ENV_ID',
        message: `Env-Id ${JSON.stringify(asked)} ${problem}`,
      };
    }
    if (!this.#allow.test(asked)) return { kind: 'refused', reason: 'not_allowed', asked };
    if (this.guarded && !this.#proven(headers, asked, cookie)) {
      return { kind: 'refused', reason: 'unproven', asked };
    }
    return { kind: 'forward', envId: asked };
  }

  /**
   * Every Env-Id the request names, with where: its header, each `env-id` member of its baggage
   * (read as the service's OpenTelemetry will read it), its cookie, its host.
   */
  #named(headers: IncomingHttpHeaders, cookie: CookieEnvId | undefined): Array<[string, string]> {
    const named: Array<[string, string]> = [];
    const fromHeader = headers[this.#header];
    if (fromHeader !== undefined) named.push(['header', String(fromHeader)]);
    if (this.#baggage && headers.baggage !== undefined) {
      for (const value of baggageValues(headers.baggage, DEFAULT_BAGGAGE_KEY)) {
        named.push(['baggage', value]);
      }
    }
    if (cookie !== undefined) named.push(['cookie', cookie.envId]);
    const fromHost = this.#host?.exec((headers.host ?? '').toLowerCase())?.[1];
    if (fromHost !== undefined) named.push(['host', fromHost]);
    return named;
  }

  #cookieOf(headers: IncomingHttpHeaders): CookieEnvId | undefined {
    if (this.#cookie === undefined || headers.cookie === undefined) return undefined;
    const raw = cookieValue(headers.cookie, this.#cookie);
    if (raw === undefined || raw === '') return undefined;
    let value: string;
    try {
      value = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    // A cookie that cannot hold an Env-Id is none: the browser's requests go to the baseline.
    if (envIdProblem(value) !== undefined) return undefined;
    if (this.#cookieKey === undefined) return { envId: value, signed: false };
    // ENV_ID.ISSUED.SIGNATURE; an Env-Id may hold dots itself.
    const match = /^(.+)\.(\d{1,12})\.([A-Za-z0-9_-]+)$/.exec(value);
    if (match === null) return { envId: value, signed: false };
    const [, envId = '', issued = '', mac = ''] = match;
    const age = Date.now() / 1000 - Number(issued);
    const signed =
      equalSecret(mac, signature(`${envId}.${issued}`, this.#cookieKey)) &&
      age <= this.#cookieMaxAge &&
      age >= -CLOCK_SKEW_SECONDS;
    return { envId, signed };
  }

  #proven(headers: IncomingHttpHeaders, envId: string, cookie: CookieEnvId | undefined): boolean {
    const token = one(headers[TOKEN_HEADER]);
    if (this.#token !== undefined && token !== undefined && equalSecret(token, this.#token)) {
      return true;
    }
    return cookie?.signed === true && cookie.envId === envId;
  }
}

interface CookieEnvId {
  envId: string;
  signed: boolean;
}

/**
 * The request headers to forward: without hop-by-hop headers and the gateway's token, with the
 * `env-id` header and the baggage `env-id` entry replaced by the chosen Env-Id (none: removed),
 * and with `X-Forwarded-For` / `-Proto` / `-Host` added.
 */
export function forwardedHeaders(
  headers: IncomingHttpHeaders,
  envId: string | undefined,
  envIdHeader: string,
  client: { address: string | undefined; encrypted: boolean },
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const hopByHop = hopByHopOf(headers);
  for (const [name, value] of Object.entries(headers)) {
    // `Expect` was answered here (Node's server sends the 100); the body follows as a stream.
    if (value === undefined || hopByHop.has(name) || name === TOKEN_HEADER || name === 'expect')
      continue;
    if (name === envIdHeader || name === 'env-id') continue;
    if (name === 'baggage') {
      const kept = withoutBaggageKey(value, DEFAULT_BAGGAGE_KEY);
      if (kept !== undefined) out.baggage = kept;
      continue;
    }
    out[name] = value;
  }
  if (envId !== undefined) out['env-id'] = envId;
  const forwardedFor = one(headers['x-forwarded-for']);
  if (client.address !== undefined) {
    out['x-forwarded-for'] =
      forwardedFor === undefined ? client.address : `${forwardedFor}, ${client.address}`;
  }
  out['x-forwarded-proto'] =
    one(headers['x-forwarded-proto']) ?? (client.encrypted ? 'https' : 'http');
  if (headers.host !== undefined)
    out['x-forwarded-host'] = one(headers['x-forwarded-host']) ?? headers.host;
  return out;
}

/**
 * The headers of a message that belong to its connection, never forwarded (RFC 9110, 7.6.1):
 * the standard ones and those its `Connection` header names.
 */
export function hopByHopOf(headers: IncomingHttpHeaders): Set<string> {
  const names = new Set(HOP_BY_HOP);
  for (const name of String(headers.connection ?? '').split(',')) {
    names.add(name.trim().toLowerCase());
  }
  return names;
}

const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];
