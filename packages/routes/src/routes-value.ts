import { PicopError } from '@picop/codec';

function invalid(message: string): PicopError {
  return new PicopError('ERR_PICOP_INVALID_ARG', message);
}

/**
 * Routes from a flag list or variable (`ENV=HOST:PORT`), or a JSON value: `{"env": "host:port"}`
 * or the Go reference's `[{"env_id", "destination"}]`. Throws `ERR_PICOP_INVALID_ARG` naming `where`.
 */
export function routesValue(raw: unknown, where: string): Record<string, string> {
  if (typeof raw === 'string') return routesValue(raw.split(',').filter(Boolean), where);
  if (Array.isArray(raw)) {
    return Object.fromEntries(
      raw.map((item: unknown) => {
        if (typeof item === 'string') {
          const at = item.indexOf('=');
          if (at <= 0)
            throw invalid(`${where}: a route is ENV=HOST:PORT, got ${JSON.stringify(item)}`);
          return [item.slice(0, at).trim(), item.slice(at + 1).trim()];
        }
        const r = item as { env_id?: unknown; destination?: unknown } | null;
        if (typeof r?.env_id !== 'string' || typeof r.destination !== 'string') {
          throw invalid(`${where}: each route needs string "env_id" and "destination"`);
        }
        return [r.env_id, r.destination];
      }),
    );
  }
  if (typeof raw !== 'object' || raw === null) {
    throw invalid(`${where} must be an object {"env": "host:port"} or a list`);
  }
  for (const [envId, destination] of Object.entries(raw)) {
    if (typeof destination !== 'string') {
      throw invalid(`${where}: the destination of ${JSON.stringify(envId)} must be "host:port"`);
    }
  }
  return raw as Record<string, string>;
}
