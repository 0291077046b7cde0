// The /dev pages in headless Chromium, against the built otpd binary
// (target/debug/otpd): a code sent from the try page shows up in the inbox
// pane without a reload, a wrong code shows the attempts left, the right one
// is approved, a used one is gone and too many wrong ones lock the code; the
// inbox page lists the messages newest first and takes new ones live.
// With SCREENSHOTS=1 it also writes the README's screenshots to docs/img/.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'target', 'debug', 'otpd');
const IMG = path.join(ROOT, 'docs', 'img');
const SCREENSHOTS = process.env.SCREENSHOTS === '1';

/** A screenshot for the README, when asked for. */
async function snap(page, name) {
  if (SCREENSHOTS) {
    await page.screenshot({ path: path.join(IMG, name) });
  }
}
const CHROMIUM = process.env.OTPD_TEST_CHROMIUM || '/usr/bin/chromium';
const FIRST = '+14155552671';
const SECOND = '+14155552672';
const TIMEOUT = 10_000;

let otpd;
let base;
let context;
let scratch;
const problems = [];

const freePort = () => new Promise((resolve, reject) => {
  const server = net.createServer();
  server.on('error', reject);
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntilUp() {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline || otpd.exitCode !== null) {
      throw new Error(`otpd did not come up: ${otpd.stderrText}`);
    }
    await sleep(50);
  }
}

before(async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: run cargo build first`);
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'otpd-browser-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // Only these settings: none of the caller's OTPD_* variables, and no
  // otpd.toml (the working directory is empty).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTPD_')));
  Object.assign(env, {
    OTPD_HTTP__LISTEN: `127.0.0.1:${port}`,
    OTPD_LOG__LEVEL: 'warn',
    OTPD_STORE__URL: 'memory://',
    OTPD_SMS__PROVIDER: 'console',
    OTPD_OTP__MAX_ATTEMPTS: '3',
    OTPD_LIMITS__RESEND_AFTER_SECS: '0',
    OTPD_LIMITS__SENDS_PER_PHONE: '0',
    OTPD_LIMITS__SENDS_PER_IP: '0',
    OTPD_LIMITS__VERIFIES_PER_IP: '0',
  });
  delete env.RUST_LOG;
  otpd = spawn(BIN, [], { cwd: scratch, env, stdio: ['ignore', 'ignore', 'pipe'] });
  otpd.stderrText = '';
  otpd.stderr.on('data', (chunk) => { otpd.stderrText += chunk; });
  await waitUntilUp();
  context = await chromium.launchPersistentContext(path.join(scratch, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1000, height: 860 },
    colorScheme: 'light',
  });
  context.setDefaultTimeout(TIMEOUT);
});

after(async () => {
  if (context) await context.close();
  if (otpd && otpd.exitCode === null) otpd.kill('SIGTERM');
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

// The API's 4xx answers are what the try page shows; Chromium logs each.
const expected = /^Failed to load resource: the server responded with a status of 4\d\d/;

// Console errors and failed scripts, e.g. anything the CSP blocks.
async function open(route) {
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected.test(m.text())) problems.push(`${route}: ${m.text()}`);
  });
  page.on('requestfailed', (r) => {
    // The event stream is cut when the page closes.
    if (!r.url().endsWith('/dev/inbox/events')) problems.push(`${route}: ${r.url()} ${r.failure().errorText}`);
  });
  page.on('pageerror', (e) => problems.push(`${route}: ${e.message}`));
  await page.goto(`${base}${route}`);
  await page.locator('#inbox-status', { hasText: 'Live' }).waitFor();
  return page;
}

async function outcomeOf(page, name) {
  const outcome = page.locator(`#outcome[data-outcome="${name}"]`);
  await outcome.waitFor();
  return outcome.textContent();
}

const wrong = (code) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

test('the try page walks through a verification, the inbox pane updating live', async () => {
  const page = await open('/dev/try');
  // Gone if the page reloads.
  await page.evaluate(() => { window.stillTheSamePage = true; });

  await page.fill('#phone', FIRST);
  await page.getByRole('button', { name: 'Send code' }).click();
  assert.match(await outcomeOf(page, 'sent'), /Code sent to \+14155552671 by console/);
  const message = page.locator('#inbox li', { hasText: FIRST }).first();
  await message.waitFor();
  const code = (await message.locator('.code').textContent()).trim();
  assert.match(code, /^\d{6}$/);
  assert.match(await message.locator('.text').textContent(), new RegExp(code));
  assert.equal(await page.evaluate(() => window.stillTheSamePage), true, 'the page did not reload');

  await page.fill('#code', wrong(code));
  await page.getByRole('button', { name: 'Verify' }).click();
  assert.equal(await outcomeOf(page, 'code_mismatch'), 'Wrong code: 2 attempts left.');
  const exchange = page.locator('#exchanges li').first();
  assert.match(await exchange.locator('.line').first().textContent(), /^POST \/v1\/otp\/verify$/);
  assert.match(await exchange.locator('.line').nth(1).textContent(), /^→ 422/);
  assert.match(await exchange.locator('pre.response').textContent(), /"attempts_remaining": 2/);

  await page.getByRole('button', { name: 'Check status' }).click();
  assert.match(await outcomeOf(page, 'pending'), /2 attempts left/);

  await message.getByRole('button', { name: /^Use code/ }).click();
  assert.equal(await page.inputValue('#code'), code);
  await page.getByRole('button', { name: 'Verify' }).click();
  assert.equal(await outcomeOf(page, 'approved'), 'Approved: the code was right, and is now used up.');
  await snap(page, 'try.png');

  await page.getByRole('button', { name: 'Verify' }).click();
  assert.match(await outcomeOf(page, 'not_found'), /^No pending code/);

  await page.fill('#phone', SECOND);
  await page.getByRole('button', { name: 'Send code' }).click();
  await outcomeOf(page, 'sent');
  const second = page.locator('#inbox li', { hasText: SECOND }).first();
  await second.waitFor();
  await page.fill('#code', wrong((await second.locator('.code').textContent()).trim()));
  for (const left of [2, 1, 0]) {
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.locator('#outcome', { hasText: `${left} attempts left` }).waitFor();
  }
  await page.getByRole('button', { name: 'Verify' }).click();
  assert.match(await outcomeOf(page, 'max_attempts_reached'), /^Locked/);
  assert.equal(await page.evaluate(() => window.stillTheSamePage), true, 'the page did not reload');
  await page.close();
});

test('the inbox page lists messages newest first and takes new ones live', async () => {
  const page = await open('/dev/inbox');
  await page.locator('#inbox li').nth(1).waitFor();
  const phones = await page.locator('#inbox li .phone').allTextContents();
  assert.deepEqual(phones.slice(0, 2), [SECOND, FIRST]);

  const sent = await fetch(`${base}/v1/otp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ phone: '+442079460958' }),
  });
  assert.equal(sent.status, 202);
  await page.locator('#inbox li').first().filter({ hasText: '+442079460958' }).waitFor();
  assert.equal(await page.locator('#inbox li').count(), 3);
  assert.equal(await page.locator('#inbox li').first().locator('.state').textContent(), 'queued');
  await page.setViewportSize({ width: 1000, height: 600 });
  await snap(page, 'inbox.png');

  // A call shows as the words it would say, its code one click away.
  const called = await fetch(`${base}/v1/otp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ phone: '+442079460959', channel: 'voice' }),
  });
  assert.equal(called.status, 202);
  const call = page.locator('#inbox li').first().filter({ hasText: '+442079460959' });
  await call.waitFor();
  assert.match(await call.locator('.text').textContent(), /^\(en-[A-Z]{2}\) Your verification code is: (\d\. ){6}/);
  assert.ok((await call.locator('.badge').allTextContents()).includes('voice'));
  const spokenCode = (await call.locator('.text').textContent()).match(/(\d)\. (\d)\. (\d)\. (\d)\. (\d)\. (\d)\./).slice(1).join('');
  assert.equal(await call.locator('code.code').textContent(), spokenCode);
  await page.close();
});

test('no page logged an error or failed to load a resource', () => {
  assert.deepEqual(problems, []);
});
