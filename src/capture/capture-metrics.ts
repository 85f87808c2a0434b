import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Capture's own metrics (request counts by route and status come from the shared HTTP layer). */
export function createCaptureMetrics(registry: Registry) {
  const registers = [registry];
  return {
    wireBytes: new Counter({
      name: 'capture_request_bytes_total',
      help: 'Recording upload bytes as received on the wire (compressed).',
      registers,
    }),
    decodedBytes: new Counter({
      name: 'capture_decompressed_bytes_total',
      help: 'Recording upload bytes after decompression.',
      registers,
    }),
    events: new Counter({ name: 'capture_events_total', help: 'rrweb events accepted.', registers }),
    producedMessages: new Counter({
      name: 'capture_messages_produced_total',
      help: 'Messages committed to Kafka, by topic.',
      labelNames: ['topic'],
      registers,
    }),
    producedBytes: new Counter({
      name: 'capture_produced_bytes_total',
      help: 'Message bytes committed to Kafka, by topic.',
      labelNames: ['topic'],
      registers,
    }),
    produceLatency: new Histogram({
      name: 'capture_produce_duration_seconds',
      help: 'Time from handing a request to the producer until its transaction committed (or failed).',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    rejections: new Counter({
      name: 'capture_rejections_total',
      help: 'Requests rejected, by stable error code.',
      labelNames: ['code'],
      registers,
    }),
    droppedEvents: new Counter({
      name: 'capture_dropped_events_total',
      help: 'Events dropped alone for breaking an input bound (the rest of their request was accepted), by code.',
      labelNames: ['reason'],
      registers,
    }),
    behaviors: new Counter({
      name: 'capture_behaviors_total',
      help: 'Behaviours committed to user_behaviors, by source (behaviors-api, posthog-js).',
      labelNames: ['source'],
      registers,
    }),
    behaviorsRejected: new Counter({
      name: 'capture_behaviors_rejected_total',
      help: 'Behaviours refused alone for breaking an input bound (the rest of their request went on), by source and code.',
      labelNames: ['source', 'code'],
      registers,
    }),
    behaviorPropertiesOmitted: new Counter({
      name: 'capture_behavior_properties_omitted_total',
      help: 'posthog-js event properties left out of their behaviour for their size (the events were kept).',
      registers,
    }),
    overflowSessions: new Counter({
      name: 'capture_overflow_routed_total',
      help: 'Session batches routed to the overflow topic by the per-session byte rate limit.',
      registers,
    }),
    inflightBytes: new Gauge({
      name: 'capture_inflight_bytes',
      help: 'Request bytes held now (read off the socket and decoded), against CAPTURE_MAX_INFLIGHT_BYTES.',
      registers,
    }),
    nativeAddon: new Gauge({
      name: 'capture_native_addon',
      help: '1 when the native addon (json-skip, gzip-inflate) is loaded, 0 when capture runs its slower JavaScript or node:zlib path.',
      labelNames: ['addon'],
      registers,
    }),
  };
}

export type CaptureMetrics = ReturnType<typeof createCaptureMetrics>;
