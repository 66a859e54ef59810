// Browser test of the evsrepd status page (/ui/), run by tests/func/t_ui.sh
// with headless Debian chromium driven by puppeteer-core.
//
// Environment: UI_URL (http://127.0.0.1:PORT), TOKEN, PROJECT, GROUP_ID,
// PAIR_ID, ART_DIR (screenshots go there), CHROMIUM (default
// /usr/bin/chromium), UI_DEADLINE_SEC (default 120).
//
// The group is paused, its pair has dirty data and its DR disk is slow: the
// test syncs it from the page, watches the pair go copying -> active, pauses
// it (new frozen_at), syncs again, and checks on the way: no console errors,
// no failed requests, the token in no URL and not in localStorage, every
// interactive element reachable with Tab and named, the confirm dialog, the
// phone layout, and log-out. Exits 0 when every check passed.
'use strict';

const fs = require('fs');
const path = require('path');
const puppeteer = require('puppeteer-core');

const env = (k, d) => {
  const v = process.env[k] || d;
  if (v === undefined) {
    console.error('ui_test: ' + k + ' is not set');
    process.exit(2);
  }
  return v;
};
const URL = env('UI_URL');
const TOKEN = env('TOKEN');
const PROJECT = env('PROJECT');
const GROUP_ID = env('GROUP_ID');
const PAIR_ID = env('PAIR_ID');
const ART_DIR = env('ART_DIR');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const DEADLINE_SEC = parseInt(env('UI_DEADLINE_SEC', '120'), 10);

const failures = [];
const t0 = Date.now();
let browser = null;
let shot = 0;

function log(msg) {
  console.error('[ui_test +' + ((Date.now() - t0) / 1000).toFixed(1) + 's] ' + msg);
}
function fail(msg) {
  log('FAIL: ' + msg);
  failures.push(msg);
}
function check(cond, msg) {
  if (!cond) fail(msg);
  return !!cond;
}

// The whole run is bounded: past the deadline, kill the browser and exit.
const deadline = setTimeout(async () => {
  fail('deadline of ' + DEADLINE_SEC + ' s passed');
  try {
    if (browser) browser.process() && browser.process().kill('SIGKILL');
  } catch (e) {
    /* exiting anyway */
  }
  report();
}, DEADLINE_SEC * 1000);

function report() {
  clearTimeout(deadline);
  if (failures.length) {
    console.error('ui_test: ' + failures.length + ' check(s) failed:');
    for (const f of failures) console.error('  ' + f);
    process.exit(1);
  }
  log('ok');
  process.exit(0);
}

async function screenshot(page, name) {
  shot++;
  const file = path.join(ART_DIR, String(shot).padStart(2, '0') + '-' + name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  log('screenshot ' + file);
}

// Wait until fn() (run in the page) is truthy; fail with what on timeout.
async function waitPage(page, what, fn, arg, timeoutMs) {
  try {
    await page.waitForFunction(fn, { timeout: timeoutMs || 20000, polling: 200 }, arg);
    return true;
  } catch (e) {
    fail('timeout waiting for ' + what);
    return false;
  }
}

function groupState(page) {
  return page.evaluate((gid) => {
    const g = document.querySelector('[data-group="' + gid + '"]');
    if (!g) return null;
    const dd = g.querySelectorAll('dl.facts dd');
    return {
      repl: g.getAttribute('data-replication-status'),
      frozenAt: g.querySelector('[data-frozen-at]').getAttribute('data-frozen-at'),
      frozenText: g.querySelector('[data-frozen-at]').textContent,
      result: g.querySelector('.result').textContent,
      facts: Array.from(dd).map((d) => d.textContent),
    };
  }, GROUP_ID);
}

function pairState(page) {
  return page.evaluate((pid) => {
    const r = document.querySelector('tr[data-pair="' + pid + '"]');
    if (!r) return null;
    const bar = r.querySelector('[role="progressbar"]');
    return {
      repl: r.getAttribute('data-replication-status'),
      valuenow: bar ? bar.getAttribute('aria-valuenow') : null,
      cells: Array.from(r.children).map((c) => c.textContent),
    };
  }, PAIR_ID);
}

// Every visible, enabled element a keyboard user must reach.
async function interactive(page) {
  return page.evaluate(() => {
    const sel = 'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])';
    const out = [];
    for (const e of document.querySelectorAll(sel)) {
      if (e.disabled) continue;
      const r = e.getBoundingClientRect();
      const st = getComputedStyle(e);
      if (st.visibility === 'hidden' || st.display === 'none') continue;
      if (e.closest('[hidden]') || e.closest('dialog:not([open])')) continue;
      if (r.width === 0 && r.height === 0 && !e.classList.contains('skip')) continue;
      if (!e.id) e.id = 'auto-' + Math.random().toString(36).slice(2);
      out.push(e.id);
    }
    return out;
  });
}

// Tab through the page from the top: every interactive element must be
// reached, in document order, and have an accessible name.
async function checkKeyboard(page, what) {
  const want = await interactive(page);
  // Chrome goes on from where focus last was, even after blur(): start from
  // a throw-away element at the very top of the body.
  await page.evaluate(() => {
    const s = document.createElement('span');
    s.id = 'tab-start';
    s.tabIndex = -1;
    document.body.prepend(s);
    s.focus();
  });
  const seen = [];
  for (let i = 0; i < want.length + 3; i++) {
    await page.keyboard.press('Tab');
    const id = await page.evaluate(() => (document.activeElement ? document.activeElement.id : ''));
    if (!id || seen.includes(id)) break;
    seen.push(id);
  }
  await page.evaluate(() => document.getElementById('tab-start').remove());
  const missing = want.filter((id) => !seen.includes(id));
  check(missing.length === 0, what + ': not reachable with Tab: ' + missing.join(', '));
  const inOrder = seen.filter((id) => want.includes(id));
  check(
    JSON.stringify(inOrder) === JSON.stringify(want.filter((id) => seen.includes(id))),
    what + ': Tab order ' + inOrder.join(',') + ' is not the document order ' + want.join(','),
  );
  const unnamed = [];
  for (const id of want) {
    const h = await page.$('[id="' + id + '"]');
    const ax = h ? await page.accessibility.snapshot({ root: h, interestingOnly: false }) : null;
    const name = ax && ax.name ? ax.name.trim() : '';
    if (!name) unnamed.push(id);
  }
  check(unnamed.length === 0, what + ': no accessible name: ' + unnamed.join(', '));
  if (!missing.length && !unnamed.length)
    log(what + ': ' + want.length + ' interactive elements, all reached with Tab, in order, and named');
}

async function tokenNowhere(page, what) {
  check(!page.url().includes(TOKEN), what + ': the token is in the page URL');
  const ls = await page.evaluate(() => JSON.stringify(Object.assign({}, localStorage)));
  check(!ls.includes(TOKEN), what + ': the token is in localStorage');
  const cookies = await page.evaluate(() => document.cookie);
  check(!cookies.includes(TOKEN), what + ': the token is in a cookie');
}

// Activate a group action button with the keyboard, check the dialog, confirm.
async function groupAction(page, which, label) {
  const btn = '[data-group="' + GROUP_ID + '"] button[data-action="' + which + '"]';
  await page.focus(btn);
  await page.keyboard.press('Enter');
  if (!(await waitPage(page, 'the ' + which + ' dialog', () => document.getElementById('confirm').open)))
    return;
  const d = await page.evaluate(() => ({
    title: document.getElementById('confirm-title').textContent,
    focus: document.activeElement && document.activeElement.id,
    modal: document.getElementById('confirm').matches(':modal'),
  }));
  check(d.modal, which + ': the confirmation is not a modal dialog');
  check(d.focus === 'confirm-cancel', which + ': focus is not on Cancel in the dialog (' + d.focus + ')');
  check(d.title.toLowerCase().includes(which), which + ': dialog title "' + d.title + '"');
  await screenshot(page, label + '-dialog');
  // Tab from Cancel to the confirm button, then Enter: all by keyboard.
  await page.keyboard.press('Tab');
  const f = await page.evaluate(() => document.activeElement && document.activeElement.id);
  check(f === 'confirm-ok', which + ': Tab in the dialog went to ' + f + ', not the confirm button');
  await page.keyboard.press('Enter');
  await waitPage(page, 'the ' + which + ' dialog to close', () => !document.getElementById('confirm').open);
  const okText = which === 'pause' ? 'paused' : 'sync started';
  await waitPage(
    page,
    'the ' + which + ' result message',
    (a) => {
      const g = document.querySelector('[data-group="' + a.gid + '"] .result');
      return g && g.textContent.includes(a.ok);
    },
    { gid: GROUP_ID, ok: okText },
    15000,
  );
}

async function main() {
  fs.mkdirSync(ART_DIR, { recursive: true });
  const args = ['--disable-dev-shm-usage', '--disable-gpu', '--no-first-run', '--no-default-browser-check'];
  // chromium's sandbox refuses to start as root; only then do without it.
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: args,
    timeout: 30000,
    protocolTimeout: 30000,
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(20000);
  await page.setViewport({ width: 1200, height: 900 });

  const consoleErrors = [];
  const badRequests = [];
  const urls = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push('page error: ' + e.message));
  page.on('requestfailed', (r) => badRequests.push(r.method() + ' ' + r.url() + ': ' + (r.failure() || {}).errorText));
  page.on('response', (r) => {
    if (r.status() >= 400) badRequests.push(r.request().method() + ' ' + r.url() + ': HTTP ' + r.status());
  });
  page.on('request', (r) => urls.push(r.url()));

  // 1. the page loads without a token, with its CSP.
  const resp = await page.goto(URL + '/ui/', { waitUntil: 'load' });
  check(resp && resp.status() === 200, 'GET /ui/: HTTP ' + (resp && resp.status()));
  const csp = resp ? resp.headers()['content-security-policy'] || '' : '';
  check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), 'CSP: ' + csp);
  await waitPage(page, 'the login form', () => !document.getElementById('login-section').hidden);
  await checkKeyboard(page, 'login page');
  await screenshot(page, 'login');

  // 2. a wrong token is refused with a clear message (its 401 is expected).
  await page.type('#project', PROJECT);
  await page.type('#token', 'not-the-token');
  await page.keyboard.press('Enter');
  await waitPage(page, 'the 401 message', () =>
    document.getElementById('login-error').textContent.includes('401'),
  );
  await screenshot(page, 'login-refused');
  check(
    (await page.evaluate(() => sessionStorage.length)) === 0,
    'a refused token stayed in sessionStorage',
  );
  consoleErrors.length = 0; // the refused request's console line and 401 are expected
  badRequests.length = 0;

  // 3. log in with the keyboard.
  await page.evaluate(() => {
    document.getElementById('project').value = '';
  });
  await page.focus('#project');
  await page.keyboard.type(PROJECT);
  await page.keyboard.press('Tab');
  await page.keyboard.type(TOKEN);
  await page.keyboard.press('Enter');
  await waitPage(page, 'the group card', (g) => !!document.querySelector('[data-group="' + g + '"]'), GROUP_ID);
  await waitPage(page, 'the pair row', (p) => !!document.querySelector('tr[data-pair="' + p + '"]'), PAIR_ID);
  await tokenNowhere(page, 'after log-in');
  check(
    (await page.evaluate(() => sessionStorage.getItem('evsrep.token'))) === TOKEN,
    'the token is not kept in sessionStorage',
  );
  let g = await groupState(page);
  log('group after log-in: ' + JSON.stringify(g));
  check(g && g.repl === 'active-stopped', 'group starts paused (active-stopped), saw ' + (g && g.repl));
  const frozen0 = g ? g.frozenAt : '';
  check(/^\d{4}-\d\d-\d\dT/.test(frozen0), 'frozen_at of the paused group shown: "' + frozen0 + '"');
  check(g && g.frozenText.includes('DR disks hold this instant'), 'paused frozen_at wording: ' + (g && g.frozenText));
  const live = await page.evaluate(() => {
    const l = document.getElementById('live');
    return l && l.getAttribute('aria-live');
  });
  check(live === 'polite', 'aria-live region missing');
  await screenshot(page, 'paused');
  await checkKeyboard(page, 'status page');

  // 4. sync from the page: the pair copies (slow DR), then is active.
  await groupAction(page, 'sync', 'sync1');
  await waitPage(
    page,
    'the pair to show copying',
    (p) => {
      const r = document.querySelector('tr[data-pair="' + p + '"]');
      return r && r.getAttribute('data-replication-status') === 'copying';
    },
    PAIR_ID,
    15000,
  );
  let p = await pairState(page);
  log('pair while copying: ' + JSON.stringify(p));
  check(p && p.valuenow !== null && parseInt(p.valuenow, 10) < 100, 'progress bar aria-valuenow while copying: ' + (p && p.valuenow));
  await screenshot(page, 'copying');
  await waitPage(
    page,
    'the progress bar to move',
    (a) => {
      const b = document.querySelector('tr[data-pair="' + a.p + '"] [role="progressbar"]');
      return b && parseInt(b.getAttribute('aria-valuenow'), 10) > a.v;
    },
    { p: PAIR_ID, v: p ? parseInt(p.valuenow, 10) : 0 },
    30000,
  );
  await waitPage(
    page,
    'the pair to become active',
    (pid) => {
      const r = document.querySelector('tr[data-pair="' + pid + '"]');
      return r && r.getAttribute('data-replication-status') === 'active';
    },
    PAIR_ID,
    60000,
  );
  p = await pairState(page);
  check(p && p.valuenow === '100', 'aria-valuenow of an active pair: ' + (p && p.valuenow));
  g = await groupState(page);
  check(g && g.repl === 'active', 'group active after the copy, saw ' + (g && g.repl));
  check(g && g.frozenText.includes('kept from the last pause'), 'active group frozen_at wording: ' + (g && g.frozenText));
  const said = await page.evaluate(() => document.getElementById('live').textContent);
  check(/→ active/.test(said), 'the live region did not announce the change to active: "' + said + '"');
  await screenshot(page, 'active');

  // 5. pause from the page: a new frozen_at.
  await groupAction(page, 'pause', 'pause');
  await waitPage(
    page,
    'a new frozen_at after the pause',
    (a) => {
      const e = document.querySelector('[data-group="' + a.g + '"] [data-frozen-at]');
      const gr = document.querySelector('[data-group="' + a.g + '"]');
      return e && e.getAttribute('data-frozen-at') > a.f && gr.getAttribute('data-replication-status') === 'active-stopped';
    },
    { g: GROUP_ID, f: frozen0 },
    15000,
  );
  g = await groupState(page);
  log('group after the pause: ' + JSON.stringify(g));
  const frozen1 = g ? g.frozenAt : '';
  await screenshot(page, 'paused-again');

  // 6. sync again: active, frozen_at kept as history.
  await groupAction(page, 'sync', 'sync2');
  await waitPage(
    page,
    'the group to be active after the second sync',
    (gid) => {
      const gr = document.querySelector('[data-group="' + gid + '"]');
      return gr && gr.getAttribute('data-replication-status') === 'active';
    },
    GROUP_ID,
    60000,
  );
  g = await groupState(page);
  check(g && g.frozenAt === frozen1, 'frozen_at kept after the sync: ' + (g && g.frozenAt) + ' vs ' + frozen1);
  check(g && g.frozenText.includes('kept from the last pause'), 'frozen_at wording after the sync: ' + (g && g.frozenText));
  await screenshot(page, 'synced');
  await checkKeyboard(page, 'status page after the actions');

  // 7. phone: no horizontal scrolling, still readable.
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
  await new Promise((r) => setTimeout(r, 500));
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, 'phone layout scrolls sideways by ' + overflow + ' px');
  await screenshot(page, 'phone');
  await page.setViewport({ width: 1200, height: 900 });

  // 8. reload keeps the session (same tab).
  await page.reload({ waitUntil: 'load' });
  await waitPage(page, 'the group card after a reload', (gid) => !!document.querySelector('[data-group="' + gid + '"]'), GROUP_ID);
  await tokenNowhere(page, 'after reload');

  // 9. the whole session so far: no console errors, no failed requests, no token in a URL.
  check(consoleErrors.length === 0, 'console errors: ' + consoleErrors.join(' | '));
  check(badRequests.length === 0, 'failed requests: ' + badRequests.join(' | '));
  const leaked = urls.filter((u) => u.includes(TOKEN));
  check(leaked.length === 0, 'the token appeared in request URLs: ' + leaked.join(' '));
  check(urls.every((u) => u.startsWith(URL) || u.startsWith('data:')), 'requests to another origin: ' + urls.filter((u) => !u.startsWith(URL)).join(' '));
  log(urls.length + ' requests, all to ' + URL);

  // 10. the daemon unreachable, then back: a clear message, then none.
  // (These failures are made on purpose, after the checks above.)
  let mode = 'down';
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    if (r.isInterceptResolutionHandled()) return;
    if (!r.url().includes('/v2/') || mode === 'up') return r.continue();
    if (mode === 'down') return r.abort('connectionrefused');
    return r.respond({
      status: 401,
      contentType: 'application/json',
      body: '{"error":{"code":"EVS.1002","message":"the X-Auth-Token is not valid"}}',
    });
  });
  await waitPage(page, 'the network error message', () => {
    const a = document.getElementById('alert');
    return !a.hidden && a.textContent.includes('Cannot reach evsrepd');
  }, null, 15000);
  await screenshot(page, 'unreachable');
  mode = 'up';
  await waitPage(page, 'the network error message to go', () => document.getElementById('alert').hidden, null, 20000);
  // A token that stops working (401) sends the page back to the log-in form.
  mode = '401';
  await waitPage(page, 'the log-in form after a 401', () =>
    !document.getElementById('login-section').hidden &&
    document.getElementById('login-error').textContent.includes('401'), null, 15000);
  check((await page.evaluate(() => sessionStorage.length)) === 0, 'a refused token stayed in sessionStorage');
  check(!(await page.evaluate(() => document.getElementById('groups').textContent)), 'a refused token left the groups on the page');
  await screenshot(page, 'token-refused');
  mode = 'up';

  // 11. log in again; log out clears everything.
  await page.evaluate(() => {
    document.getElementById('project').value = '';
  });
  await page.type('#project', PROJECT);
  await page.type('#token', TOKEN);
  await page.keyboard.press('Enter');
  await waitPage(page, 'the group card after logging in again', (gid) => !!document.querySelector('[data-group="' + gid + '"]'), GROUP_ID);
  await page.focus('#logout');
  await page.keyboard.press('Enter');
  await waitPage(page, 'the login form after log-out', () => !document.getElementById('login-section').hidden);
  const left = await page.evaluate(() => sessionStorage.length + localStorage.length);
  check(left === 0, 'log-out left ' + left + ' storage item(s)');
  check(!(await page.evaluate(() => document.getElementById('groups').textContent)), 'log-out left the groups on the page');
  await tokenNowhere(page, 'after log-out');
  await screenshot(page, 'logged-out');
}

main()
  .catch((e) => fail('exception: ' + (e && e.stack ? e.stack : e)))
  .finally(async () => {
    try {
      if (browser) await browser.close();
    } catch (e) {
      /* reported below */
    }
    report();
  });
