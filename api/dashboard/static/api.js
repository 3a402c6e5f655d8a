// HTTP access for the dashboard: the API key (sessionStorage), JSON calls and SSE over fetch streaming.
// EventSource cannot send an Authorization header, so streams are read with fetch + a small SSE parser.

const KEY = "neurectomy.apiKey";

export class AuthError extends Error {}

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function headers(extra) {
  const h = { ...(extra || {}) };
  const key = apiKey();
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

// A W3C traceparent (https://www.w3.org/TR/trace-context/) with the sampled flag set or not. The page's
// own polling is not traced (flag 00), so the recent-traces view is not filled with the page watching
// itself; the operator's actions (ask, preview, run) are always traced (flag 01), whatever the server's
// sample ratio, so their waterfall can be looked at.
function traceparent(sampled) {
  const hex = (n) => [...crypto.getRandomValues(new Uint8Array(n))].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `00-${hex(16)}-${hex(8)}-${sampled ? "01" : "00"}`;
}

// fetch with the key; 401 raises AuthError (the caller asks for a key), other errors carry the API's message.
// background: a poll or a watch (never traced); otherwise an operator's action (always traced).
export async function request(path, { method = "GET", body, signal, background = false } = {}) {
  const extra = body ? { "content-type": "application/json" } : {};
  extra.traceparent = traceparent(!background);
  const init = { method, signal, headers: headers(extra) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if (res.status === 401) throw new AuthError("the API key was refused");
  if (!res.ok) {
    let detail = `${res.status}`;
    try {
      const err = await res.json();
      const e = err.error || err;
      detail = `${res.status}: ${e.message || e.detail || JSON.stringify(err)}`;
    } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }
  return res;
}

export async function getJSON(path, opts) {
  return (await request(path, opts)).json();
}

// Read server-sent events from a fetch response; calls onEvent(name, data) per event until the stream ends.
export async function readEvents(path, { method = "GET", body, signal, onEvent, background = false }) {
  const res = await request(path, { method, body, signal, background });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const raw = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of raw.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(event, data.join("\n"));
    }
  }
}
