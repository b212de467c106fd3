/** Counters of one label (an Env-Id with a route, or `_default` / `_plain` / `_unknown`). */
export interface LabelStats {
  accepted: number;
  active: number;
  failed: Record<string, number>;
  bytesToDestination: number;
  bytesToClient: number;
}

const HEADER_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];

/**
 * What the proxy counts. Labels are bounded: an Env-Id is a label only if it has a route, so
 * random Env-Ids cannot grow the metrics.
 */
export class ProxyStats {
  readonly byLabel = new Map<string, LabelStats>();
  readonly headerBuckets = HEADER_BUCKETS.map(() => 0);
  headerSeconds = 0;
  headerCount = 0;
  /** Routes-file reloads that applied, and that failed (the last good routes kept). */
  routesReloads = 0;
  routesReloadFailures = 0;

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
    this.headerSeconds += seconds;
    this.headerCount++;
    for (let i = 0; i < HEADER_BUCKETS.length; i++) {
      if (seconds <= (HEADER_BUCKETS[i] as number)) this.headerBuckets[i]!++;
    }
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

  /** Prometheus text exposition format. */
  toPrometheus(): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string, samples: Array<[string, number]>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
    };
    const env = (label: string) => `env="${escapeLabel(label)}"`;
    const rows = [...this.byLabel];
    family(
      'picop_proxy_connections_accepted_total',
      'counter',
      'Connections accepted, by Env-Id route.',
      rows.map(([l, s]) => [`{${env(l)}}`, s.accepted]),
    );
    family(
      'picop_proxy_connections_active',
      'gauge',
      'Connections open now.',
      rows.map(([l, s]) => [`{${env(l)}}`, s.active]),
    );
    family(
      'picop_proxy_connections_failed_total',
      'counter',
      'Connections closed on an error, by reason.',
      rows.flatMap(([l, s]) =>
        Object.entries(s.failed).map(([reason, n]): [string, number] => [
          `{${env(l)},reason="${escapeLabel(reason)}"}`,
          n,
        ]),
      ),
    );
    family(
      'picop_proxy_bytes_total',
      'counter',
      'Bytes relayed, by direction.',
      rows.flatMap(
        ([l, s]): Array<[string, number]> => [
          [`{${env(l)},direction="to_destination"}`, s.bytesToDestination],
          [`{${env(l)},direction="to_client"}`, s.bytesToClient],
        ],
      ),
    );
    family('picop_proxy_routes_reloads_total', 'counter', 'Routes-file reloads applied.', [
      ['', this.routesReloads],
    ]);
    family(
      'picop_proxy_routes_reload_failures_total',
      'counter',
      'Routes-file reloads refused (bad file): the last good routes stay.',
      [['', this.routesReloadFailures]],
    );
    lines.push(
      '# HELP picop_proxy_header_read_seconds Time from accept to a complete PiCoP header.',
    );
    lines.push('# TYPE picop_proxy_header_read_seconds histogram');
    for (const [i, le] of HEADER_BUCKETS.entries()) {
      lines.push(`picop_proxy_header_read_seconds_bucket{le="${le}"} ${this.headerBuckets[i]}`);
    }
    lines.push(`picop_proxy_header_read_seconds_bucket{le="+Inf"} ${this.headerCount}`);
    lines.push(`picop_proxy_header_read_seconds_sum ${this.headerSeconds}`);
    lines.push(`picop_proxy_header_read_seconds_count ${this.headerCount}`);
    return `${lines.join('\n')}\n`;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
