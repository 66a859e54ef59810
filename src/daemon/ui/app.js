// evsrep status page. Served by evsrepd at /ui/ (src/daemon/api/ui.c); no
// build step, no third-party code. The token and project id live in this
// tab's sessionStorage only: never in a URL, never in localStorage, never
// logged. Every API request carries the token in X-Auth-Token.
'use strict';

(function () {
  const POLL_MS = 2000;
  const MAX_BACKOFF_MS = 30000;
  const KEY_TOKEN = 'evsrep.token';
  const KEY_PROJECT = 'evsrep.project';
  const GROUPS = 'os-vendor-replication-consistency-groups';
  const PAIRS = 'os-vendor-replications';
  const PAUSE = 'os-stop-replication-consistency-group';
  const SYNC = 'os-sync-replication-consistency-group';
  // docs/api.md §5.3 and §5.4
  const FAULT_TEXT = {
    '0': 'no fault',
    '2': 'production disk failing: failover advised',
    '5': 'link to the peer zone down: failover is not safe',
  };
  const DETAIL_TEXT = {
    '37100043': 'peer zone unreachable',
    '37100048': 'production disk missing',
    '37100050': 'DR disk missing',
    '37000212': 'internal failure',
    '37000216': 'busy',
  };

  const $ = (id) => document.getElementById(id);
  let timer = null;
  let delayMs = POLL_MS;
  let polling = false;
  let inFlight = false;
  const seen = new Map(); // "g:<id>" / "p:<id>" -> last replication_status
  const groupCards = new Map(); // group id -> card elements
  const pairRows = new Map(); // pair id -> row elements

  // ---- credentials

  function creds() {
    return {
      token: sessionStorage.getItem(KEY_TOKEN),
      project: sessionStorage.getItem(KEY_PROJECT),
    };
  }

  function forget() {
    sessionStorage.removeItem(KEY_TOKEN);
    sessionStorage.removeItem(KEY_PROJECT);
  }

  // ---- API

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const c = creds();
    if (!c.token || !c.project) throw new ApiError(401, 'not logged in');
    const opts = {
      method: method,
      headers: { 'X-Auth-Token': c.token, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch('/v2/' + encodeURIComponent(c.project) + '/' + path, opts);
    } catch (e) {
      throw new ApiError(0, 'Cannot reach evsrepd (network error)');
    }
    const text = await res.text();
    let json = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch (e) {
        json = null;
      }
    }
    if (!res.ok) {
      const msg = json && json.error && json.error.message;
      throw new ApiError(res.status, msg || 'HTTP ' + res.status);
    }
    return json;
  }

  // ---- small DOM helpers (text only: names come from the API)

  function el(tag, props, children) {
    const e = document.createElement(tag);
    if (props) {
      for (const k of Object.keys(props)) {
        if (k === 'text') e.textContent = props[k];
        else if (k === 'class') e.className = props[k];
        else e.setAttribute(k, props[k]);
      }
    }
    for (const c of children || []) e.append(c);
    return e;
  }

  function setText(e, t) {
    const s = t === null || t === undefined ? '' : String(t);
    if (e.textContent !== s) e.textContent = s;
  }

  function bytes(n) {
    if (typeof n !== 'number') return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? String(v) : v.toFixed(1)) + ' ' + units[i];
  }

  function label(g) {
    return g.name ? g.name : g.id;
  }

  function announce(msg) {
    const live = $('live');
    live.textContent = msg;
  }

  function showAlert(msg) {
    const a = $('alert');
    if (!msg) {
      a.hidden = true;
      a.textContent = '';
      return;
    }
    a.textContent = msg;
    a.hidden = false;
  }

  function badge(e, value) {
    setText(e, value || 'unknown');
    e.className = 'badge st-' + String(value || 'unknown').replace(/[^a-z-]/g, '');
  }

  function faultText(level) {
    return FAULT_TEXT[level] ? level + ' (' + FAULT_TEXT[level] + ')' : String(level);
  }

  // ---- pairs

  function pairRow(p) {
    let r = pairRows.get(p.id);
    if (!r) {
      r = { id: p.id };
      r.name = el('td', { 'data-label': 'Pair' });
      r.repl = el('span');
      r.bar = el('div', { class: 'fill' });
      r.progress = el(
        'div',
        {
          class: 'progress',
          role: 'progressbar',
          'aria-valuemin': '0',
          'aria-valuemax': '100',
          'aria-valuenow': '0',
        },
        [r.bar],
      );
      r.pct = el('span', { class: 'pct' });
      r.dirty = el('td', { 'data-label': 'Dirty' });
      r.copied = el('td', { 'data-label': 'Copied' });
      r.rate = el('td', { 'data-label': 'Rate' });
      r.fault = el('td', { 'data-label': 'Fault level' });
      r.err = el('td', { 'data-label': 'Last error' });
      r.tr = el('tr', { 'data-pair': p.id }, [
        r.name,
        el('td', { 'data-label': 'Replication' }, [r.repl]),
        el('td', { 'data-label': 'Progress' }, [r.progress, r.pct]),
        r.dirty,
        r.copied,
        r.rate,
        r.fault,
        r.err,
      ]);
      pairRows.set(p.id, r);
    }
    setText(r.name, label(p));
    r.name.title = p.id;
    badge(r.repl, p.replication_status);
    r.tr.setAttribute('data-replication-status', p.replication_status || '');
    const pct = Math.max(0, Math.min(100, parseInt(p.progress, 10) || 0));
    r.progress.setAttribute('aria-valuenow', String(pct));
    r.progress.setAttribute('aria-label', 'Copy progress of pair ' + label(p));
    r.bar.style.width = pct + '%'; // CSSOM, allowed by the CSP (no inline style attribute)
    setText(r.pct, pct + ' %');
    setText(r.dirty, bytes(p.dirty_bytes));
    setText(r.copied, bytes(p.bytes_copied));
    setText(
      r.rate,
      typeof p.copy_rate_bytes_per_sec === 'number' ? bytes(p.copy_rate_bytes_per_sec) + '/s' : '–',
    );
    setText(r.fault, faultText(p.fault_level));
    r.fault.className = p.fault_level && p.fault_level !== '0' ? 'bad' : '';
    const d = p.failure_detail ? String(p.failure_detail) : '';
    setText(r.err, d ? d + (DETAIL_TEXT[d] ? ' (' + DETAIL_TEXT[d] + ')' : '') : 'none');
    r.err.className = d ? 'bad' : '';
    return r.tr;
  }

  function pairTable(captionText, rows) {
    const tbody = el('tbody');
    const caption = el('caption', { text: captionText });
    const head = el('thead', null, [
      el(
        'tr',
        null,
        ['Pair', 'Replication', 'Progress', 'Dirty', 'Copied', 'Rate', 'Fault level', 'Last error'].map(
          (h) => el('th', { scope: 'col', text: h }),
        ),
      ),
    ]);
    const t = el('table', { class: 'pairs' }, [caption, head, tbody]);
    for (const r of rows) tbody.append(r);
    return { table: t, tbody: tbody, caption: caption };
  }

  function fillBody(tbody, rows) {
    // Reorder only when needed, so focus and selection survive the poll.
    const cur = Array.from(tbody.children);
    if (cur.length === rows.length && cur.every((c, i) => c === rows[i])) return;
    tbody.replaceChildren(...rows);
  }

  // ---- groups

  function groupCard(g) {
    let c = groupCards.get(g.id);
    if (!c) {
      const hid = 'g-' + g.id + '-name';
      c = { id: g.id };
      c.title = el('h3', { id: hid });
      c.status = el('span');
      c.repl = el('span');
      c.frozen = el('dd');
      c.fault = el('dd');
      c.faultMsg = el('dd');
      c.copied = el('dd');
      c.result = el('p', { class: 'result', role: 'status' });
      c.pause = el('button', { type: 'button', class: 'primary', 'data-action': 'pause' });
      c.sync = el('button', { type: 'button', 'data-action': 'sync' });
      c.pause.addEventListener('click', () => confirmAction(c, 'pause', c.pause));
      c.sync.addEventListener('click', () => confirmAction(c, 'sync', c.sync));
      c.pairs = pairTable('', []);
      c.root = el('article', { class: 'card group', 'aria-labelledby': hid, 'data-group': g.id }, [
        c.title,
        el('dl', { class: 'facts' }, [
          el('dt', { text: 'Status' }),
          el('dd', null, [c.status]),
          el('dt', { text: 'Replication' }),
          el('dd', null, [c.repl]),
          el('dt', { text: 'Frozen at' }),
          c.frozen,
          el('dt', { text: 'Fault level' }),
          c.fault,
          el('dt', { text: 'Fault message' }),
          c.faultMsg,
          el('dt', { text: 'Bytes copied' }),
          c.copied,
        ]),
        el('div', { class: 'actions' }, [c.pause, c.sync]),
        c.result,
        el('div', { class: 'scroll' }, [c.pairs.table]),
      ]);
      groupCards.set(g.id, c);
    }
    c.name = label(g);
    setText(c.title, 'Group ' + label(g));
    c.title.title = g.id;
    badge(c.status, g.status);
    badge(c.repl, g.replication_status);
    c.root.setAttribute('data-replication-status', g.replication_status || '');
    if (g.frozen_at) {
      const paused = g.replication_status === 'active-stopped' || g.replication_status === 'inactive';
      setText(
        c.frozen,
        g.frozen_at +
          ' UTC' +
          (paused
            ? ' (the DR disks hold this instant)'
            : ' (kept from the last pause; the DR disks follow production now)'),
      );
    } else {
      setText(c.frozen, 'never frozen');
    }
    c.frozen.setAttribute('data-frozen-at', g.frozen_at || '');
    setText(c.fault, faultText(g.fault_level));
    c.fault.className = g.fault_level && g.fault_level !== '0' ? 'bad' : '';
    setText(c.faultMsg, g.fault_message || 'none');
    c.faultMsg.className = g.fault_message ? 'bad' : '';
    setText(c.copied, bytes(g.bytes_copied));
    setText(c.pause, 'Pause group ' + label(g));
    setText(c.sync, 'Sync group ' + label(g));
    setText(c.pairs.caption, 'Member pairs of group ' + label(g));
    return c;
  }

  // ---- confirmation dialog and actions

  let pending = null;

  function confirmAction(card, what, opener) {
    const d = $('confirm');
    pending = { card: card, what: what, opener: opener };
    if (what === 'pause') {
      setText($('confirm-title'), 'Pause group ' + card.name + '?');
      setText(
        $('confirm-text'),
        'Replication stops on every pair of the group at one instant: the DR disks keep ' +
          'that crash-consistent image until the group is synced again.',
      );
      setText($('confirm-ok'), 'Pause');
    } else {
      setText($('confirm-title'), 'Sync group ' + card.name + '?');
      setText(
        $('confirm-text'),
        'Replication resumes: the DR disks copy what changed since the pause and stop ' +
          'holding the paused image.',
      );
      setText($('confirm-ok'), 'Sync');
    }
    d.showModal();
    $('confirm-cancel').focus();
  }

  function closeDialog() {
    const d = $('confirm');
    if (d.open) d.close();
  }

  async function runPending() {
    const p = pending;
    pending = null;
    closeDialog();
    if (!p) return;
    const key = p.what === 'pause' ? PAUSE : SYNC;
    const done = p.what === 'pause' ? 'paused' : 'sync started';
    setText(p.card.result, (p.what === 'pause' ? 'Pausing' : 'Syncing') + ' group ' + p.card.name + '…');
    p.card.result.className = 'result';
    try {
      await api('POST', GROUPS + '/' + encodeURIComponent(p.card.id) + '/action', { [key]: null });
      const msg = 'Group ' + p.card.name + ': ' + done + '.';
      setText(p.card.result, msg);
      p.card.result.className = 'result ok';
      announce(msg);
    } catch (e) {
      const msg = 'Group ' + p.card.name + ': ' + e.message;
      setText(p.card.result, msg);
      p.card.result.className = 'result bad';
      announce(msg);
      if (e.status === 401) return loggedOut('The token was refused (HTTP 401): log in again.');
    }
    if (p.opener && document.contains(p.opener)) p.opener.focus();
    schedule(0);
  }

  // ---- polling

  function noteChange(key, what, now) {
    const before = seen.get(key);
    seen.set(key, now);
    if (before !== undefined && before !== now) return what + ': ' + before + ' → ' + now;
    return null;
  }

  function render(groups, pairs) {
    const byId = new Map(pairs.map((p) => [p.id, p]));
    const changes = [];
    const groupRoots = [];
    const liveGroups = new Set();
    for (const g of groups) {
      liveGroups.add(g.id);
      const c = groupCard(g);
      groupRoots.push(c.root);
      const ch = noteChange('g:' + g.id, 'Group ' + label(g), g.replication_status);
      if (ch) changes.push(ch);
      const rows = [];
      for (const pid of g.replication_ids || []) {
        const p = byId.get(pid);
        if (p) rows.push(pairRow(p));
      }
      fillBody(c.pairs.tbody, rows);
    }
    for (const id of Array.from(groupCards.keys())) if (!liveGroups.has(id)) groupCards.delete(id);
    const gbox = $('groups');
    if (gbox.children.length !== groupRoots.length || groupRoots.some((r, i) => gbox.children[i] !== r))
      gbox.replaceChildren(...groupRoots);
    $('no-groups').hidden = groups.length > 0;

    const loose = [];
    const livePairs = new Set();
    for (const p of pairs) {
      livePairs.add(p.id);
      const ch = noteChange('p:' + p.id, 'Pair ' + label(p), p.replication_status);
      if (ch) changes.push(ch);
      if (!p.replication_consistency_group_id) loose.push(pairRow(p));
    }
    for (const id of Array.from(pairRows.keys())) if (!livePairs.has(id)) pairRows.delete(id);
    const ubox = $('ungrouped');
    if (!ubox.firstChild) {
      ubox.ungrouped = pairTable('Pairs in no group', []);
      ubox.append(el('div', { class: 'scroll' }, [ubox.ungrouped.table]));
    }
    fillBody(ubox.ungrouped.tbody, loose);
    ubox.hidden = loose.length === 0;
    $('no-ungrouped').hidden = loose.length > 0;
    setText($('updated'), 'Updated ' + new Date().toLocaleTimeString());
    if (changes.length) announce(changes.join('; '));
  }

  async function poll() {
    timer = null;
    if (!polling || inFlight) return;
    inFlight = true;
    try {
      const [g, p] = await Promise.all([api('GET', GROUPS), api('GET', PAIRS)]);
      render(g.replication_consistency_groups || [], p.replications || []);
      showAlert('');
      delayMs = POLL_MS;
    } catch (e) {
      if (e.status === 401) {
        inFlight = false;
        return loggedOut('The token was refused (HTTP 401): log in again.');
      }
      if (e.status === 403) {
        inFlight = false;
        return loggedOut('The token does not grant access to this project (HTTP 403): check the project id.');
      }
      delayMs = Math.min(delayMs * 2, MAX_BACKOFF_MS);
      showAlert(e.message + '; retrying in ' + Math.round(delayMs / 1000) + ' s.');
    }
    inFlight = false;
    schedule(delayMs);
  }

  function schedule(ms) {
    if (!polling) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  // ---- log in / out

  function showLogin(msg) {
    polling = false;
    if (timer) clearTimeout(timer);
    timer = null;
    closeDialog();
    $('status-section').hidden = true;
    $('logout').hidden = true;
    $('who').hidden = true;
    $('login-section').hidden = false;
    setText($('login-error'), msg || '');
    showAlert('');
    $('token').value = '';
    (msg ? $('token') : $('project')).focus();
  }

  // Nothing of the project stays on the page once its token is gone.
  function clearView() {
    seen.clear();
    groupCards.clear();
    pairRows.clear();
    $('groups').replaceChildren();
    $('ungrouped').replaceChildren();
    setText($('updated'), '');
  }

  function loggedOut(msg) {
    forget();
    clearView();
    showLogin(msg);
  }

  function showStatus() {
    const c = creds();
    $('login-section').hidden = true;
    $('status-section').hidden = false;
    $('logout').hidden = false;
    setText($('who'), 'Project ' + c.project);
    $('who').hidden = false;
    polling = true;
    delayMs = POLL_MS;
    schedule(0);
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const project = $('project').value.trim();
    const token = $('token').value.trim();
    if (!project || !token) {
      setText($('login-error'), 'Both the project id and the token are needed.');
      (project ? $('token') : $('project')).focus();
      return;
    }
    sessionStorage.setItem(KEY_PROJECT, project);
    sessionStorage.setItem(KEY_TOKEN, token);
    $('token').value = '';
    setText($('login-error'), 'Checking…');
    try {
      await api('GET', GROUPS + '?limit=1');
    } catch (e) {
      forget();
      if (e.status === 401) showLogin('The token was refused (HTTP 401).');
      else if (e.status === 403) showLogin('The token does not grant access to project ' + project + ' (HTTP 403).');
      else showLogin(e.message);
      return;
    }
    setText($('login-error'), '');
    announce('Logged in to project ' + project + '.');
    showStatus();
    $('main').focus();
  }

  function onLogout() {
    forget();
    clearView();
    showLogin('');
    announce('Logged out.');
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login').addEventListener('submit', onLogin);
    $('logout').addEventListener('click', onLogout);
    $('confirm-ok').addEventListener('click', runPending);
    $('confirm-cancel').addEventListener('click', () => {
      const p = pending;
      pending = null;
      closeDialog();
      if (p && p.opener) p.opener.focus();
    });
    $('confirm').addEventListener('cancel', () => {
      pending = null;
    });
    const c = creds();
    if (c.token && c.project) showStatus();
    else showLogin('');
  });
})();
