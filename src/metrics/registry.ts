import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * One Prometheus registry per service instance (not prom-client's global one), so several services can run in one
 * process (`dev` mode, tests) without their metrics colliding. Process metrics are registered once per process.
 */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  return registry;
}

let processMetrics: Registry | undefined;

/** CPU, memory, event-loop lag and GC of this process, shared by every service in it. */
export function processMetricsRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}
