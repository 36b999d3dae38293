// raftlite's web console: plain JavaScript, no libraries, no build step.
// Every action is a request to this node's HTTP API (the same endpoints
// curl and the shell use), with the user's credentials when the node asks
// for them.
'use strict';

const $ = (id) => document.getElementById(id);

const HISTORY_KEY = 'raftlite.console.history';
const HISTORY_MAX = 100;
const AUTH_KEY = 'raftlite.console.auth';
const USER_KEY = 'raftlite.console.user';
const REFRESH_MS = 2000;

// The credentials live in this tab's sessionStorage only: they are gone
// when the tab closes, and never reach localStorage.
const session = {
  auth: sessionStorage.getItem(AUTH_KEY) || '',
  user: sessionStorage.getItem(USER_KEY) || '',
  retry: null, // the action a 401 interrupted, run again after a login
};

// AuthError is an API answer of 401 or 429: the login form is shown.
class AuthError extends Error {}

// api sends a request to this node's API. X-Requested-With makes the node
// leave out WWW-Authenticate on a 401, so that the browser shows the
// console's login form rather than its own dialog.
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  headers.set('X-Requested-With', 'XMLHttpRequest');
  if (session.auth) headers.set('Authorization', 'Basic ' + session.auth);
  const resp = await fetch(path, { ...options, headers, cache: 'no-store', credentials: 'omit' });
  if (resp.status === 401 || resp.status === 429) {
    const body = await resp.json().catch(() => ({}));
    const why = body.error || resp.statusText;
    showLogin(why);
    throw new AuthError(why);
  }
  return resp;
}

// apiJSON sends a request and returns its JSON body; an answer that is not
// 200 becomes an Error with the API's message and code.
async function apiJSON(path, options) {
  const resp = await api(path, options);
  const body = await resp.json().catch(() => null);
  if (!resp.ok) throw apiError(resp, body);
  return body;
}

// apiError is the Error of an answer that is not 200: the API's message
// and code, else the HTTP status.
function apiError(resp, body) {
  const msg = body && body.error ? body.error : resp.status + ' ' + resp.statusText;
  const code = body && body.code ? ' (' + body.code + ')' : '';
  return new Error(msg + code);
}

// postStatements sends statements (strings, or arrays of SQL and
// parameters) as one JSON request and returns the answer's body.
function postStatements(url, statements) {
  return apiJSON(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(statements),
  });
}

// querySQL runs statements as one request to /db/query at a consistency
// level and returns their results; a statement's error is an Error.
async function querySQL(level, statements) {
  const body = await postStatements('/db/query?level=' + level, statements);
  const results = body.results || [];
  const failed = results.find((r) => r.error);
  if (failed) throw new Error(failed.error);
  return results;
}

// ---- login

function showLogin(why) {
  $('login').hidden = false;
  $('login-error').textContent = session.auth ? why : '';
  $('login-user').focus();
}

function encodeCredentials(user, password) {
  const bytes = new TextEncoder().encode(user + ':' + password);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function setSession(user, auth) {
  session.user = user;
  session.auth = auth;
  if (auth) {
    sessionStorage.setItem(AUTH_KEY, auth);
    sessionStorage.setItem(USER_KEY, user);
  } else {
    sessionStorage.removeItem(AUTH_KEY);
    sessionStorage.removeItem(USER_KEY);
  }
  $('who').textContent = user ? 'user ' + user : '';
  $('logout').hidden = !auth;
}

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const user = $('login-user').value;
  setSession(user, encodeCredentials(user, $('login-password').value));
  $('login-password').value = '';
  $('login').hidden = true;
  const retry = session.retry;
  session.retry = null;
  if (retry) retry();
});

$('logout').addEventListener('click', () => {
  setSession('', '');
  showLogin('');
});

// guarded runs an action, remembering it for after a login if the node
// refuses it for want of credentials; errors go to report.
async function guarded(action, report) {
  try {
    report('');
    await action();
  } catch (err) {
    if (err instanceof AuthError) {
      session.retry = () => guarded(action, report);
      return;
    }
    report(err.message);
  }
}

// ---- views

let currentView = 'sql';

function showView(name) {
  currentView = name;
  for (const tab of document.querySelectorAll('.tab')) {
    tab.classList.toggle('active', tab.dataset.view === name);
  }
  for (const view of document.querySelectorAll('.view')) {
    view.hidden = view.id !== 'view-' + name;
  }
  if (name === 'cluster') refreshCluster();
  if (name === 'live') openLive(); else stopLive();
}

for (const tab of document.querySelectorAll('.tab')) {
  tab.addEventListener('click', () => showView(tab.dataset.view));
}

// ---- SQL

// splitStatements splits the editor's text at the semicolons that end
// statements: not those inside quotes, identifiers or comments, nor those
// inside the body of a CREATE TRIGGER, which ends at END;.
function splitStatements(text) {
  const out = [];
  let cur = '';
  const push = () => {
    if (cur.trim() !== '') out.push(cur.trim());
    cur = '';
  };
  const inTrigger = () => /^\s*CREATE\s+(TEMP\w*\s+)?TRIGGER\b/i.test(cur) && !/\bEND\s*$/i.test(cur);
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c;
      let j = i + 1;
      while (j < text.length) {
        if (text[j] === close) {
          if (close !== ']' && text[j + 1] === close) { j += 2; continue; }
          break;
        }
        j++;
      }
      cur += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '-' && text[i + 1] === '-') {
      const nl = text.indexOf('\n', i);
      const end = nl < 0 ? text.length : nl;
      cur += text.slice(i, end);
      i = end;
    } else if (c === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2);
      const end = close < 0 ? text.length : close + 2;
      cur += text.slice(i, end);
      i = end;
    } else if (c === ';' && !inTrigger()) {
      push();
      i++;
    } else {
      cur += c;
      i++;
    }
  }
  push();
  return out;
}

// readOnly reports whether a statement reads only, by its first keyword:
// such requests go to /db/query, which a user with only the query
// permission may use; anything else goes to /db/request.
function readOnly(stmt) {
  const word = stmt.replace(/^(\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)*/, '').split(/[\s(]/, 1)[0].toUpperCase();
  return ['SELECT', 'WITH', 'EXPLAIN', 'VALUES'].includes(word);
}

async function runSQL() {
  const text = $('sql').value;
  const statements = splitStatements(text);
  if (statements.length === 0) return;
  addHistory(text.trim());
  const level = $('level').value;
  const endpoint = statements.every(readOnly) ? '/db/query' : '/db/request';
  const url = endpoint + '?timings&blob_array&level=' + encodeURIComponent(level);
  $('run').disabled = true;
  $('timing').textContent = 'running…';
  const started = performance.now();
  try {
    const body = await postStatements(url, statements);
    const elapsed = performance.now() - started;
    const server = typeof body.time === 'number' ? ', server ' + (body.time * 1000).toFixed(3) + ' ms' : '';
    $('timing').textContent = elapsed.toFixed(1) + ' ms' + server + ' (' + level + ')';
    renderResults(statements, body.results || []);
  } catch (err) {
    $('timing').textContent = '';
    throw err;
  } finally {
    $('run').disabled = false;
  }
}

const run = () => guarded(runSQL, (msg) => { $('sql-error').textContent = msg; });
$('run').addEventListener('click', run);
$('sql').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
    ev.preventDefault();
    run();
  }
});

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// cell renders one value: NULL and blobs (arrays of bytes, from
// ?blob_array) look unlike any text.
function cell(value) {
  if (value === null) return el('td', 'null', 'NULL');
  if (Array.isArray(value)) {
    const hex = value.slice(0, 16).map((b) => b.toString(16).padStart(2, '0')).join('');
    const more = value.length > 16 ? '…' : '';
    const td = el('td', 'blob', "x'" + hex + more + "'");
    td.title = 'BLOB, ' + value.length + ' bytes';
    return td;
  }
  if (typeof value === 'number') return el('td', 'num', String(value));
  return el('td', '', String(value));
}

function renderResults(statements, results) {
  const box = $('results');
  box.replaceChildren();
  results.forEach((res, i) => {
    const part = el('div', 'result');
    const stmt = statements[i] || '';
    part.append(el('pre', 'stmt', stmt.length > 200 ? stmt.slice(0, 200) + '…' : stmt));
    if (res.error) {
      part.append(el('p', 'error stmt-error', res.error));
    } else if (res.columns) {
      const table = el('table', 'rows');
      const head = el('tr');
      res.columns.forEach((c, j) => {
        const th = el('th', '', c);
        if (res.types && res.types[j]) th.title = res.types[j];
        head.append(th);
      });
      const thead = el('thead');
      thead.append(head);
      table.append(thead);
      const tbody = el('tbody');
      for (const row of res.values || []) {
        const tr = el('tr');
        for (const v of row) tr.append(cell(v));
        tbody.append(tr);
      }
      table.append(tbody);
      part.append(table);
      const n = (res.values || []).length;
      part.append(el('p', 'count', n + (n === 1 ? ' row' : ' rows')));
    } else {
      const affected = res.rows_affected || 0;
      let msg = affected + (affected === 1 ? ' row' : ' rows') + ' affected';
      if (res.last_insert_id) msg += ', last insert id ' + res.last_insert_id;
      part.append(el('p', 'count', msg));
    }
    box.append(part);
  });
}

// ---- history (this browser's localStorage; newest first, no repeats)

function loadHistory() {
  try {
    const h = JSON.parse(localStorage.getItem(HISTORY_KEY) || '[]');
    return Array.isArray(h) ? h.filter((s) => typeof s === 'string') : [];
  } catch {
    return [];
  }
}

function addHistory(text) {
  const h = [text, ...loadHistory().filter((s) => s !== text)].slice(0, HISTORY_MAX);
  localStorage.setItem(HISTORY_KEY, JSON.stringify(h));
  renderHistory();
}

function renderHistory() {
  const list = $('history');
  list.replaceChildren();
  for (const text of loadHistory()) {
    const item = el('li');
    const b = el('button', 'history-item', text);
    b.type = 'button';
    b.title = text;
    b.addEventListener('click', () => {
      $('sql').value = text;
      $('sql').focus();
    });
    item.append(b);
    list.append(item);
  }
}

$('history-clear').addEventListener('click', () => {
  localStorage.removeItem(HISTORY_KEY);
  renderHistory();
});

// ---- cluster

async function loadCluster() {
  const body = await apiJSON('/nodes?nonvoters&ver=2');
  const tbody = $('members').querySelector('tbody');
  tbody.replaceChildren();
  for (const n of body.nodes || []) {
    const tr = el('tr', n.leader ? 'leader' : '');
    tr.dataset.id = n.id;
    tr.classList.toggle('unreachable', !n.reachable);
    const show = (v) => (v === undefined || v === null ? '' : String(v));
    tr.append(
      el('td', 'id', n.id),
      el('td', 'role', n.voter ? 'voter' : 'learner'),
      el('td', 'is-leader', n.leader ? 'leader' : ''),
      el('td', 'reachable', n.reachable ? 'yes' : 'no'),
      el('td', 'num applied', show(n.applied_index)),
      el('td', 'num lag', show(n.lag)),
      el('td', '', n.api_addr || ''),
      el('td', '', n.addr || ''),
      el('td', 'error', n.error || ''),
    );
    tbody.append(tr);
  }
  $('cluster-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}

let clusterBusy = false;

async function refreshCluster() {
  if (clusterBusy) return;
  clusterBusy = true;
  try {
    await guarded(loadCluster, (msg) => { $('cluster-error').textContent = msg; });
  } finally {
    clusterBusy = false;
  }
}

setInterval(() => {
  if (currentView === 'cluster' && $('live').checked && $('login').hidden) refreshCluster();
}, REFRESH_MS);

// ---- live table (the change feed, GET /db/watch)

const LIVE_MAX_ROWS = 1000;
const LIVE_MAX_CHANGES = 50;
const LIVE_RETRY_MS = 2000;

// live is the table being followed. Each start or stop of the view counts
// in gen: a loop whose gen is no longer current ends, and controller
// aborts its request in flight.
const live = {
  gen: 0,
  controller: null,
  columns: [], // shown, in the table's order
  keyColumns: [], // the declared primary key, in key order; none: the rowid is the key
  rows: new Map(), // key -> values (in columns' order)
  truncated: false,
  changed: new Set(), // keys of the rows the last change touched
};

function quoteIdent(name) {
  return '"' + name.replace(/"/g, '""') + '"';
}

function stopLive() {
  live.gen++;
  if (live.controller) live.controller.abort();
  live.controller = null;
}

// listTables fills the table picker with the database's tables (not
// SQLite's nor raftlite's own), keeping the choice when it still exists.
async function listTables() {
  const [res] = await querySQL('none', [`SELECT name FROM sqlite_schema WHERE type = 'table'
    AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_raftlite\\_%' ESCAPE '\\' ORDER BY name`]);
  const select = $('live-table');
  const chosen = select.value;
  const option = (value, text) => {
    const o = el('option', '', text);
    o.value = value;
    return o;
  };
  select.replaceChildren(option('', '(choose)'));
  for (const [name] of res.values || []) select.append(option(name, name));
  select.value = (res.values || []).some(([name]) => name === chosen) ? chosen : '';
}

// loadRows reads the table's columns, primary key and rows from this node
// (level none: the rows this node's feed continues from).
async function loadRows(table) {
  // Virtual generated columns (hidden 2) are computed, not stored: the
  // feed has no value for them.
  const [info] = await querySQL('none', [['SELECT name, pk FROM pragma_table_xinfo(?) WHERE hidden IN (0, 3) ORDER BY cid', table]]);
  const cols = info.values || [];
  if (cols.length === 0) throw new Error('no table ' + table);
  live.columns = cols.map(([name]) => name);
  live.keyColumns = cols.filter(([, pk]) => pk > 0).sort((a, b) => a[1] - b[1]).map(([name]) => name);
  const byRowid = live.keyColumns.length === 0;
  const order = byRowid ? '_rowid_' : live.keyColumns.map(quoteIdent).join(', ');
  const [res] = await querySQL('none', [`SELECT ${byRowid ? '_rowid_, ' : ''}${live.columns.map(quoteIdent).join(', ')}
    FROM ${quoteIdent(table)} ORDER BY ${order} LIMIT ${LIVE_MAX_ROWS + 1}`]);
  const values = res.values || [];
  live.truncated = values.length > LIVE_MAX_ROWS;
  live.rows = new Map();
  for (const row of values.slice(0, LIVE_MAX_ROWS)) {
    const vals = byRowid ? row.slice(1) : row;
    const key = byRowid ? String(row[0]) : JSON.stringify(live.keyColumns.map((c) => vals[live.columns.indexOf(c)]));
    live.rows.set(key, vals);
  }
  live.changed = new Set();
}

// rowKey is the key of a row of the feed: its primary key's values, or
// its rowid when the table declares no primary key.
function rowKey(row, rowid) {
  return live.keyColumns.length === 0 ? String(rowid) : JSON.stringify(live.keyColumns.map((c) => row[c]));
}

function showValue(v) {
  return v === null || v === undefined ? 'NULL' : String(v);
}

// showRow shows a row of the feed (an object) as "column=value, ...", in
// the table's column order.
function showRow(row) {
  if (!row) return '';
  return live.columns.filter((c) => c in row).map((c) => c + '=' + showValue(row[c])).join(', ');
}

// applyEvent brings the rows to the state after one log entry, and adds
// its changes to the list, newest first.
function applyEvent(ev) {
  const list = $('live-changes').querySelector('tbody');
  for (const ch of ev.changes) {
    const key = rowKey(ch.op === 'delete' ? ch.pk : ch.new, ch.rowid);
    if (ch.op === 'delete') {
      live.rows.delete(key);
    } else {
      // An update that changed the primary key moves the row (the feed
      // is asked for the old row: ?prev).
      if (ch.op === 'update' && ch.old && live.keyColumns.length > 0) {
        const oldKey = rowKey(ch.old);
        if (oldKey !== key) live.rows.delete(oldKey);
      }
      live.rows.set(key, live.columns.map((c) => (ch.new[c] === undefined ? null : ch.new[c])));
      live.changed.add(key);
    }
    const tr = el('tr');
    tr.append(
      el('td', 'num', String(ev.index)),
      el('td', '', new Date(ev.time).toLocaleTimeString()),
      el('td', 'op op-' + ch.op, ch.op),
      el('td', 'key', ch.pk ? showRow(ch.pk) : 'rowid=' + ch.rowid),
      el('td', 'new', showRow(ch.new)),
    );
    list.prepend(tr);
  }
  while (list.rows.length > LIVE_MAX_CHANGES) list.lastChild.remove();
}

function renderLiveRows() {
  const table = $('live-rows');
  const head = el('tr');
  for (const c of live.columns) head.append(el('th', live.keyColumns.includes(c) ? 'key' : '', c));
  table.tHead.replaceChildren(head);
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const [key, vals] of live.rows) {
    const tr = el('tr', live.changed.has(key) ? 'changed' : '');
    tr.dataset.key = key;
    for (const v of vals) tr.append(cell(v));
    body.append(tr);
  }
  const n = live.rows.size;
  $('live-count').textContent = n + (n === 1 ? ' row' : ' rows') + (live.truncated ? ' (the table had more than ' + LIVE_MAX_ROWS + ' when read; only those are shown)' : '');
}

// followTable shows the table's rows and keeps them current through the
// change feed, as long polls (fetch can send the credentials, which an
// EventSource cannot). After a failed poll it asks again from the same
// index, so no change is missed or repeated; when that index's history
// was compacted (410) it reads the rows again and goes on from there.
async function followTable(table) {
  stopLive();
  const gen = live.gen;
  const controller = new AbortController();
  live.controller = controller;
  const signal = controller.signal;
  const current = () => live.gen === gen;
  const pause = () => new Promise((resolve) => {
    const timer = setTimeout(resolve, LIVE_RETRY_MS);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
  const status = (text) => { $('live-status').textContent = text; };
  const feed = '/db/watch?prev&limit=100&tables=' + encodeURIComponent(table);
  $('live-changes').querySelector('tbody').replaceChildren();
  let note = '';
  while (current()) {
    let from;
    try {
      // The feed's next index is read before the rows: its changes
      // replayed onto rows read at that index or later end in the same
      // rows, so none is lost between the two reads.
      from = (await apiJSON(feed + '&wait=0', { signal })).next;
      await loadRows(table);
    } catch (err) {
      if (!current()) return;
      if (!(err instanceof TypeError)) throw err; // not a network failure
      status('cannot reach the node (' + err.message + '), trying again');
      await pause();
      continue;
    }
    if (!current()) return;
    renderLiveRows();
    status(note + 'live from index ' + from);
    for (;;) {
      let resp;
      let body = null;
      try {
        resp = await api(feed + '&wait=30s&from=' + from, { signal });
        body = await resp.json();
      } catch (err) {
        if (!current()) return;
        if (err instanceof AuthError) throw err;
        status('connection lost (' + err.message + '), resuming from index ' + from);
        await pause();
        continue;
      }
      if (!current()) return;
      if (resp.status === 410 && body.code === 'compacted') {
        note = 'history before index ' + body.oldest_index + ' was compacted, rows read again; ';
        break;
      }
      if (!resp.ok) {
        if (resp.status < 500) throw apiError(resp, body);
        status('the node answered ' + resp.status + ', resuming from index ' + from);
        await pause();
        continue;
      }
      if (body.events.length > 0) {
        live.changed = new Set();
        for (const ev of body.events) applyEvent(ev);
        renderLiveRows();
      }
      from = body.next;
      status(note + 'live, up to index ' + (from - 1));
    }
  }
}

// liveError shows why the view stopped following its table.
const liveError = (msg) => {
  $('live-error').textContent = msg;
  if (msg) $('live-status').textContent = 'stopped';
};

function startLive() {
  const table = $('live-table').value;
  if (!table) {
    stopLive();
    return;
  }
  guarded(() => followTable(table), liveError);
}

function openLive() {
  guarded(async () => {
    await listTables();
    startLive();
  }, liveError);
}

$('live-table').addEventListener('change', startLive);
$('live-reload').addEventListener('click', openLive);

// ---- backup and restore

function formatBytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1 << 20) return (n / 1024).toFixed(1) + ' KiB';
  return (n / (1 << 20)).toFixed(1) + ' MiB';
}

async function download() {
  const format = $('backup-format').value;
  const progress = $('backup-progress');
  const status = $('backup-status');
  const started = performance.now();
  const resp = await api('/db/backup?fmt=' + format);
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    throw new Error(body.error || resp.status + ' ' + resp.statusText);
  }
  const total = Number(resp.headers.get('Content-Length')) || 0;
  progress.hidden = false;
  if (total) progress.max = total; else progress.removeAttribute('value');
  const reader = resp.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    if (total) progress.value = received;
    status.textContent = formatBytes(received) + (total ? ' of ' + formatBytes(total) : '');
  }
  progress.max = 1;
  progress.value = 1;
  const seconds = (performance.now() - started) / 1000;
  const name = 'raftlite-backup-' + new Date().toISOString().replace(/[:.]/g, '-') + (format === 'sql' ? '.sql' : '.sqlite');
  const link = el('a');
  link.href = URL.createObjectURL(new Blob(chunks));
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  status.textContent = 'downloaded ' + formatBytes(received) + ' in ' + seconds.toFixed(2) + ' s as ' + name;
}

$('backup').addEventListener('click', () => guarded(download, (msg) => {
  if (msg) $('backup-status').textContent = 'backup failed: ' + msg;
}));

// upload sends the file with XMLHttpRequest, whose upload events report
// progress (fetch has none for request bodies).
function upload(file) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const progress = $('restore-progress');
    xhr.open('POST', '/db/load');
    xhr.setRequestHeader('X-Requested-With', 'XMLHttpRequest');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    if (session.auth) xhr.setRequestHeader('Authorization', 'Basic ' + session.auth);
    progress.hidden = false;
    progress.max = file.size || 1;
    progress.value = 0;
    xhr.upload.onprogress = (ev) => {
      progress.value = ev.loaded;
      $('restore-status').textContent = 'sent ' + formatBytes(ev.loaded) + ' of ' + formatBytes(file.size);
    };
    xhr.upload.onload = () => { $('restore-status').textContent = 'sent; the node is installing it…'; };
    xhr.onerror = () => reject(new Error('network error'));
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 401 || xhr.status === 429) {
        showLogin(body.error || xhr.statusText);
        reject(new AuthError(body.error));
      } else if (xhr.status !== 200 || body.error) {
        reject(new Error((body.error || xhr.status + ' ' + xhr.statusText) + (body.code ? ' (' + body.code + ')' : '')));
      } else {
        resolve();
      }
    };
    xhr.send(file);
  });
}

async function restore() {
  const file = $('restore-file').files[0];
  if (!file) throw new Error('choose a file first');
  const started = performance.now();
  await upload(file);
  const seconds = (performance.now() - started) / 1000;
  $('restore-status').textContent = 'restored ' + file.name + ' (' + formatBytes(file.size) + ') in ' + seconds.toFixed(2) + ' s';
}

$('restore').addEventListener('click', () => guarded(restore, (msg) => {
  if (msg) $('restore-status').textContent = 'restore failed: ' + msg;
}));

// ---- start

setSession(session.user, session.auth);
renderHistory();
showView('sql');
