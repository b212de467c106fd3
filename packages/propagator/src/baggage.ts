// W3C baggage read member by member exactly as OpenTelemetry's W3CBaggagePropagator reads it
// (@opentelemetry/core, parsePairKeyValue): properties after ';' set aside, key and value trimmed,
// then percent-decoded; a member whose key or value is empty or does not decode is no member.
// The gateway and EnvIdPropagator both read baggage through here, so they cannot disagree on
// which Env-Id a request asked for.

/** The decoded key and value of one baggage member, or `undefined` where OpenTelemetry skips it. */
function member(entry: string): { key: string; value: string } | undefined {
  const properties = entry.indexOf(';');
  const pair = properties === -1 ? entry : entry.slice(0, properties);
  const eq = pair.indexOf('=');
  if (eq <= 0) return undefined;
  const rawKey = pair.slice(0, eq).trim();
  const rawValue = pair.slice(eq + 1).trim();
  if (rawKey === '' || rawValue === '') return undefined;
  try {
    return { key: decodeURIComponent(rawKey), value: decodeURIComponent(rawValue) };
  } catch {
    return undefined;
  }
}

/** The key of one member, decoded when it decodes (its value aside). */
function keyOf(entry: string): string | undefined {
  const pair = entry.split(';', 1)[0] ?? '';
  const eq = pair.indexOf('=');
  if (eq <= 0) return undefined;
  const rawKey = pair.slice(0, eq).trim();
  try {
    return decodeURIComponent(rawKey);
  } catch {
    return rawKey;
  }
}

const members = (baggage: string | readonly string[]) =>
  (typeof baggage === 'string' ? [baggage] : baggage).flatMap((header) => header.split(','));

/**
 * The values of every member of a W3C `baggage` header (or of several) whose key is `key`, read
 * as OpenTelemetry reads them (trimmed, percent-decoded: `env%2Did=feature-1` is `env-id`).
 * OpenTelemetry keeps the last of them, and only within its size limits: a reader that must see
 * what any service could read looks at all of them.
 *
 * @example
 * baggageValues('a=1,env%2Did=feature-1;p=x', 'env-id'); // ['feature-1']
 */
export function baggageValues(baggage: string | readonly string[], key: string): string[] {
  const values: string[] = [];
  for (const entry of members(baggage)) {
    const parsed = member(entry);
    if (parsed?.key === key) values.push(parsed.value);
  }
  return values;
}

/**
 * `baggage` without any member whose key is `key` (decoded as {@link baggageValues} reads it,
 * whatever its value), joined into one header; `undefined` when no member is left.
 */
export function withoutBaggageKey(
  baggage: string | readonly string[],
  key: string,
): string | undefined {
  const kept = members(baggage).filter((entry) => entry.trim() !== '' && keyOf(entry) !== key);
  return kept.length === 0 ? undefined : kept.join(',');
}
