// clipvil episode replay. From the local server the data are JSON, fetched with the header the
// server requires (so no other site can include them with a <script> tag); a static export opened
// as file:// cannot fetch, so there the data are scripts calling replayReceive(kind, key, data).
// Every string from the data goes into the DOM through textContent / setAttribute, never as HTML.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const STOP = "stop";
const REQUEST_HEADER = ["X-Clipvil-Replay", "1"];  // vln/replay/payload.py REQUEST_HEADER
const FROM_FILE = location.protocol === "file:";
const $ = (id) => document.getElementById(id);
const pending = new Map();
const state = { rows: [], episode: null, step: 0, timer: null, openSeq: 0 };

window.replayReceive = function (kind, key, data) {
  const id = kind + ":" + (key === null ? "" : key);
  const p = pending.get(id);
  if (p) { pending.delete(id); p.resolve(data); }
};

function loadScript(kind, key, src) {
  const id = kind + ":" + (key === null ? "" : key);
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    const s = document.createElement("script");
    s.src = src;
    s.onload = () => s.remove();
    s.onerror = () => { s.remove(); pending.delete(id); reject(new Error("cannot load " + src)); };
    document.head.appendChild(s);
  });
}

async function loadJSON(src) {
  const r = await fetch(src, { headers: [REQUEST_HEADER], credentials: "same-origin", cache: "no-cache" });
  if (!r.ok) throw new Error("cannot load " + src + ": " + r.status + " " + (await r.text()).trim());
  return r.json();
}

// The data file `base` (without extension): JSON from a server, a script from file://.
function loadData(kind, key, base) {
  return FROM_FILE ? loadScript(kind, key, base + ".js") : loadJSON(base + ".json");
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

const fmt = (x, d = 2) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
const deg = (rad) => Math.round(((rad * 180) / Math.PI + 360) % 360) + "°";

// ---------------------------------------------------------------- episode list
function filteredRows() {
  const q = $("search").value.trim().toLowerCase();
  const outcome = $("filter-success").value;
  const lo = parseFloat($("ne-min").value), hi = parseFloat($("ne-max").value);
  let rows = state.rows.filter((r) => {
    if (q && !r.instr_id.toLowerCase().includes(q) && !r.scan.toLowerCase().includes(q)) return false;
    if (outcome === "success" && r.success !== true) return false;
    if (outcome === "failure" && r.success !== false) return false;
    if (outcome === "none" && r.has_trajectory) return false;
    if (!isNaN(lo) && !(r.nav_error !== null && r.nav_error >= lo)) return false;
    if (!isNaN(hi) && !(r.nav_error !== null && r.nav_error <= hi)) return false;
    return true;
  });
  const sort = $("sort").value;
  const ne = (r) => (r.nav_error === null ? -1 : r.nav_error);
  if (sort === "ne-desc") rows = rows.slice().sort((a, b) => ne(b) - ne(a));
  if (sort === "ne-asc") rows = rows.slice().sort((a, b) => ne(a) - ne(b));
  if (sort === "id") rows = rows.slice().sort((a, b) => a.instr_id.localeCompare(b.instr_id, undefined, { numeric: true }));
  return rows;
}

function renderList() {
  const list = $("episode-list");
  const rows = filteredRows();
  list.replaceChildren();
  for (const r of rows.slice(0, 2000)) {  // the DOM stays small; search narrows the rest
    const li = el("li");
    const b = el("button", { "data-key": r.key, class: "episode-item" });
    b.appendChild(el("span", { class: "iid" }, r.instr_id));
    const mark = r.success === null ? "·" : r.success ? "✓" : "✗";
    b.appendChild(el("span", { class: "outcome " + (r.success === null ? "none" : r.success ? "ok" : "fail") }, mark));
    b.appendChild(el("span", { class: "ne" }, r.nav_error === null ? "" : fmt(r.nav_error, 1) + " m"));
    if (state.episode && state.episode.key === r.key) b.classList.add("selected");
    b.addEventListener("click", () => openEpisode(r.key));
    li.appendChild(b);
    list.appendChild(li);
  }
  $("list-count").textContent = rows.length + " of " + state.rows.length + " episodes" +
    (rows.length > 2000 ? " (first 2000 shown)" : "");
}

// ---------------------------------------------------------------- one episode
function notice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

// Show episode `key`. Resolves to true once shown, false (with a notice saying why) when it cannot
// be loaded, null when a later openEpisode call was made while this one was loading: only the last
// request is shown, so a slow answer never replaces the episode the user picked afterwards (nor
// resets the step they moved to). body[data-loading] is "1" while the last request is pending.
async function openEpisode(key, step) {
  stop();
  const seq = ++state.openSeq;
  document.body.dataset.loading = "1";
  let ep, error = null;
  try {
    ep = await loadData("episode", key, "data/episodes/" + encodeURIComponent(key));
  } catch (e) {
    error = e;
  }
  if (seq !== state.openSeq) return null;
  document.body.dataset.loading = "0";
  if (error) {
    notice("Cannot load episode " + key + ": " + error.message);
    return false;
  }
  notice("");
  state.episode = ep;
  state.step = 0;
  if (location.hash.slice(1) !== key) history.replaceState(null, "", "#" + encodeURIComponent(key));
  $("placeholder").hidden = true;
  $("episode").hidden = false;
  $("episode-title").textContent = ep.instr_id;
  $("episode-sub").textContent = "scan " + ep.scan + " · path " + ep.path_id + " · " + ep.language +
    " · replaying the " + (ep.source === "agent" ? "agent's trajectory" : "reference path (no trajectory)");
  renderInstruction(ep);
  renderMetrics(ep);
  buildPlot(ep);
  for (const b of document.querySelectorAll(".episode-item")) b.classList.toggle("selected", b.dataset.key === key);
  show(Math.min(step || 0, ep.steps.length - 1));
  return true;
}

function renderInstruction(ep) {
  const p = $("instruction");
  p.replaceChildren();
  p.setAttribute("lang", ep.language);
  let cursor = 0;
  const extra = [];
  ep.tokens.forEach((t, i) => {
    const span = el("span", { class: "tok", "data-token": String(i) });
    if (t.start === null) { span.textContent = t.text; span.classList.add("extra"); extra.push(span); return; }
    if (t.start > cursor) p.appendChild(document.createTextNode(ep.instruction.slice(cursor, t.start)));
    span.textContent = ep.instruction.slice(t.start, t.end);
    p.appendChild(span);
    cursor = t.end;
  });
  if (cursor < ep.instruction.length) p.appendChild(document.createTextNode(ep.instruction.slice(cursor)));
  for (const s of extra) { p.appendChild(document.createTextNode(" ")); p.appendChild(s); }
}

function renderMetrics(ep) {
  const body = $("metrics").tBodies[0];
  body.replaceChildren();
  const m = ep.metrics;
  if (!m) { body.appendChild(el("tr")).appendChild(el("td", { colspan: "2" }, "no agent trajectory or no goal")); return; }
  const rows = [["success", m.success ? "yes" : "no"], ["nav error (m)", fmt(m.nav_error)],
    ["oracle error (m)", fmt(m.oracle_error)], ["SPL", fmt(m.spl, 3)], ["nDTW", fmt(m.ndtw, 3)],
    ["sDTW", fmt(m.sdtw, 3)], ["CLS", fmt(m.cls, 3)], ["length (m)", fmt(m.trajectory_length)],
    ["shortest (m)", fmt(m.shortest_length)], ["steps", m.steps]];
  for (const [k, v] of rows) {
    const tr = el("tr", { "data-metric": k });
    tr.appendChild(el("th", {}, k));
    tr.appendChild(el("td", {}, v));
    body.appendChild(tr);
  }
}

function buildPlot(ep) {
  const P = ep.plot, plot = $("plot");
  plot.replaceChildren();
  const r = ep.success_distance || 0;
  const goal = P.nodes[P.reference[P.reference.length - 1]];
  const [x0, y0, x1, y1] = [Math.min(P.bounds[0], goal[1] - r), Math.min(P.bounds[1], goal[2] - r),
    Math.max(P.bounds[2], goal[1] + r), Math.max(P.bounds[3], goal[2] + r)];
  const pad = 1;
  plot.setAttribute("viewBox", [x0 - pad, -y1 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad].join(" "));
  const pt = (k) => P.nodes[k][1] + "," + -P.nodes[k][2];
  plot.appendChild(svg("circle", { class: "goal-radius", cx: goal[1], cy: -goal[2], r: r }));
  for (const [i, j] of P.edges) {
    plot.appendChild(svg("line", { class: "edge", x1: P.nodes[i][1], y1: -P.nodes[i][2], x2: P.nodes[j][1], y2: -P.nodes[j][2] }));
  }
  P.nodes.forEach((n, k) => {
    const c = svg("circle", { class: "node", cx: n[1], cy: -n[2], r: 0.12, "data-viewpoint": n[0] });
    const t = svg("title"); t.textContent = n[0]; c.appendChild(t);
    plot.appendChild(c);
  });
  plot.appendChild(svg("polyline", { id: "ref-path", class: "ref", points: P.reference.map(pt).join(" ") }));
  if (P.agent) {
    plot.appendChild(svg("polyline", { id: "agent-path", class: "agent-full", points: P.agent.map(pt).join(" ") }));
  }
  plot.appendChild(svg("polyline", { id: "progress-path", class: ep.source === "agent" ? "agent" : "ref-progress", points: "" }));
  plot.appendChild(svg("g", { id: "cand-markers" }));
  const s = P.nodes[P.reference[0]];
  plot.appendChild(svg("rect", { class: "start", x: s[1] - 0.25, y: -s[2] - 0.25, width: 0.5, height: 0.5 }));
  plot.appendChild(svg("circle", { class: "goal", cx: goal[1], cy: -goal[2], r: 0.25 }));
  plot.appendChild(svg("circle", { id: "current-marker", class: "current", r: 0.3 }));
}

function slotOf(ep, vp) {
  return ep.plot.nodes.findIndex((n) => n[0] === vp);
}

function show(t) {
  const ep = state.episode;
  if (!ep) return;
  state.step = Math.max(0, Math.min(t, ep.steps.length - 1));
  const step = ep.steps[state.step];
  $("step-label").textContent = "Step " + (state.step + 1) + " / " + ep.steps.length;
  $("step-label").dataset.step = String(state.step);
  // attention: the attended token (largest weight) is highlighted, the others shaded by weight
  const att = ep.attention && state.step < ep.attention.length ? ep.attention[state.step] : null;
  const top = att ? att.indexOf(Math.max(...att)) : -1;
  const wmax = att ? Math.max(...att, 1e-9) : 1;
  for (const s of $("instruction").querySelectorAll(".tok")) {
    const i = Number(s.dataset.token);
    s.classList.toggle("attended", i === top);
    s.style.backgroundColor = att ? "rgba(255, 170, 0, " + (0.6 * att[i] / wmax).toFixed(3) + ")" : "";
  }
  // plot: the path so far and where we are
  const progress = [];
  for (let k = 0; k <= state.step; k++) progress.push(slotOf(ep, ep.steps[k].viewpoint));
  $("progress-path").setAttribute("points", progress.map((k) => ep.plot.nodes[k][1] + "," + -ep.plot.nodes[k][2]).join(" "));
  const cur = ep.plot.nodes[slotOf(ep, step.viewpoint)];
  const marker = $("current-marker");
  marker.setAttribute("cx", cur[1]); marker.setAttribute("cy", -cur[2]);
  marker.setAttribute("data-viewpoint", step.viewpoint);
  const g = $("cand-markers");
  g.replaceChildren();
  step.candidates.forEach((c, i) => {
    const k = slotOf(ep, c.viewpoint);
    if (k < 0) return;
    const chosen = step.chosen === i;
    g.appendChild(svg("line", { class: chosen ? "cand-link chosen" : "cand-link", x1: cur[1], y1: -cur[2], x2: ep.plot.nodes[k][1], y2: -ep.plot.nodes[k][2] }));
  });
  renderImages(step);
  renderCandidates(step);
  const next = ep.steps[state.step + 1];  // warm the cache so stepping and playback do not wait
  if (next) for (const src of [next.view, next.pano]) if (src) new Image().src = src;
  if (state.timer && state.step >= ep.steps.length - 1) stop();
}

function marker(parent, cls, leftPct, topPct, label) {
  const m = el("div", { class: "marker " + cls }, label);
  m.style.left = leftPct + "%";
  m.style.top = topPct + "%";
  parent.appendChild(m);
}

function renderImages(step) {
  const view = $("view"), pano = $("pano");
  const vm = $("view-markers"), pm = $("pano-markers");
  vm.replaceChildren(); pm.replaceChildren();
  $("view-panel").classList.toggle("no-image", !step.view);
  $("pano-panel").classList.toggle("no-image", !step.pano);
  if (step.view) view.setAttribute("src", step.view); else view.removeAttribute("src");
  if (step.pano) pano.setAttribute("src", step.pano); else pano.removeAttribute("src");
  $("view-caption").textContent = step.view
    ? "view at heading " + step.heading_deg + "° from " + step.viewpoint
    : "no skybox images for " + step.viewpoint + " (pass --scans-dir)";
  step.candidates.forEach((c, i) => {
    const cls = step.chosen === i ? "chosen" : "";
    if (c.in_view) marker(vm, cls, 100 * c.in_view[0], 100 * c.in_view[1], String(i));
    const row = 2 - Math.floor(c.point_id / 12), col = c.point_id % 12;
    marker(pm, "tile " + cls, (100 * (col + 0.5)) / 12, (100 * (row + 0.5)) / 3, String(i));
  });
}

function renderCandidates(step) {
  const body = $("candidates").tBodies[0];
  body.replaceChildren();
  step.candidates.forEach((c, i) => {
    const tr = el("tr", { "data-viewpoint": c.viewpoint });
    if (step.chosen === i) tr.classList.add("chosen");
    for (const v of [i, c.viewpoint, c.point_id, deg(c.heading), deg(c.elevation), fmt(c.distance_to_goal)]) tr.appendChild(el("td", {}, v));
    body.appendChild(tr);
  });
  const tr = el("tr", { "data-viewpoint": "STOP" });
  if (step.chosen === STOP) tr.classList.add("chosen");
  tr.appendChild(el("td", {}, step.candidates.length));
  tr.appendChild(el("td", { colspan: "4" }, "STOP"));
  tr.appendChild(el("td", {}, fmt(step.distance_to_goal)));
  body.appendChild(tr);
  if (step.chosen === null) body.appendChild(el("tr", { class: "note" })).appendChild(
    el("td", { colspan: "6" }, "moved to " + step.next_viewpoint + ", which is not a panoramic candidate here"));
}

// ---------------------------------------------------------------- playback
function play() {
  const ep = state.episode;
  if (!ep) return;
  if (state.step >= ep.steps.length - 1) show(0);
  $("play").textContent = "pause";
  state.timer = setInterval(() => show(state.step + 1), Number($("speed").value));
}

function stop() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  $("play").textContent = "play";
}

function onKey(e) {
  if (!state.episode || e.target.closest("input, select, textarea")) return;
  const n = state.episode.steps.length;
  const actions = {
    ArrowRight: () => show(state.step + 1), ArrowLeft: () => show(state.step - 1),
    Home: () => show(0), End: () => show(n - 1), " ": () => (state.timer ? stop() : play()),
  };
  const f = actions[e.key];
  if (f) { e.preventDefault(); if (e.key !== " ") stop(); f(); }
}

async function init() {
  for (const id of ["search", "filter-success", "ne-min", "ne-max", "sort"]) $(id).addEventListener("input", renderList);
  $("first").addEventListener("click", () => { stop(); show(0); });
  $("prev").addEventListener("click", () => { stop(); show(state.step - 1); });
  $("next").addEventListener("click", () => { stop(); show(state.step + 1); });
  $("last").addEventListener("click", () => { stop(); show(state.episode.steps.length - 1); });
  $("play").addEventListener("click", () => (state.timer ? stop() : play()));
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", () => {  // deep links and the back button
    const key = decodeURIComponent(location.hash.slice(1));
    if (key && (!state.episode || state.episode.key !== key)) openEpisode(key);
  });
  // The page opens on the episode named in the URL (#<instr_id>), else on the first one.
  const deep = decodeURIComponent(location.hash.slice(1));
  const opening = deep ? openEpisode(deep) : Promise.resolve(false);  // a deep link does not wait for the list
  try {
    state.rows = (await loadData("index", null, "data/index")).episodes;
  } catch (e) {
    $("list-count").textContent = "Cannot load the episode list: " + e.message;
    return;
  }
  renderList();
  if ((await opening) === false) {  // null: the user opened another episode meanwhile
    const why = deep ? $("notice").textContent : "";
    if (state.rows.length) {
      if ((await openEpisode(state.rows[0].key)) && why) notice(why + "; showing the first episode, " + state.rows[0].instr_id);
    } else {
      $("placeholder").textContent = "This split holds no episodes.";
    }
  }
  document.body.dataset.ready = "1";
}

init();
