import { defineConfig } from 'vitest/config';

// Three projects: unit tests run on their own (no services); ops tests run the deployment validators (helm,
// kubeconform, promtool, hadolint, compose) on the files in charts/ and deploy/; integration tests share one set of real services
// (Kafka, MinIO, PostgreSQL) started by test/support/global-stack.ts and run one file at a time, because the machine
// has two cores and the broker is shared.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          pool: 'threads',
        },
      },
      {
        test: {
          name: 'ops',
          include: ['test/ops/**/*.test.ts'],
          pool: 'forks',
          testTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-stack.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
