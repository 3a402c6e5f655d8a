// Drawn views: a plan as a graph of steps coloured by status, and a trace as a waterfall of spans.
const SVG = "http://www.w3.org/2000/svg";
const REF = /\$\{\s*steps\.([A-Za-z0-9_-]+)/g;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function depsOf(step) {
  const deps = new Set(step.after || []);
  for (const m of JSON.stringify(step.input ?? {}).matchAll(REF)) deps.add(m[1]);
  return [...deps];
}

// plan: {name, steps: [{id, agent|capability, input, after}]} or null; reports: StepReport[] (status, timing).
export function planGraph(plan, reports, el) {
  const byId = new Map((reports || []).map((r) => [r.id, r]));
  const nodes = plan
    ? plan.steps.map((s) => ({ id: s.id, agent: s.agent || s.capability, deps: depsOf(s) }))
    : (reports || []).map((r, i, all) => ({ id: r.id, agent: r.agent, deps: i ? [all[i - 1].id] : [], guessed: true }));
  if (!nodes.length) return el("p", { class: "meta" }, "no steps yet (the planner is planning)");
  const depth = new Map();
  const level = (n, seen = new Set()) => {
    if (depth.has(n.id)) return depth.get(n.id);
    if (seen.has(n.id)) return 0;
    seen.add(n.id);
    const d = Math.max(-1, ...n.deps.map((id) => nodes.find((m) => m.id === id)).filter(Boolean).map((m) => level(m, seen))) + 1;
    depth.set(n.id, d);
    return d;
  };
  nodes.forEach((n) => level(n));
  const columns = [];
  for (const n of nodes) (columns[depth.get(n.id)] ||= []).push(n);
  const W = 170, H = 52, GX = 40, GY = 14;
  const pos = new Map();
  columns.forEach((col, c) => col.forEach((n, r) => pos.set(n.id, { x: 8 + c * (W + GX), y: 8 + r * (H + GY) })));
  const width = 16 + columns.length * (W + GX) - GX;
  const height = 16 + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
  const root = svg("svg", { class: "plan", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `plan ${plan ? plan.name : ""}: ${nodes.length} steps` });
  for (const n of nodes) {
    for (const d of n.deps) {
      const a = pos.get(d), b = pos.get(n.id);
      if (!a) continue;
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
      root.append(svg("path", { class: `edge${n.guessed ? " guessed" : ""}`, d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}` }));
    }
  }
  for (const n of nodes) {
    const r = byId.get(n.id) || { status: "pending" };
    const p = pos.get(n.id);
    const g = svg("g", { class: `step ${r.status}`, "data-step": n.id, "data-status": r.status, transform: `translate(${p.x},${p.y})` });
    g.append(svg("rect", { width: W, height: H, rx: 6 }));
    g.append(svg("text", { x: 8, y: 18, class: "id" }, n.id));
    g.append(svg("text", { x: 8, y: 34, class: "agent" }, r.agent || n.agent || ""));
    const timing = r.seconds !== null && r.seconds !== undefined ? `${(r.seconds * 1000).toFixed(0)} ms` : r.status;
    g.append(svg("text", { x: 8, y: 47, class: "time" }, `${r.status === "running" ? "running…" : timing}${r.attempts > 1 ? ` · ${r.attempts} tries` : ""}`));
    g.append(svg("title", {}, r.error ? `${r.error.code}: ${r.error.message}` : `${n.id} → ${r.agent || n.agent || ""}: ${r.status}`));
    root.append(g);
  }
  return root;
}

const PALETTE = ["#2f7ed8", "#3a9a4a", "#d8572f", "#8a5cc2", "#c29a1f", "#1fa3a3", "#c2407a"];

// spans: [{trace_id, span_id, parent_id, name, start_ns, end_ns, service, status, attributes}] by start time.
export function waterfall(spans, el) {
  if (!spans.length) return el("p", { class: "meta" }, "no spans");
  const ids = new Map(spans.map((s) => [s.span_id, s]));
  const depthOf = (s, n = 0) => (s.parent_id && ids.has(s.parent_id) && n < 64 ? depthOf(ids.get(s.parent_id), n + 1) + 1 : 0);
  const t0 = Math.min(...spans.map((s) => s.start_ns));
  const t1 = Math.max(...spans.map((s) => s.end_ns));
  const total = Math.max(t1 - t0, 1);
  const services = [...new Set(spans.map((s) => s.service))];
  const colour = (svc) => PALETTE[services.indexOf(svc) % PALETTE.length];
  // Children under their parent, in start order (a depth-first walk).
  const children = new Map();
  const roots = [];
  for (const s of spans) (s.parent_id && ids.has(s.parent_id) ? (children.get(s.parent_id) || children.set(s.parent_id, []).get(s.parent_id)) : roots).push(s);
  const ordered = [];
  const walk = (s) => { ordered.push(s); (children.get(s.span_id) || []).forEach(walk); };
  roots.forEach(walk);
  return el("div", { class: "waterfall", "data-trace": spans[0].trace_id },
    el("p", { class: "legend" }, `trace ${spans[0].trace_id} · ${(total / 1e6).toFixed(1)} ms · `,
      ...services.map((s) => el("span", { class: "svc", style: `border-color:${colour(s)}` }, s.replace("neurectomy-", "")))),
    ...ordered.map((s) => {
      const left = (100 * (s.start_ns - t0)) / total;
      const width = Math.max((100 * (s.end_ns - s.start_ns)) / total, 0.3);
      return el("div", { class: `span-row ${s.status}`, "data-span": s.span_id, "data-parent": s.parent_id || "", "data-service": s.service, title: JSON.stringify(s.attributes) },
        el("div", { class: "label", style: `padding-left:${depthOf(s) * 12}px` },
          el("span", { class: "svc-dot", style: `background:${colour(s.service)}` }), s.name),
        el("div", { class: "track" },
          el("div", { class: "bar", style: `left:${left}%;width:${width}%;background:${colour(s.service)}` })),
        el("span", { class: "dur" }, `${((s.end_ns - s.start_ns) / 1e6).toFixed(1)} ms`));
    }));
}
