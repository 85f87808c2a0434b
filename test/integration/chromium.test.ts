import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { launchChromium } from '../../src/harness/chromium.ts';
import { LOOPBACK } from '../../src/harness/ports.ts';

describe('Chromium (headless, driven by playwright-core)', () => {
  it('loads a loopback page and runs its script on a click', async () => {
    const page = `<!doctype html><button id="b">go</button><p id="out"></p>
      <script>document.getElementById('b').onclick = () => { document.getElementById('out').textContent = 'clicked ' + (1 + 1); };</script>`;
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(page));
    await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
    const browser = await launchChromium(loadConfig());
    try {
      const tab = await browser.newPage();
      await tab.goto(`http://${LOOPBACK}:${(server.address() as AddressInfo).port}/`);
      await tab.click('#b');
      expect(await tab.textContent('#out')).toBe('clicked 2');
      process.stderr.write(`[stack] versions exercised: Chromium ${browser.version()}\n`);
    } finally {
      await browser.close();
      server.close();
    }
  });
});
