import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Where the gateway's metrics go. */
export interface GatewayMetricsOptions {
  /**
   * prom-client registry to register the metrics in.
   * @default a registry of the gateway's own
   */
  registry?: Registry;
}

/** The gateway's Prometheus metrics (prom-client), all named `picop_gateway_*`. */
export class GatewayMetrics {
  readonly registry: Registry;
  /** Requests by outcome: forwarded, invalid, upstream_error, no_route, client_closed, upgraded. */
  readonly requests: Counter<'outcome'>;
  /** Seconds from request to the end of the response, by outcome. */
  readonly duration: Histogram<'outcome'>;
  /** Requests that asked for an environment and were served by the baseline, by reason. */
  readonly refused: Counter<'reason'>;

  constructor(options: GatewayMetricsOptions, pools: () => number) {
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'picop_gateway_requests_total',
      help: 'HTTP requests handled, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'picop_gateway_request_duration_seconds',
      help: 'Time from a request to the end of its response',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.refused = new Counter({
      name: 'picop_gateway_env_id_refused_total',
      help: 'Requests for an environment served by the baseline instead (not_allowed, unproven)',
      labelNames: ['reason'],
      registers,
    });
    new Gauge({
      name: 'picop_gateway_pools',
      help: 'Environments with an open connection pool',
      registers,
      collect() {
        this.set(pools());
      },
    });
  }
}
