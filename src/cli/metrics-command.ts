import { metricCatalogue, metricCatalogueMarkdown } from '../metrics/catalogue.ts';
import type { Command } from './command.ts';

export const metricsCommand: Command = {
  async run(args, { stdout }) {
    stdout(
      args.includes('--markdown')
        ? await metricCatalogueMarkdown()
        : `${JSON.stringify(await metricCatalogue(), null, 2)}\n`,
    );
    return 0;
  },
};
