// page.test.mjs - the web page (web/) in a real browser, against the real server.
//
// Starts build/bin/arbiterd (ARB_BIN_DIR overrides) on a free loopback port with
// --demo --web web and a fresh data directory, and drives Debian's chromium
// (ARB_CHROMIUM overrides /usr/bin/chromium) headless through playwright-core.
// It checks what a person would: the streams list, the accounts of
// ledger:demo, a transfer made over HTTP arriving as a live patch with the new
// balances, the form's committed and rejected outcomes, and the page resuming
// after a server restart. It saves a screenshot to BUILD/browser/page.png and
// stops the server with SIGTERM.
//
// Prints "ok   NAME" or "FAIL NAME" per check and ends with "N passed, M
// failed"; exits 0 only when every check passed. Once one check fails the
// rest are counted as failed without running (they build on each other).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const binDir = process.env.ARB_BIN_DIR ?? path.join(root, 'build/bin');
const arbiterd = path.join(binDir, 'arbiterd');
const chromiumPath = process.env.ARB_CHROMIUM ?? '/usr/bin/chromium';
const outDir = path.resolve(binDir, '../browser');
const screenshotPath = path.join(outDir, 'page.png');
const tmp = fs.mkdtempSync(path.join(process.env.ARB_TEST_TMP ?? os.tmpdir(), 'browser-'));
const dataDir = path.join(tmp, 'data');
const portFile = path.join(tmp, 'port');
const serverLog = path.join(tmp, 'arbiterd.log');

const WAIT_MS = 10000; // one expected change on the page
const RUN_MS = 120000; // the whole file, whatever happens

// ------------------------------------------------------------------ server

let server = null; // {child, exited: Promise<{code, signal}>}
let port = 0;

async function startServer(listen) {
  if (!fs.existsSync(arbiterd)) throw new Error(`${arbiterd} does not exist (make build)`);
  fs.rmSync(portFile, { force: true });
  const log = fs.openSync(serverLog, 'a');
  const child = spawn(arbiterd, ['--data', dataDir, '--listen', listen, '--port-file', portFile,
    '--demo', '--web', path.join(root, 'web')], { cwd: root, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let ended = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(ended = { code, signal }));
    child.on('error', (error) => resolve(ended = { code: null, error: error.message }));
  });
  server = { child, exited };
  const deadline = Date.now() + WAIT_MS;
  while (!fs.existsSync(portFile)) {
    if (ended !== null) throw new Error(`arbiterd ended at start: ${JSON.stringify(ended)}`);
    if (Date.now() > deadline) throw new Error('arbiterd wrote no port file in time');
    await sleep(50);
  }
  port = Number(fs.readFileSync(portFile, 'utf8').trim());
}

async function stopServer() {
  if (server === null) return null;
  const { child, exited } = server;
  server = null;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
  const result = await exited;
  clearTimeout(timer);
  return result;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const base = () => `http://127.0.0.1:${port}`;

async function postCommand(clientId, key, action, args) {
  const response = await fetch(`${base()}/v1/streams/ledger:demo/commands`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Client-Id': clientId, 'Idempotency-Key': String(key) },
    body: JSON.stringify({ action, args }),
  });
  return { status: response.status, body: await response.json() };
}

// ------------------------------------------------------------------ page helpers

let browser = null;
let page = null;
const pageErrors = [];
const outsideRequests = [];

// Wait until fn(arg) is truthy in the page; the message names what was awaited.
async function waitInPage(what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: WAIT_MS });
  } catch (error) {
    throw new Error(`timed out waiting for ${what}`);
  }
}

const text = (selector) => page.locator(selector).first().textContent({ timeout: WAIT_MS });

function waitForText(selector, expected) {
  return waitInPage(`${selector} to contain "${expected}"`,
    ([sel, want]) => document.querySelector(sel)?.textContent.includes(want), [selector, expected]);
}

function waitForBalance(account, expected) {
  const selector = `#accounts tr[data-account="${account}"] td.balance`;
  return waitInPage(`${account}'s balance to be ${expected}`,
    ([sel, want]) => document.querySelector(sel)?.textContent === want, [selector, expected]);
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function submitTransfer({ client, from, to, amount }) {
  await page.selectOption('#propose-from', from);
  await page.selectOption('#propose-to', to);
  await page.fill('#propose-client', client);
  await page.fill('#propose-amount', String(amount));
  await page.click('#propose-submit');
  await waitInPage('an outcome', () => {
    const kind = document.querySelector('#outcome')?.dataset.kind;
    return kind === 'committed' || kind === 'rejected';
  });
  return text('#outcome');
}

// ------------------------------------------------------------------ checks

const checks = [];
const check = (name, fn) => checks.push({ name, fn });

check('the page loads, connects and lists ledger:demo', async () => {
  await page.goto(`${base()}/`);
  assert((await page.title()) === 'arbiter', 'title is not "arbiter"');
  await page.locator('button.stream[data-stream="ledger:demo"]').waitFor({ timeout: WAIT_MS });
  await waitInPage('the connection status "connected"',
    () => document.querySelector('#connection')?.dataset.state === 'connected');
});

check('choosing ledger:demo shows its accounts, version and earlier events', async () => {
  await page.click('button.stream[data-stream="ledger:demo"]');
  assert(await page.getAttribute('button.stream[data-stream="ledger:demo"]', 'aria-current') === 'true',
    'the chosen stream is not marked current');
  for (const account of ['alice', 'bob', 'carol']) await waitForBalance(account, '100,000');
  const owner = await text('#accounts tr[data-account="bob"] td:nth-child(2)');
  assert(owner === 'bob', `bob's owner shows as "${owner}"`);
  await waitForText('#version', '6');
  await waitForText('#log-body tr[data-seq="1"]', 'account_opened');
  assert(new URL(page.url()).hash === '#ledger%3Ademo', `the URL is ${page.url()}`);
});

check('a transfer made over HTTP arrives as a live patch with the new balances', async () => {
  const { status, body } = await postCommand('alice', 1, 'transfer', { from: 'alice', to: 'bob', amount: 250 });
  assert(status === 200 && body.type === 'committed' && body.seq === 7, `POST answered ${status} ${JSON.stringify(body)}`);
  await waitForText('#log-body tr[data-seq="7"]', 'transferred');
  const row = await text('#log-body tr[data-seq="7"]');
  assert(row.includes('"amount": 250') && row.includes('alice'), `the log row reads "${row}"`);
  await waitForBalance('alice', '99,750');
  await waitForBalance('bob', '100,250');
  await waitForText('#version', '7');
});

check('the form proposes a transfer over the socket and shows "committed"', async () => {
  // Choosing "from" fills in its owner as the client id.
  await page.selectOption('#propose-from', 'bob');
  assert(await page.inputValue('#propose-client') === 'bob', 'the owner of "from" was not filled in');
  const outcome = await submitTransfer({ client: 'bob', from: 'bob', to: 'carol', amount: 1000 });
  assert(/committed at seq 8/.test(outcome), `the outcome reads "${outcome}"`);
  await waitForBalance('bob', '99,250');
  await waitForBalance('carol', '101,000');
  await waitForText('#log-body tr[data-seq="8"]', 'bob');
});

check('an over-limit transfer shows the rejection code EXCEEDS_LIMIT', async () => {
  const outcome = await submitTransfer({ client: 'alice', from: 'alice', to: 'carol', amount: 2000000 });
  assert(outcome.includes('rejected') && outcome.includes('EXCEEDS_LIMIT'), `the outcome reads "${outcome}"`);
  await waitForBalance('alice', '99,750');
  assert(await text('#version') === '8', 'a rejection moved the version');
});

check('a transfer from an account the client does not own shows FORBIDDEN', async () => {
  const outcome = await submitTransfer({ client: 'carol', from: 'alice', to: 'carol', amount: 5 });
  assert(outcome.includes('FORBIDDEN'), `the outcome reads "${outcome}"`);
});

check('after a server restart the page reconnects and resumes after its last seq', async () => {
  const stopped = await stopServer();
  assert(stopped.code === 0, `arbiterd exited with ${JSON.stringify(stopped)} on SIGTERM`);
  await waitInPage('the connection status "offline"',
    () => document.querySelector('#connection')?.dataset.state === 'offline');
  await startServer(`127.0.0.1:${port}`);
  await waitInPage('the connection status "connected" again',
    () => document.querySelector('#connection')?.dataset.state === 'connected');
  const { body } = await postCommand('carol', 1, 'transfer', { from: 'carol', to: 'alice', amount: 100 });
  assert(body.type === 'committed' && body.seq === 9, `POST answered ${JSON.stringify(body)}`);
  await waitForText('#log-body tr[data-seq="9"]', 'carol');
  await waitForBalance('alice', '99,850');
  const counts = await page.evaluate(() => [7, 8, 9].map((seq) =>
    document.querySelectorAll(`#log-body tr[data-seq="${seq}"]`).length));
  assert(counts.join() === '1,1,1', `log rows for seq 7, 8, 9: ${counts}`);
  const notes = await page.locator('#log-body tr.note').count();
  assert(notes === 0, 'the page resynchronised from a snapshot instead of resuming with since');
});

check('the page raised no script error and fetched nothing from outside', async () => {
  assert(pageErrors.length === 0, `script errors: ${pageErrors.join('; ')}`);
  assert(outsideRequests.length === 0, `requests outside the server: ${outsideRequests.join(', ')}`);
});

check('arbiterd stops on SIGTERM with exit code 0', async () => {
  const stopped = await stopServer();
  assert(stopped.code === 0, `arbiterd exited with ${JSON.stringify(stopped)}`);
});

// ------------------------------------------------------------------ run

async function main() {
  await startServer('127.0.0.1:0');
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Chromium's own background traffic would only be refused on a closed network.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.hostname !== '127.0.0.1') outsideRequests.push(request.url());
  });

  let passed = 0;
  let failed = 0;
  let broken = null;
  for (const { name, fn } of checks) {
    if (broken !== null) {
      failed += 1;
      console.log(`FAIL ${name} (not run: an earlier check failed)`);
      continue;
    }
    try {
      await fn();
      passed += 1;
      console.log(`ok   ${name}`);
    } catch (error) {
      failed += 1;
      broken = name;
      console.log(`FAIL ${name}: ${error.message}`);
    }
    // The screenshot shows the page at its liveliest: after the form's checks.
    if (name.startsWith('a transfer from an account')) await screenshot();
  }
  if (broken !== null) {
    await screenshot();
    console.log(`--- arbiterd log (${serverLog}):\n${fs.readFileSync(serverLog, 'utf8')}`);
  }
  return { passed, failed };
}

async function screenshot() {
  if (page === null) return;
  fs.mkdirSync(outDir, { recursive: true });
  await page.screenshot({ path: screenshotPath, fullPage: true }).catch(() => {});
  console.log(`screenshot: ${path.relative(process.cwd(), screenshotPath)}`);
}

const watchdog = setTimeout(() => {
  console.log(`FAIL the browser test did not finish in ${RUN_MS / 1000} s`);
  server?.child.kill('SIGKILL');
  console.log('0 passed, 1 failed');
  process.exit(1);
}, RUN_MS);

let result = { passed: 0, failed: 1 };
try {
  result = await main();
} catch (error) {
  console.log(`FAIL setting up: ${error.message}`);
  if (fs.existsSync(serverLog)) console.log(fs.readFileSync(serverLog, 'utf8'));
} finally {
  await browser?.close().catch(() => {});
  await stopServer().catch(() => {});
  clearTimeout(watchdog);
  if (result.failed === 0) fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(`${result.passed} passed, ${result.failed} failed`);
process.exit(result.failed === 0 && result.passed > 0 ? 0 : 1);
