// The check of the installed mqtt.js against what this package reads of a client: its offline
// `queue` and its in-flight `outgoing` (whether an environment's connection is idle). Kept apart
// from the declarations: it names import.meta (the version lookup), which tsup shims in the
// CommonJS build.

import { unsupportedVersion } from '@picop/net-wrap/internal';
import type { MqttClient } from 'mqtt';

/** Throws `ERR_PICOP_UNSUPPORTED` when `client` (mqtt.js's) lacks what this package reads. */
export function checkMqttClient(client: MqttClient): void {
  const { queue, outgoing } = client as Partial<Pick<MqttClient, 'queue' | 'outgoing'>>;
  const missing = [
    !Array.isArray(queue) && 'MqttClient.queue',
    (typeof outgoing !== 'object' || outgoing === null) && 'MqttClient.outgoing',
  ].filter((m): m is string => typeof m === 'string');
  if (missing.length > 0) {
    throw unsupportedVersion({
      label: '@picop/mqtt',
      library: 'mqtt',
      missing,
      range: '^5.0.0',
      installed: { from: import.meta.url },
    });
  }
}
