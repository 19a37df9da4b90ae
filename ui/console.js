// InferFlux console: plain browser JavaScript, no build step, no third-party code, no inline script
// (the page is served with a CSP that forbids them). Everything shown comes from one admin route,
// GET /v1/admin/console/events: a JSON snapshot every second over SSE, read with fetch (EventSource
// cannot send an Authorization header). The API key lives in this tab's sessionStorage and goes
// only in the Authorization header of same-origin calls, never in a URL. Text is set with
// textContent only, so nothing from the server is ever parsed as HTML.
'use strict';

const KEY_ITEM = 'inferflux.apiKey';
const RECONNECT_MS = 2000;
const $ = (id) => document.getElementById(id);

function apiKey() {
  return sessionStorage.getItem(KEY_ITEM) || '';
}

function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const k = apiKey();
  if (k) h.authorization = 'Bearer ' + k;
  return h;
}

/** The server's error envelope as one line: "message (code, HTTP status)". */
async function errorText(res) {
  try {
    const body = await res.json();
    if (body && body.error) return body.error.message + ' (' + body.error.code + ', HTTP ' + res.status + ')';
  } catch (_) {
    // Not JSON: fall through.
  }
  return 'HTTP ' + res.status;
}

function setStatus(text, kind) {
  const el = $('status');
  el.textContent = text;
  el.className = kind || '';
}

// ---- formatting ----

const num = (v) => (v === null || v === undefined ? '–' : Number(v).toLocaleString('en'));
const ms = (v) => (v === null || v === undefined ? '–' : v < 1000 ? Math.round(v) + ' ms' : (v / 1000).toFixed(2) + ' s');
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString('en-GB') : '–');
const uptime = (s) => (s < 60 ? Math.round(s) + ' s' : s < 3600 ? Math.floor(s / 60) + ' min' : Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min');
/** A long id cut to its first characters; the whole id is the cell's tooltip. */
const short = (id) => ({ text: id ? (id.length > 12 ? id.slice(0, 8) + '…' : id) : '–', title: id || '' });
function bytes(v) {
  if (!v) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? v : v.toFixed(1)) + ' ' + units[i];
}

/**
 * Replaces a table body's rows: one row per item, one cell per column function (returning text, or
 * {text, title} for a shortened value). `id` names the
 * row (data-id) and `cls` classes it, so tests and styles can find rows.
 */
function fillTable(tableId, items, columns, opts) {
  const body = $(tableId).querySelector('tbody');
  const rows = items.map((item) => {
    const tr = document.createElement('tr');
    if (opts && opts.id) tr.dataset.id = opts.id(item);
    if (opts && opts.cls) tr.className = opts.cls(item) || '';
    for (const col of columns) {
      const td = document.createElement('td');
      const v = col(item);
      // A column gives text, or {text, title} for a shortened value.
      if (v !== null && typeof v === 'object') {
        td.textContent = v.text;
        td.title = v.title;
      } else {
        td.textContent = String(v);
      }
      tr.appendChild(td);
    }
    return tr;
  });
  body.replaceChildren(...rows);
  const empty = $(tableId + '-empty');
  if (empty) empty.hidden = items.length > 0;
}

function show(id, text) {
  $(id).textContent = text;
}

// ---- rendering one snapshot ----

function render(s) {
  show('server-info', 'v' + s.version + ' · auth ' + s.auth + ' · up ' + uptime(s.uptime_s) + ' · ' + time(s.time));

  fillTable('models', s.models, [(m) => m.id, (m) => m.state + (m.error ? ': ' + m.error : ''), (m) => (m.default ? 'yes' : ''), (m) => m.architecture, (m) => num(m.context_size), (m) => bytes(m.memory_bytes)], {
    id: (m) => m.id,
    cls: (m) => (m.ready ? 'ok' : 'bad'),
  });
  fillTable('pools', s.pools, [(p) => p.name, (p) => p.ready + ' / ' + p.workers, (p) => p.restarts], { cls: (p) => (p.ready === p.workers ? 'ok' : 'bad') });

  const sch = s.scheduler.models;
  fillTable('scheduler', sch, [(r) => r.model, (r) => r.queue_depth, (r) => r.prefill_queue_depth, (r) => r.decode_queue_depth, (r) => r.running_sequences, (r) => r.prefill_sequences]);
  const total = (f) => sch.reduce((a, r) => a + r[f], 0);
  show('running-seqs', total('running_sequences') + ' of ' + s.scheduler.sequence_capacity_per_model * sch.length);
  show('queue-depth', total('queue_depth') + ' (max ' + s.scheduler.max_queue + ')');
  show('tokens-now', num(s.tokens.generating_now));
  show('tokens-prompt', num(s.tokens.prompt));
  show('tokens-completion', num(s.tokens.completion));
  show('request-counts', num(s.tokens.requests) + ' / ' + num(s.tokens.errors) + ' / ' + num(s.tokens.cancelled));

  const kv = s.kv;
  if (kv) {
    const pct = kv.pages_total > 0 ? ' (' + Math.round((100 * kv.pages_used) / kv.pages_total) + '%)' : '';
    show('kv-pages', num(kv.pages_used) + ' / ' + num(kv.pages_total) + pct);
    show('kv-disk', bytes(kv.disk_bytes));
    const seqs = kv.workers.reduce((a, w) => a + w.sequences_in_use, 0);
    const all = kv.workers.reduce((a, w) => a + w.sequences, 0);
    const toks = kv.workers.reduce((a, w) => a + w.resident_tokens, 0);
    show('kv-seqs', seqs + ' of ' + all + ' (' + num(toks) + ' tokens)');
    show('kv-note', kv.error ? 'last known values: ' + kv.error : kv.workers.length + ' engine worker(s)');
  } else {
    show('kv-note', 'no prefix cache on this server');
  }
  const pc = s.prefix_cache;
  show('prefix-rate', pc.hit_rate === null ? 'no lookups yet' : (100 * pc.hit_rate).toFixed(1) + '%');
  show('prefix-counts', num(pc.hits) + ' / ' + num(pc.partial_hits) + ' / ' + num(pc.misses));
  show('prefix-tokens', num(pc.matched_tokens));

  fillTable('running', s.running, [(r) => short(r.request_id), (r) => r.model, (r) => r.route || '–', (r) => r.key_id || '–', (r) => r.phase, (r) => num(r.prompt_tokens), (r) => num(r.generated_tokens), (r) => ms(r.age_ms), (r) => ms(r.ttft_ms)], {
    id: (r) => r.request_id,
  });

  const g = s.guardrails;
  show(
    'guardrails-policy',
    (g.active ? 'active' : 'off') + ' · blocklist ' + g.blocklist_terms + ' term(s) · PII ' + g.pii_action + (g.pii_action !== 'off' ? ' (' + g.pii_kinds.join(', ') + ')' : '') +
      ' · external engine ' + (g.external_engine ? 'on' : 'off') + ' · ' + s.totals.guardrail_denials + ' denied, ' + s.totals.guardrail_redactions + ' redacted',
  );
  fillTable('guardrails', g.recent, [(d) => time(d.at), (d) => d.action, (d) => d.stage, (d) => d.reason, (d) => d.route || '–', (d) => d.key_id || '–', (d) => short(d.request_id)], {
    id: (d) => d.request_id || '',
    cls: (d) => (d.action === 'deny' ? 'bad' : 'warn'),
  });

  const rl = s.rate_limit;
  const lim = rl.limits;
  const per = (v) => (v > 0 ? num(v) + '/min' : 'unlimited');
  show(
    'limits-policy',
    'backend ' + rl.backend + (lim ? ' · per key ' + per(lim.requests_per_minute) + ' requests, ' + per(lim.tokens_per_minute) + ' tokens · per tenant ' + per(lim.tenant_requests_per_minute) + ' requests, ' + per(lim.tenant_tokens_per_minute) + ' tokens' : '') +
      ' · concurrent per key ' + (rl.max_concurrent_per_key > 0 ? rl.max_concurrent_per_key : 'unlimited') + ' · ' + s.totals.limit_refusals + ' refused',
  );
  const left = (b) => (b ? num(b.remaining) + ' / ' + num(b.limit) : '–');
  fillTable('limit-keys', rl.keys, [(k) => k.key_id, (k) => k.tenant || '–', (k) => left(k.requests), (k) => left(k.tokens), (k) => time(k.at)], { id: (k) => k.key_id });
  fillTable('limit-refusals', rl.recent_refusals, [(r) => time(r.at), (r) => r.status, (r) => r.detail, (r) => r.key_id || '–', (r) => r.route || '–'], { cls: () => 'bad' });

  fillTable(
    'requests',
    s.requests,
    [
      (r) => time(r.at),
      (r) => short(r.request_id),
      (r) => short(r.trace_id),
      (r) => r.method,
      (r) => r.route,
      (r) => r.model || '–',
      (r) => r.status + (r.error_code ? ' ' + r.error_code : ''),
      (r) => ms(r.latency_ms),
      (r) => (r.tokens_in === null ? '–' : num(r.tokens_in) + ' / ' + num(r.tokens_out)),
      (r) => ms(r.ttft_ms),
      (r) => r.key_id || '–',
    ],
    { id: (r) => r.request_id, cls: (r) => (r.status >= 500 ? 'bad' : r.status >= 400 ? 'warn' : '') },
  );

  const select = $('chat-model');
  const ids = s.models.map((m) => m.id);
  if (select.options.length !== ids.length || ids.some((id, i) => select.options[i].value !== id)) {
    const chosen = select.value;
    select.replaceChildren(...ids.map((id) => Object.assign(document.createElement('option'), { value: id, textContent: id })));
    if (ids.includes(chosen)) select.value = chosen;
  }
}

// ---- the live stream ----

/** Reads `text/event-stream` from a fetch body; calls onEvent(name, data) per event. */
async function readSse(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) onEvent(name, data.join('\n'));
    }
  }
}

let live = null;
let retry = null;
let snapshots = 0;

async function connect() {
  clearTimeout(retry);
  if (live) live.abort();
  const ac = new AbortController();
  live = ac;
  setStatus('connecting…');
  try {
    const res = await fetch('/v1/admin/console/events', { headers: authHeaders(), signal: ac.signal });
    if (!res.ok) {
      const why = await errorText(res);
      // A missing or weak key will not fix itself: wait for the user instead of retrying.
      if (res.status === 401 || res.status === 403) return setStatus('enter an admin key: ' + why, 'error');
      throw new Error(why);
    }
    await readSse(res.body, (name, data) => {
      if (name === 'snapshot') {
        render(JSON.parse(data));
        snapshots++;
        document.body.dataset.snapshots = String(snapshots);
        setStatus('live', 'live');
      } else if (name === 'error') {
        setStatus('server error: ' + JSON.parse(data).error.message, 'error');
      }
    });
    if (live === ac) throw new Error('stream ended');
  } catch (e) {
    if (ac.signal.aborted) return;
    setStatus('disconnected (' + (e && e.message ? e.message : String(e)) + '); retrying', 'error');
    retry = setTimeout(connect, RECONNECT_MS);
  }
}

// ---- chat playground: streamed /v1/chat/completions ----

async function sendChat(ev) {
  ev.preventDefault();
  const out = $('chat-output');
  const err = $('chat-error');
  out.textContent = '';
  err.textContent = '';
  delete out.dataset.done;
  const res = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: authHeaders({ 'content-type': 'application/json' }),
    body: JSON.stringify({
      model: $('chat-model').value || undefined,
      stream: true,
      max_tokens: Number($('chat-max').value) || 64,
      messages: [{ role: 'user', content: $('chat-input').value }],
    }),
  });
  if (!res.ok) {
    err.textContent = await errorText(res);
    return;
  }
  await readSse(res.body, (_name, data) => {
    if (data === '[DONE]') return;
    const chunk = JSON.parse(data);
    if (chunk.error) err.textContent = chunk.error.message;
    const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
    if (delta && delta.content) out.textContent += delta.content;
  });
  out.dataset.done = 'true';
}

document.addEventListener('DOMContentLoaded', () => {
  $('api-key').value = apiKey();
  $('key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY_ITEM, $('api-key').value.trim());
    connect();
  });
  $('key-clear').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_ITEM);
    $('api-key').value = '';
    connect();
  });
  $('chat-form').addEventListener('submit', (ev) => sendChat(ev).catch((e) => ($('chat-error').textContent = String(e))));
  connect();
});
