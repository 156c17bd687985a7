// chat_test.mjs - the chat page of `ember serve` in a real browser (run by
// tests/cli_browser.sh, which starts the server): Debian's headless Chromium
// driven by playwright-core (pinned in package-lock.json) loads /, a person
// types a message and clicks Send, and the test watches the reply stream in
// (the text must appear while the request is still running and grow in
// several later updates), checks the speed line (tokens, seconds, tok/s),
// that the page asked nothing of any other host, and saves a screenshot.
//
// Environment: BASE (the server's URL), CHROMIUM (the browser binary),
// PROFILE (a fresh, empty user-data folder), SHOT (where the PNG goes).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

const BASE = process.env.BASE;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PROFILE = process.env.PROFILE;
const SHOT = process.env.SHOT;
const API_KEY = process.env.API_KEY || ''; // set when the server runs with --auth
if (!BASE || !PROFILE || !SHOT) throw new Error('BASE, PROFILE and SHOT must be set');

let passed = 0, failed = 0;
function check(name, cond, detail) {
  if (cond) { passed++; console.log(`ok - ${name}`); }
  else { failed++; console.log(`not ok - ${name}${detail ? ': ' + detail : ''}`); }
}

const MESSAGE = 'Tell me a story about a little dog.';
const context = await chromium.launchPersistentContext(PROFILE, {
  executablePath: CHROMIUM,
  headless: true,
  chromiumSandbox: false, // --no-sandbox: the tests run as root
  args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1100, height: 720 },
  timeout: 60000,
});
try {
  const page = context.pages()[0] || await context.newPage();
  const errors = [], foreign = [];
  page.on('pageerror', e => errors.push(String(e)));
  page.on('console', m => {
    // the browser's own request for /favicon.ico (the server has none) is no script error
    // nor is the 401 the page's first /v1/models meets before the key is entered
    const expected401 = API_KEY && /\/v1\/models$/.test(m.location().url || '') && / 401 /.test(m.text());
    if (m.type() === 'error' && !/\/favicon\.ico$/.test(m.location().url || '') && !expected401) errors.push(m.text());
  });
  page.on('request', r => { if (!r.url().startsWith(BASE + '/')) foreign.push(r.url()); });

  const resp = await page.goto(BASE + '/', { waitUntil: 'load' });
  check('GET / answers 200', resp && resp.status() === 200, resp && String(resp.status()));
  check('the page is titled "ember chat"', (await page.title()) === 'ember chat');
  await page.waitForFunction(() => document.getElementById('model').textContent !== 'connecting...', null,
    { timeout: 15000 });
  if (API_KEY) {
    // a server with keys: the page says so until a key is entered in its field
    const before = await page.textContent('#model');
    check('without a key the page asks for one', /needs an API key/.test(before), before);
    await page.fill('#apikey', API_KEY);
    await page.dispatchEvent('#apikey', 'change');
    await page.waitForFunction(() => /^stories260K/.test(document.getElementById('model').textContent), null,
      { timeout: 15000 }).catch(() => {});
    check('the key is kept in the browser for the next visit',
      (await page.evaluate(() => localStorage.getItem('ember_api_key'))) === API_KEY);
  }
  const model = await page.textContent('#model');
  check('the sidebar names the model', /^stories260K - llama/.test(model), model);

  // Record every change of the reply as it happens, with the time and
  // whether the request was over (Send is disabled while one runs; the speed
  // line is updated as chunks arrive and completed at the end).
  await page.evaluate(() => {
    window.__updates = [];
    const log = document.getElementById('log');
    new MutationObserver(() => {
      const boxes = log.querySelectorAll('.msg.assistant, .msg.error');
      const box = boxes[boxes.length - 1];
      if (!box) return;
      const text = box.firstChild.textContent, done = !document.getElementById('send').disabled;
      const last = window.__updates[window.__updates.length - 1];
      if (last && last.len === text.length && last.done === done) return;
      window.__updates.push({ t: performance.now(), len: text.length, done });
    }).observe(log, { childList: true, subtree: true, characterData: true });
  });

  // Parameters as a person would set them, then type and send.
  await page.fill('#max_tokens', '300');
  await page.fill('#seed', '7');
  await page.click('#input');
  await page.keyboard.type(MESSAGE, { delay: 15 });
  await page.click('#send');
  await page.waitForFunction(() => {
    const s = document.querySelector('.msg.assistant .stats');
    return (s && / finish: /.test(s.textContent)) || document.querySelector('.msg.error') ||
      !document.getElementById('send').disabled;
  }, null, { timeout: 90000 });

  const user = await page.$$eval('.msg.user', els => els.map(e => e.textContent));
  check('the message shows as sent', user.length === 1 && user[0] === MESSAGE, JSON.stringify(user));
  check('no error reply', (await page.$('.msg.error')) === null,
    await page.$eval('.msg.error', e => e.textContent).catch(() => ''));
  const reply = await page.$eval('.msg.assistant', e => e.firstChild.textContent).catch(() => '');
  check('a reply appeared', reply.trim().length > 20, JSON.stringify(reply));
  console.log(`  reply (${reply.length} chars): ${JSON.stringify(reply.slice(0, 160))}...`);

  const updates = await page.evaluate(() => window.__updates);
  const partial = updates.filter(u => !u.done && u.len > 0);
  let growing = partial.length > 0;
  for (let i = 1; i < partial.length; i++) if (partial[i].len <= partial[i - 1].len) growing = false;
  const span = partial.length ? partial[partial.length - 1].t - partial[0].t : 0;
  check('the reply streamed: shown before the request finished and grew in several later updates',
    partial.length >= 3 && growing && span > 0,
    `${partial.length} partial updates over ${span.toFixed(1)} ms: ${JSON.stringify(updates.slice(0, 8))}`);
  console.log(`  ${partial.length} partial updates over ${span.toFixed(0)} ms before the reply was complete`);

  const stats = await page.$eval('.msg.assistant .stats', e => e.textContent).catch(() => '');
  const m = /^(\d+) tokens in ([\d.]+) s, ([\d.]+) tok\/s, first token after (\d+) ms, prompt (\d+) tokens, finish: (\w+)$/
    .exec(stats);
  check('the speed line shows tokens, time, tok/s, first-token latency, prompt size, finish reason', !!m, stats);
  if (m) {
    const [tok, sec, tps] = [Number(m[1]), Number(m[2]), Number(m[3])];
    // the seconds are rounded to 0.01: tok/s must lie within what that allows
    const lo = tok / (sec + 0.006), hi = sec > 0.006 ? tok / (sec - 0.006) : Infinity;
    check('tok/s is positive and equals tokens / seconds', tok > 0 && tps > 0 && tps >= lo - 0.1 && tps <= hi + 0.1,
      stats);
    console.log(`  ${stats}`);
  }
  check('Send is enabled again and Stop disabled after the reply',
    !(await page.isDisabled('#send')) && (await page.isDisabled('#stop')));
  check('no script errors on the page', errors.length === 0, errors.join(' | '));
  check('the page loaded nothing from any other host', foreign.length === 0, foreign.join(' '));

} catch (e) {
  failed++;
  console.log(`not ok - browser test: ${e && e.stack ? e.stack : e}`);
} finally {
  // the screenshot is taken whatever happened: it shows what a person would have seen
  try {
    mkdirSync(dirname(SHOT), { recursive: true });
    await context.pages()[0].screenshot({ path: SHOT });
    check(`screenshot saved (${SHOT})`, true);
  } catch (e) {
    check('screenshot saved', false, String(e));
  }
  await context.close();
}
console.log(`chat_test: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
