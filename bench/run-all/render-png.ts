/** Screenshots SVG charts to PNG with the project's headless Chromium (src/harness/chromium.ts). */
import { loadConfig } from '../../src/config/index.ts';
import { launchChromium } from '../../src/harness/chromium.ts';
import type { Chart } from './plots.ts';

/** Writes `<prefix>-<chart name>.png` for each chart; returns the files written. */
export async function renderPngs(charts: readonly Chart[], prefix: string): Promise<string[]> {
  const browser = await launchChromium(loadConfig());
  try {
    const page = await browser.newPage({ deviceScaleFactor: 2 });
    const files: string[] = [];
    for (const chart of charts) {
      await page.setContent(`<!doctype html><html><body style="margin:0">${chart.svg}</body></html>`);
      const file = `${prefix}-${chart.name}.png`;
      await page.locator('svg').first().screenshot({ path: file });
      files.push(file);
    }
    return files;
  } finally {
    await browser.close();
  }
}
