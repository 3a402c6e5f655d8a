// The dashboard: agents by team, models and charts, ΣVAULT/ΣLANG, ask and goal boxes, tasks, traces.
// Live data: the snapshot feed (/v1/dashboard/events, SSE), one task's events, and short polls for the rest.
import { AuthError, apiKey, getJSON, readEvents, request, setApiKey } from "./api.js";
import { LineChart } from "./charts.js";
import { planGraph, waterfall } from "./views.js";

const $ = (sel) => document.querySelector(sel);
const TEAMS = ["inference", "compression", "storage", "analysis", "synthesis"];
const state = { cursors: [null], page: 0, selectedTask: null, taskWatch: null, plans: new Map(),
  features: { plan: false }, sigmaSeries: { t: [], ratio: [] }, feed: null, started: false };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const fmt = {
  ms: (v) => (v === null || v === undefined ? "–" : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`),
  bytes: (v) => (v ? (v > 1 << 30 ? `${(v / (1 << 30)).toFixed(2)} GiB` : `${(v / (1 << 20)).toFixed(0)} MiB`) : "–"),
  time: (t) => new Date(t * 1000).toLocaleTimeString(),
  pct: (v) => `${(100 * v).toFixed(1)} %`,
};

// ---------------------------------------------------------------- key handling
function askForKey(message) {
  const dialog = $("#key-dialog");
  $("#key-error").textContent = message || "";
  if (!dialog.open) dialog.showModal();
  $("#key-input").focus();
}

async function tryKey(event) {
  event.preventDefault();
  const key = $("#key-input").value.trim();
  setApiKey(key);
  try {
    await getJSON("/v1/dashboard/snapshot", { background: true });
  } catch (err) {
    setApiKey(null);
    $("#key-error").textContent = err instanceof AuthError ? "Key refused (401): check it and try again." : `Error: ${err.message}`;
    return;
  }
  $("#key-dialog").close();
  start();
}

function guarded(fn) {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (err) {
      if (err instanceof AuthError) {
        setApiKey(null);
        askForKey("Your key is no longer accepted; enter another one.");
      } else if (err.name !== "AbortError") {
        throw err;
      }
    }
    return undefined;
  };
}

// ---------------------------------------------------------------- agents
function renderAgents(snap) {
  const teams = $("#teams");
  const byTeam = new Map(TEAMS.map((t) => [t, []]));
  for (const a of snap.agents) {
    if (!byTeam.has(a.team)) byTeam.set(a.team, []);
    byTeam.get(a.team).push(a);
  }
  const up = snap.agents.filter((a) => a.health === "up").length;
  $("#agents-summary").textContent = `${up} of ${snap.agents.length} up, ${byTeam.size} teams`;
  setPill("#pill-agents", `agents ${up}/${snap.agents.length} up`, up === snap.agents.length ? "ok" : "warn");
  setPill("#pill-nats", snap.nats_connected ? "NATS connected" : "NATS down", snap.nats_connected ? "ok" : "bad");
  teams.replaceChildren(
    ...[...byTeam.entries()].map(([team, agents]) =>
      el("div", { class: "team", "data-team": team },
        el("h3", {}, team, el("small", {}, ` ${agents.filter((a) => a.health === "up").length}/${agents.length}`)),
        el("table", { class: "agents" },
          el("thead", {}, el("tr", {}, ...[["agent", ""], ["rep", "replicas"], ["load", "in flight + queued per worker"], ["fly", "calls in flight"], ["q", "calls queued in mailboxes"], ["err", "failed / calls, last minute"], ["p50 / p95", "latency, last minute"]].map(([h, t]) => el("th", { title: t }, h)))),
          el("tbody", {}, ...agents.map((a) =>
            el("tr", { class: `agent ${a.health}`, "data-agent": a.name, "data-health": a.health, title: a.description },
              el("td", {}, el("span", { class: `dot ${a.health}` }), a.name),
              el("td", {}, a.replicas), el("td", {}, a.load.toFixed(2)), el("td", {}, a.in_flight),
              el("td", {}, a.mailbox_depth), el("td", { class: a.errors ? "bad" : "" }, `${a.errors}/${a.calls}`),
              el("td", {}, `${fmt.ms(a.p50_ms)} / ${fmt.ms(a.p95_ms)}`))))))));
}

function setPill(sel, text, level) {
  const pill = $(sel);
  pill.textContent = text;
  pill.className = `pill ${level}`;
}

// ---------------------------------------------------------------- models and charts
const charts = {};
function renderModels(snap) {
  const rows = snap.models.map((m) =>
    el("tr", { "data-model": m.id },
      el("td", {}, m.id, m.default ? el("small", {}, " default") : null, el("small", {}, ` ${m.kind}`)),
      el("td", { class: m.status === "loaded" ? "ok" : m.status === "failed" ? "bad" : "" }, m.status),
      el("td", {}, fmt.bytes(m.memory_bytes)), el("td", {}, m.parallel ?? "–"),
      el("td", {}, m.active), el("td", {}, m.queue_depth)));
  $("#models tbody").replaceChildren(...rows);
  const pc = snap.prefix_cache;
  $("#prefix-cache").textContent = pc.lookups
    ? `Ryot prefix (KV) cache: ${pc.hits} hits of ${pc.lookups} lookups (${fmt.pct(pc.hits / pc.lookups)}) since start`
    : "Ryot prefix (KV) cache: no lookups yet";
  const loaded = snap.models.filter((m) => m.status === "loaded").length;
  setPill("#pill-models", `models ${loaded}/${snap.models.length} loaded`, loaded ? "ok" : "warn");
  const s = snap.series;
  charts.ttft ||= new LineChart($("#chart-ttft"), [{ label: "p50 ms", stroke: "#2f7ed8" }, { label: "p95 ms", stroke: "#d8572f" }]);
  charts.tps ||= new LineChart($("#chart-tps"), [{ label: "tokens/s", stroke: "#3a9a4a" }, { label: "calls/s", stroke: "#8a5cc2" }]);
  charts.ttft.set(s.t, [s.ttft_p50_ms, s.ttft_p95_ms]);
  charts.tps.set(s.t, [s.tokens_per_s, s.calls_per_s]);
}

// ---------------------------------------------------------------- ΣVAULT / ΣLANG (polled)
function kv(target, pairs) {
  $(target).replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

async function pollStorage() {
  try {
    const v = await getJSON("/v1/vault/stats", { background: true });
    kv("#vault", [["ΣVAULT tenant", v.tenant], ["records (tenant / all)", `${v.tenant_records} / ${v.records}`],
      ["tenants", v.tenants], ["index", `${v.index_kind || "–"}${v.gpu ? " (GPU)" : " (CPU)"}`],
      ["L1 cache hits", `${v.l1_hits} of ${v.l1_hits + v.l1_misses} reads (${fmt.pct(v.hit_ratio)})`],
      ["WAL", `${v.wal_entries} entries`], ["snapshot gen.", v.snapshot_generation]]);
  } catch (err) {
    if (err instanceof AuthError) throw err;
    kv("#vault", [["ΣVAULT", `unavailable (${err.message})`]]);
  }
  try {
    const s = await getJSON("/v1/sigma/stats", { background: true });
    const m = s.metrics || {};
    const ratio = m.bytes_out ? m.bytes_in / m.bytes_out : null;
    kv("#sigma", [["ΣLANG RSUs", `${s.rsus} (${fmt.bytes(s.bytes)})`], ["dictionaries", s.dictionaries],
      ["compressions", m.compressions ?? 0], ["ratio since start", ratio ? `${ratio.toFixed(2)}×` : "–"]]);
    const series = state.sigmaSeries;
    if (ratio !== null) {  // nothing compressed yet: no chart rather than an empty one
      series.t.push(Date.now() / 1000);
      series.ratio.push(ratio);
      if (series.t.length > 300) { series.t.shift(); series.ratio.shift(); }
      if (!charts.sigma) $("#chart-sigma").textContent = "";
      charts.sigma ||= new LineChart($("#chart-sigma"), [{ label: "ratio ×", stroke: "#c29a1f" }]);
      charts.sigma.set(series.t, [series.ratio]);
    } else if (!charts.sigma) {
      $("#chart-sigma").textContent = "no compression yet";
    }
  } catch (err) {
    if (err instanceof AuthError) throw err;
    kv("#sigma", [["ΣLANG", `unavailable (${err.message})`]]);
  }
}

// ---------------------------------------------------------------- ask box (streams tokens)
async function ask(event) {
  event.preventDefault();
  const out = $("#ask-output");
  out.textContent = "";
  $("#ask-meta").textContent = "streaming…";
  $("#ask-submit").disabled = true;
  const started = performance.now();
  let first = null;
  let tokens = 0;
  try {
    await readEvents("/v1/generate", {
      method: "POST",
      body: { prompt: $("#ask-input").value, max_tokens: Number($("#ask-max").value), stream: true },
      onEvent: (name, data) => {
        const body = JSON.parse(data);
        if (name === "token") {
          first ??= performance.now();
          tokens += 1;
          out.append(body.text);
          out.dataset.chunks = String(tokens);
        } else if (name === "done") {
          $("#ask-meta").textContent = `${body.usage.completion_tokens} tokens · TTFT ${Math.round(first - started)} ms (browser) · ` +
            `finish: ${body.finish_reason}`;
        } else if (name === "error") {
          $("#ask-meta").textContent = `error: ${(body.error && body.error.message) || body.message || data}`;
        }
      },
    });
  } catch (err) {
    if (err instanceof AuthError) throw err;
    $("#ask-meta").textContent = `error: ${err.message}`;
  } finally {
    $("#ask-submit").disabled = false;
  }
}

// ---------------------------------------------------------------- goal box (preview a plan, run it)
async function previewPlan() {
  const goal = $("#goal-input").value.trim();
  if (!goal) return null;
  $("#goal-meta").textContent = "planning…";
  let planned;
  if (state.features.plan) {
    planned = await getJSON("/v1/plan", { method: "POST", body: { goal } });
  } else {
    planned = (await getJSON("/v1/agents/planner", { method: "POST", body: { input: { goal } } })).output;
  }
  const plan = planned.plan;
  $("#goal-plan").replaceChildren(planGraph(plan, [], el));
  $("#goal-meta").textContent = `plan “${plan.name}”: ${plan.steps.length} steps` +
    (planned.builtin ? ` (built-in ${planned.builtin})` : "");
  return plan;
}

async function runGoal(event) {
  event.preventDefault();
  const goal = $("#goal-input").value.trim();
  let plan = null;
  try {
    plan = await previewPlan();
  } catch (err) {
    if (err instanceof AuthError) throw err;
    $("#goal-meta").textContent = `no preview (${err.message}); submitting the goal`;
  }
  try {
    const created = await getJSON("/v1/tasks", { method: "POST", body: { goal } });
    if (plan) state.plans.set(created.id, plan);
    $("#goal-meta").textContent = `task ${created.id.slice(0, 8)} ${created.status}`;
    await loadTasks();
    selectTask(created.id);
  } catch (err) {
    if (err instanceof AuthError) throw err;
    $("#goal-meta").textContent = `error: ${err.message}`;
  }
}

// ---------------------------------------------------------------- tasks
async function loadTasks() {
  const params = new URLSearchParams({ limit: $("#task-limit").value });
  const status = $("#task-status").value;
  if (status) params.set("status", status);
  const cursor = state.cursors[state.page];
  if (cursor) params.set("cursor", cursor);
  const page = await getJSON(`/v1/tasks?${params}`, { background: true });
  state.cursors[state.page + 1] = page.next_cursor;
  $("#task-prev").disabled = state.page === 0;
  $("#task-next").disabled = !page.next_cursor;
  $("#tasks tbody").replaceChildren(...page.tasks.map((t) => {
    const done = t.steps.filter((s) => s.status === "succeeded").length;
    return el("tr", { class: `task ${t.id === state.selectedTask ? "selected" : ""}`, "data-task": t.id, onclick: () => selectTask(t.id) },
      el("td", {}, el("code", {}, t.id.slice(0, 8))),
      el("td", {}, el("span", { class: `status ${t.status}` }, t.status)),
      el("td", { class: "what" }, t.goal || (t.plan && `plan ${t.plan.name || ""}`) || ""),
      el("td", {}, t.steps.length ? `${done}/${t.steps.length}` : "–"),
      el("td", {}, fmt.time(t.created_at)), el("td", {}, t.attempts));
  }));
}

function selectTask(id) {
  state.selectedTask = id;
  if (state.taskWatch) state.taskWatch.abort();
  const watch = new AbortController();
  state.taskWatch = watch;
  for (const row of document.querySelectorAll("#tasks tr.task")) row.classList.toggle("selected", row.dataset.task === id);
  guarded(() => readEvents(`/v1/tasks/${id}/events`, {
    signal: watch.signal,
    background: true,
    onEvent: (name, data) => { if (name === "task") renderTask(JSON.parse(data)); },
  }))().then(() => loadTasks()).catch(() => {});
}

function renderTask(task) {
  const plan = task.plan || state.plans.get(task.id) || null;
  const detail = $("#task-detail");
  detail.dataset.task = task.id;
  detail.dataset.status = task.status;
  detail.replaceChildren(...[
    el("h3", {}, `task ${task.id.slice(0, 8)} `, el("span", { class: `status ${task.status}` }, task.status),
      el("small", {}, ` attempt ${task.attempts} · updated ${fmt.time(task.updated_at)}`)),
    planGraph(plan, task.steps, el),
    task.error ? el("p", { class: "error" }, `${task.error.code}: ${task.error.message}`) : null,
    task.result !== null && task.result !== undefined
      ? el("details", {}, el("summary", {}, "result"), el("pre", { class: "output" }, JSON.stringify(task.result, null, 2).slice(0, 4000)))
      : null,
  ].filter(Boolean));
}

// ---------------------------------------------------------------- traces
async function loadTraces() {
  const rows = await getJSON("/v1/traces?limit=25", { background: true });
  $("#traces tbody").replaceChildren(...rows.map((t) =>
    el("tr", { class: `trace ${t.error ? "bad" : ""}`, "data-trace": t.trace_id, onclick: guarded(() => showTrace(t.trace_id)) },
      el("td", {}, el("code", {}, t.trace_id.slice(0, 8))), el("td", {}, t.root),
      el("td", {}, t.services.map((s) => s.replace("neurectomy-", "")).join(", ")), el("td", {}, t.spans),
      el("td", {}, fmt.ms(t.duration_s * 1000)))));
}

async function showTrace(id) {
  const spans = await getJSON(`/v1/traces/${id}`, { background: true });
  $("#waterfall").replaceChildren(waterfall(spans, el));
  for (const row of document.querySelectorAll("#traces tr.trace")) row.classList.toggle("selected", row.dataset.trace === id);
}

// ---------------------------------------------------------------- start
async function follow() {
  const feed = new AbortController();
  state.feed = feed;
  for (;;) {
    try {
      setPill("#pill-feed", "live", "ok");
      await readEvents("/v1/dashboard/events", {
        signal: feed.signal,
        background: true,
        onEvent: (name, data) => {
          if (name !== "snapshot") return;
          const snap = JSON.parse(data);
          renderAgents(snap);
          renderModels(snap);
          document.body.dataset.updated = String(snap.t);
        },
      });
    } catch (err) {
      if (err instanceof AuthError) { setApiKey(null); askForKey("Your key is no longer accepted."); return; }
      if (err.name === "AbortError") return;
    }
    setPill("#pill-feed", "reconnecting", "warn");
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function every(ms, fn) {
  const run = guarded(fn);
  run();
  return setInterval(run, ms);
}

async function start() {
  if (state.started) return;
  state.started = true;
  $("#main").hidden = false;
  $("#forget-key").hidden = !apiKey();
  follow();
  every(5000, pollStorage);
  every(3000, loadTasks);
  every(4000, loadTraces);
}

async function boot() {
  $("#key-form").addEventListener("submit", tryKey);
  $("#forget-key").addEventListener("click", () => { setApiKey(null); location.reload(); });
  $("#ask-form").addEventListener("submit", guarded(ask));
  $("#goal-form").addEventListener("submit", guarded(runGoal));
  $("#goal-preview").addEventListener("click", guarded(async () => {
    try { await previewPlan(); } catch (err) { if (err instanceof AuthError) throw err; $("#goal-meta").textContent = `error: ${err.message}`; }
  }));
  $("#task-status").addEventListener("change", guarded(() => { state.page = 0; state.cursors = [null]; return loadTasks(); }));
  $("#task-limit").addEventListener("change", guarded(() => { state.page = 0; state.cursors = [null]; return loadTasks(); }));
  $("#task-next").addEventListener("click", guarded(() => { state.page += 1; return loadTasks(); }));
  $("#task-prev").addEventListener("click", guarded(() => { state.page = Math.max(state.page - 1, 0); return loadTasks(); }));
  try {
    const schema = await getJSON("/schema/openapi.json", { background: true });
    state.features.plan = Boolean(schema.paths && schema.paths["/v1/plan"] && schema.paths["/v1/plan"].post);
  } catch (_) { /* no schema: use the planner agent */ }
  try {
    await getJSON("/v1/dashboard/snapshot", { background: true });
  } catch (err) {
    if (err instanceof AuthError) { setApiKey(null); askForKey(apiKey() ? "Key refused." : ""); return; }
  }
  start();
}

boot();
