import { type Browser, chromium } from 'playwright-core';
import type { Config } from '../config/index.ts';
import { chromiumPrerequisites } from './prerequisites.ts';

/**
 * Headless Debian Chromium driven by playwright-core. The flags keep it from reaching for the network (this machine
 * has none but loopback) and make it run as root without a sandbox.
 */
export async function launchChromium(config: Config): Promise<Browser> {
  const { binary } = chromiumPrerequisites(config);
  return chromium.launch({
    executablePath: binary,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}
