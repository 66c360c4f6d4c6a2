import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium } from 'playwright-core';
import type { TestApp } from './app.js';

/** Debian's chromium package; never a browser downloaded at run time. */
export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = () => existsSync(CHROMIUM);

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** Makes a test app listen on a free loopback port; returns its base URL. */
export async function listen(ta: TestApp): Promise<string> {
  await ta.http.listen({ host: '127.0.0.1', port: 0 });
  const { port } = ta.http.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}
