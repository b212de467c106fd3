import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Counters of one label (an Env-Id with a route, or `_default` / `_plain` / `_unknown`). */
export interface LabelStats {
  accepted: number;
  active: number;
  failed: Record<string, number>;
  bytesToDestination: number;
  bytesToClient: number;
}

/**
 * What the proxy counts. Plain numbers on the data path; prom-client reads them when scraped.
 * Labels are bounded: an Env-Id is a label only if it has a route, so random Env-Ids cannot grow
 * the metrics.
 */
export class ProxyStats {
  readonly byLabel = new Map<string, LabelStats>();
  /** Routes-file reloads that applied, and that failed (the last good routes kept). */
  routesReloads = 0;
  routesReloadFailures = 0;
  readonly registry: Registry;
  readonly #headerSeconds: Histogram;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    const rows = () => [...this.byLabel];
    const counter = (
      name: string,
      help: string,
      labelNames: string[],
      values: () => Array<[Record<string, string>, number]>,
    ) =>
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const [labels, value] of values()) this.inc(labels, value);
        },
      });
    counter(
      'picop_proxy_connections_accepted_total',
      'Connections accepted, by Env-Id route.',
      ['env'],
      () => rows().map(([env, s]) => [{ env }, s.accepted]),
    );
    new Gauge({
      name: 'picop_proxy_connections_active',
      help: 'Connections open now.',
      labelNames: ['env'],
      registers,
      collect: function (this: Gauge) {
        this.reset();
        for (const [env, s] of rows()) this.set({ env }, s.active);
      },
    });
    counter(
      'picop_proxy_connections_failed_total',
      'Connections closed on an error, by reason.',
      ['env', 'reason'],
      () =>
        rows().flatMap(([env, s]) =>
          Object.entries(s.failed).map(([reason, n]): [Record<string, string>, number] => [
            { env, reason },
            n,
          ]),
        ),
    );
    counter('picop_proxy_bytes_total', 'Bytes relayed, by direction.', ['env', 'direction'], () =>
      rows().flatMap(
        ([env, s]): Array<[Record<string, string>, number]> => [
          [{ env, direction: 'to_destination' }, s.bytesToDestination],
          [{ env, direction: 'to_client' }, s.bytesToClient],
        ],
      ),
    );
    counter('picop_proxy_routes_reloads_total', 'Routes-file reloads applied.', [], () => [
      [{}, this.routesReloads],
    ]);
    counter(
      'picop_proxy_routes_reload_failures_total',
      'Routes-file reloads refused (bad file): the last good routes stay.',
      [],
      () => [[{}, this.routesReloadFailures]],
    );
    this.#headerSeconds = new Histogram({
      name: 'picop_proxy_header_read_seconds',
      help: 'Time from accept to a complete PiCoP header.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
  }

  label(label: string): LabelStats {
    let stats = this.byLabel.get(label);
    if (stats === undefined) {
      stats = { accepted: 0, active: 0, failed: {}, bytesToDestination: 0, bytesToClient: 0 };
      this.byLabel.set(label, stats);
    }
    return stats;
  }

  fail(label: string, reason: string): void {
    const failed = this.label(label).failed;
    failed[reason] = (failed[reason] ?? 0) + 1;
  }

  observeHeader(seconds: number): void {
    this.#headerSeconds.observe(seconds);
  }

  /** Totals over every label. */
  totals(): Omit<LabelStats, 'failed'> & { failed: number } {
    const t = { accepted: 0, active: 0, failed: 0, bytesToDestination: 0, bytesToClient: 0 };
    for (const s of this.byLabel.values()) {
      t.accepted += s.accepted;
      t.active += s.active;
      t.bytesToDestination += s.bytesToDestination;
      t.bytesToClient += s.bytesToClient;
      for (const n of Object.values(s.failed)) t.failed += n;
    }
    return t;
  }
}
