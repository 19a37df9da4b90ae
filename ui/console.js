// InferFlux console: plain browser JavaScript, no build step, no third-party code, no inline script
// (the page is served with a CSP that forbids them). The API key lives in this tab's sessionStorage
// and goes only in the Authorization header of same-origin calls, never in a URL.
'use strict';

const KEY_ITEM = 'inferflux.apiKey';
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
  let msg = res.statusText;
  try {
    const body = await res.json();
    if (body && body.error) msg = body.error.message + ' (' + body.error.code + ', HTTP ' + res.status + ')';
  } catch (_) {
    msg = 'HTTP ' + res.status;
  }
  return msg;
}

function setStatus(text, isError) {
  const el = $('status');
  el.textContent = text;
  el.className = isError ? 'error' : '';
}

// ---- models and pools: /readyz (public) and /v1/models (read scope) ----

async function refreshModels() {
  const ready = await fetch('/readyz').then((r) => r.json()).catch(() => null);
  const res = await fetch('/v1/models', { headers: authHeaders() });
  if (!res.ok) {
    setStatus('models: ' + (await errorText(res)), true);
    return;
  }
  const list = (await res.json()).data || [];
  const state = new Map(((ready && ready.models) || []).map((m) => [m.id, m.ready]));
  const pools = (ready && ready.pools) || [];
  const body = $('models').querySelector('tbody');
  body.replaceChildren();
  const select = $('chat-model');
  const chosen = select.value;
  select.replaceChildren();
  for (const m of list) {
    const tr = document.createElement('tr');
    tr.className = 'model-row';
    const workers = pools.filter((p) => p.name.includes(m.id)).map((p) => p.ready + '/' + p.workers).join(', ');
    for (const text of [m.id, state.has(m.id) ? (state.get(m.id) ? 'ready' : 'loading') : '?', workers || '–']) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.appendChild(td);
    }
    body.appendChild(tr);
    const opt = document.createElement('option');
    opt.value = m.id;
    opt.textContent = m.id;
    select.appendChild(opt);
  }
  if (chosen) select.value = chosen;
  $('pools').textContent = pools.map((p) => p.name + ': ' + p.ready + '/' + p.workers + ' ready, ' + p.restarts + ' restarts').join(' · ');
  setStatus('connected: ' + list.length + ' model(s)', false);
}

// ---- live numbers: /metrics (read scope unless metrics are public), every 2 s ----

/** Sum of every sample of `name` (all label sets) in a Prometheus text exposition. */
function metricSum(text, name) {
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) {
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(v)) {
        sum += v;
        seen = true;
      }
    }
  }
  return seen ? sum : null;
}

let lastTokens = null;
let lastAt = 0;

async function refreshLive() {
  const res = await fetch('/metrics', { headers: authHeaders() });
  if (!res.ok) {
    $('live-note').textContent = 'metrics: ' + (await errorText(res));
    return;
  }
  const text = await res.text();
  const show = (id, v) => ($(id).textContent = v === null ? '–' : String(Math.round(v * 10) / 10));
  show('m-queue', metricSum(text, 'inferflux_scheduler_queue_depth'));
  show('m-seqs', metricSum(text, 'inferflux_active_sequences'));
  show('m-streams', metricSum(text, 'inferflux_active_sequences'));
  show('m-requests', metricSum(text, 'inferflux_requests_total'));
  const tokens = metricSum(text, 'inferflux_model_completion_tokens_total');
  const now = performance.now();
  if (tokens !== null && lastTokens !== null && now > lastAt) show('m-tps', ((tokens - lastTokens) * 1000) / (now - lastAt));
  lastTokens = tokens;
  lastAt = now;
  $('live-note').textContent = 'updated ' + new Date().toLocaleTimeString();
}

// ---- chat playground: streamed /v1/chat/completions (SSE read from the fetch body) ----

async function sendChat(ev) {
  ev.preventDefault();
  const out = $('chat-output');
  const err = $('chat-error');
  out.textContent = '';
  err.textContent = '';
  const content = $('chat-input').value;
  const res = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: authHeaders({ 'content-type': 'application/json' }),
    body: JSON.stringify({ model: $('chat-model').value || undefined, stream: true, max_tokens: 64, messages: [{ role: 'user', content }] }),
  }).catch((e) => ({ ok: false, status: 0, statusText: String(e), json: async () => null }));
  if (!res.ok) {
    err.textContent = await errorText(res);
    return;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        if (data === '[DONE]') continue;
        const chunk = JSON.parse(data);
        if (chunk.error) err.textContent = chunk.error.message;
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) out.textContent += delta.content;
      }
    }
  }
  out.dataset.done = 'true';
}

function refreshAll() {
  refreshModels().catch((e) => setStatus(String(e), true));
  refreshLive().catch((e) => ($('live-note').textContent = String(e)));
}

document.addEventListener('DOMContentLoaded', () => {
  $('api-key').value = apiKey();
  $('key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY_ITEM, $('api-key').value.trim());
    refreshAll();
  });
  $('key-clear').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_ITEM);
    $('api-key').value = '';
    refreshAll();
  });
  $('chat-form').addEventListener('submit', (ev) => sendChat(ev).catch((e) => ($('chat-error').textContent = String(e))));
  refreshAll();
  setInterval(() => refreshLive().catch(() => undefined), 2000);
});
