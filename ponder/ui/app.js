// ponder's trace explorer: runs a search through the chat API (streamed, with ponder.trace), draws it as it runs,
// and shows any stored result of the server's evaluation store. Everything the model wrote is set as text, never
// as markup: model output is untrusted.
"use strict";

const UI = { config: null, last: null, events: 0, compare: [], trees: {} };
window.ponderUI = UI;

const $ = (sel, root = document) => root.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const fmt = (x, d = 3) => (x === null || x === undefined ? "–" : typeof x === "number" ? (Number.isInteger(x) ? String(x) : x.toFixed(d)) : String(x));

async function api(path) {
  const r = await fetch(path, { headers: { "X-Ponder-UI": "1" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || `${r.status} ${r.statusText}`);
  return body;
}

// -- tabs ---------------------------------------------------------------------------------------------------

function showTab(name) {
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === name);
  for (const p of document.querySelectorAll(".pane")) p.classList.toggle("active", p.id === `pane-${name}`);
}

// -- the result view: answer, votes, candidates grouped by answer, and the tree ----------------------------

function renderResult(box, r, opts = {}) {
  box.replaceChildren();
  box.dataset.strategy = r.strategy || "";
  const title = opts.title ? el("div", { class: "meta", text: opts.title }) : null;
  const correct = r.correct === undefined ? null : r.correct > 0;
  const answer = el("div", { class: "answer" }, "Answer: ", el("span", { class: "value", "data-role": "answer", text: r.answer ?? "(none)" }),
    correct === null ? null : el("span", { class: correct ? "right" : "wrong", text: correct ? "  ✓ right" : `  ✗ wrong (reference ${r.reference})` }));
  const u = r.usage || {};
  const meta = el("div", { class: "meta", text:
    `${r.strategy}${r.scorer ? " · scorer " + r.scorer : ""} · ${fmt(u.completion_tokens)} generated tokens · ` +
    `${fmt(u.prompt_tokens)} prompt (${fmt(u.cached_prompt_tokens)} from cache) · ${fmt(u.seconds ?? r.seconds, 2)} s` +
    (u.tool_calls ? ` · ${u.tool_calls} programs run` : "") + (r.stopped_by ? ` · stopped by ${r.stopped_by}` : "") +
    (r.stored ? ` · stored: ${r.stored}` : "") });
  const question = r.question ? el("details", {}, el("summary", { text: "question" }), el("pre", { text: r.question })) : null;
  box.append(...[title, answer, meta, question].filter(Boolean));
  if (opts.compare) box.append(el("button", { class: "compare-btn", text: "compare", onclick: () => addCompare(r, opts.title || r.strategy) }));
  box.append(renderVotes(r));
  if (r.tree && r.tree.length) box.append(treeView(r.tree, r, opts.id || "tree"));
  box.append(renderCandidates(r));
  box.append(el("details", { class: "raw" }, el("summary", { text: "JSON" }), el("pre", { text: JSON.stringify(r, null, 1) })));
}

function renderVotes(r) {
  const votes = Object.entries(r.votes || {});
  const box = el("div", { class: "votes", "data-role": "votes" });
  if (!votes.length) return box;
  const max = Math.max(...votes.map(([, w]) => w));
  const winner = r.chosen !== null && r.chosen !== undefined && r.candidates[r.chosen] ? r.candidates[r.chosen].key : null;
  box.append(el("div", { class: "meta", text: "votes (weight per answer)" }));
  for (const [key, w] of votes) {
    const bar = el("span", { class: "bar" });
    bar.style.width = `${Math.max(2, 300 * w / (max || 1))}px`;  // CSSOM, which the page's CSP allows (style attributes it does not)
    box.append(el("div", { class: "vote" + (key === winner ? " winner" : ""), "data-key": key, "data-weight": w },
      el("span", { class: "key", text: key, title: key }), bar, el("span", { text: fmt(w) })));
  }
  return box;
}

function renderCandidates(r) {
  const groups = new Map();
  (r.candidates || []).forEach((c, i) => {
    const k = c.key ?? "(no answer)";
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push([c, i]);
  });
  const chosenKey = r.chosen !== null && r.chosen !== undefined && r.candidates[r.chosen] ? (r.candidates[r.chosen].key ?? "(no answer)") : null;
  const box = el("div", { class: "groups", "data-role": "candidates" });
  const n = (r.candidates || []).length;
  box.append(el("div", { class: "meta", text: `${n} candidate${n === 1 ? "" : "s"}, grouped by answer` }));
  const order = [...groups.entries()].sort((a, b) => (b[0] === chosenKey) - (a[0] === chosenKey) || b[1].length - a[1].length);
  for (const [key, members] of order) {
    const best = Math.max(...members.map(([c]) => c.score ?? -Infinity));
    const g = el("details", { class: "group" + (key === chosenKey ? " winner" : ""), "data-key": key, open: key === chosenKey },
      el("summary", { text: `${key} — ${members.length} path${members.length > 1 ? "s" : ""}` + (isFinite(best) ? ` · best score ${fmt(best)}` : "") }));
    for (const [c, i] of members) g.append(candidateView(c, i, i === r.chosen));
    box.append(g);
  }
  return box;
}

function candidateView(c, i, chosen) {
  const right = c.correct === undefined || c.correct === null ? null : c.correct > 0;
  const div = el("div", { class: "candidate" + (chosen ? " chosen" : ""), "data-index": i },
    el("div", { class: "meta", text: `#${i}${chosen ? " (chosen)" : ""} · ${c.tokens} tokens · ${c.finish_reason}` +
      (c.score !== null && c.score !== undefined ? ` · score ${fmt(c.score)}` : "") +
      (c.confidence !== null && c.confidence !== undefined ? ` · confidence ${fmt(c.confidence)}` : "") +
      (c.step_scores ? ` · step scores ${c.step_scores.map((s) => fmt(s, 2)).join(" ")}` : "") }),
    right === null ? null : el("span", { class: right ? "right" : "wrong", text: right ? "right" : "wrong" }));
  if (c.text !== undefined) div.append(el("pre", { text: c.text }));
  for (const e of c.executions || []) {
    div.append(el("div", { class: "exec" }, el("div", { class: "meta", text: `program ran ${fmt(e.seconds, 3)} s · ${e.ok ? "ok" : e.error}` }),
      el("pre", { text: e.stdout || e.stderr })));
  }
  return div;
}

// -- the tree view (d3): collapsible, searchable, zoomable; chosen path highlighted, pruned branches greyed ---

function treeView(nodes, r, id) {
  const box = el("div", { class: "tree-box", "data-role": "tree", "data-nodes": nodes.length });
  const search = el("input", { placeholder: "search steps…", class: "tree-search" });
  const found = el("span", { class: "help" });
  const detail = el("div", { class: "node-detail", text: "click a node's label for its step; click its circle to fold or unfold it" });
  box.append(el("div", { class: "tree-tools" },
    el("span", { text: `${nodes.length} nodes` + (r.extra && r.extra.iterations ? ` · ${r.extra.iterations} iterations` : "") }),
    search, found,
    el("button", { type: "button", text: "expand all", onclick: () => { tree.expandAll(); } }),
    el("button", { type: "button", text: "chosen path", onclick: () => { tree.chosenOnly(); } })));
  const svg = d3.create("svg").attr("class", "tree");
  box.append(svg.node(), detail);
  const tree = new TreeDrawing(svg, nodes, detail);
  UI.trees[id] = tree;
  search.addEventListener("input", () => { found.textContent = search.value ? `${tree.search(search.value)} found` : ""; });
  requestAnimationFrame(() => tree.draw());
  return box;
}

class TreeDrawing {
  constructor(svg, nodes, detail) {
    this.svg = svg; this.detail = detail; this.matches = new Set();
    this.g = svg.append("g");
    this.zoom = d3.zoom().scaleExtent([0.05, 4]).on("zoom", (ev) => this.g.attr("transform", ev.transform));
    svg.call(this.zoom);
    this.setNodes(nodes);
  }

  setNodes(nodes) {
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const root = d3.stratify().id((d) => String(d.id)).parentId((d) => (d.parent === null || !byId.has(d.parent) ? null : String(d.parent)))(nodes);
    const old = this.all ? new Set(this.all.filter((d) => d._collapsed).map((d) => d.data.id)) : null;
    // every node, folded or not (d3's each() and descendants() walk only the unfolded ones once nodes are folded)
    this.all = root.descendants();
    for (const d of this.all) {
      d._kids = d.children || null;
      d._collapsed = old ? old.has(d.data.id) : false;
    }
    if (!old && nodes.length > 200) for (const d of this.all) d._collapsed = d.depth >= 2 && !d.data.chosen;
    this.byId = new Map(this.all.map((d) => [d.data.id, d]));
    this.root = root;
  }

  // the nodes under d, folded ones included
  subtree(d) { let n = 1; for (const k of d._kids || []) n += this.subtree(k); return n; }

  visible() {
    const walk = (d) => { d.children = d._collapsed ? null : d._kids; (d.children || []).forEach(walk); };
    walk(this.root);
    return this.root;
  }

  draw() {
    const t0 = performance.now();
    const root = this.visible();
    d3.tree().nodeSize([22, 150])(root);
    const ns = root.descendants(), ls = root.links();
    const color = d3.scaleSequential(d3.interpolateRdYlGn).domain([0, 1]);
    const link = d3.linkHorizontal().x((d) => d.y).y((d) => d.x);
    this.g.selectAll("path.link").data(ls, (d) => d.target.data.id).join("path")
      .attr("class", (d) => "link" + (d.target.data.chosen ? " chosen" : "") + (d.target.data.pruned ? " pruned" : ""))
      .attr("d", link);
    const node = this.g.selectAll("g.node").data(ns, (d) => d.data.id).join((enter) => {
      const g = enter.append("g");
      g.append("circle").on("click", (ev, d) => { d._collapsed = !d._collapsed; this.draw(); });
      g.append("text").attr("dy", "0.32em").attr("x", 8).on("click", (ev, d) => this.show(d.data));
      return g;
    });
    node.attr("class", (d) => "node" + (d.data.chosen ? " chosen" : "") + (d.data.pruned ? " pruned" : "") +
        (d._collapsed && d._kids ? " collapsed" : "") + (this.matches.has(d.data.id) ? " match" : "") + (d.data.finish ? " terminal" : ""))
      .attr("data-id", (d) => d.data.id)
      .attr("transform", (d) => `translate(${d.y},${d.x})`);
    node.select("circle").attr("r", (d) => (d.data.visits ? Math.min(9, 3 + Math.log2(1 + d.data.visits)) : 4))
      .attr("fill", (d) => (d.data.score === null || d.data.score === undefined ? "#cbd5e1" : color(d.data.score)));
    node.select("text").text((d) => label(d.data));
    if (!this.fitted || this.autoFit) { this.fit(ns); this.fitted = true; }
    this.lastDrawMs = performance.now() - t0;
    return this.lastDrawMs;
  }

  // size the drawing to the tree: as tall as its widest level needs (within limits), scaled down to fit
  fit(ns) {
    const xs = ns.map((d) => d.x), depth = Math.max(...ns.map((d) => d.y));
    const lo = Math.min(...xs), hi = Math.max(...xs);
    const h = Math.max(180, Math.min(560, hi - lo + 60));
    this.svg.style("height", `${h}px`);
    const w = this.svg.node().getBoundingClientRect().width || 1000;
    const k = Math.min(1, (w - 220) / Math.max(1, depth), (h - 30) / Math.max(1, hi - lo));
    this.svg.call(this.zoom.transform, d3.zoomIdentity.translate(24, h / 2 - k * (lo + hi) / 2).scale(k));
  }

  show(n) {
    this.detail.replaceChildren(
      el("div", { class: "meta", text: `node ${n.id} · depth ${n.depth} · ${n.tokens} tokens` +
        (n.score !== null && n.score !== undefined ? ` · score ${fmt(n.score)}` : "") +
        (n.visits ? ` · ${n.visits} visits · value ${fmt(n.value)}` : "") +
        (n.cached_tokens !== null && n.cached_tokens !== undefined ? ` · ${n.cached_tokens} prompt tokens from cache` : "") +
        (n.finish ? ` · ${n.finish}` : " · open") + (n.pruned ? " · pruned" : "") + (n.chosen ? " · on the chosen path" : "") +
        (n.candidate !== null && n.candidate !== undefined ? ` · candidate #${n.candidate}` : "") }),
      el("pre", { "data-role": "step", text: n.step ?? "" }));
  }

  expandAll() { for (const d of this.all) d._collapsed = false; this.draw(); }
  chosenOnly() { for (const d of this.all) d._collapsed = !d.data.chosen; this.draw(); }

  // fold or unfold one node by id (the benchmark times this)
  toggle(id) {
    const d = this.byId.get(id);
    if (!d) return null;
    d._collapsed = !d._collapsed;
    return this.draw();
  }

  search(text) {
    const q = text.toLowerCase();
    this.matches = new Set();
    for (const d of this.all) {
      if ((d.data.step || "").toLowerCase().includes(q)) {
        this.matches.add(d.data.id);
        for (let a = d.parent; a; a = a.parent) a._collapsed = false;
      }
    }
    this.draw();
    return this.matches.size;
  }
}

function label(n) {
  if (n.parent === null) return "question";
  const s = (n.step || "").replace(/\s+/g, " ").trim();
  const head = s.length > 22 ? s.slice(0, 21) + "…" : s;
  return (n.score !== null && n.score !== undefined ? n.score.toFixed(2) + " " : "") + head;
}

// -- a live search ------------------------------------------------------------------------------------------

let running = null;

function specFromForm() {
  const name = $("#strategy").value;
  const params = $("#params").value.trim().replace(/^\?/, "");
  return params ? `${name}?${params}` : name;
}

async function runSearch(ev) {
  ev.preventDefault();
  const spec = specFromForm();
  const budget = {};
  if ($("#max-tokens").value) budget.max_tokens = Number($("#max-tokens").value);
  if ($("#max-seconds").value) budget.max_seconds = Number($("#max-seconds").value);
  const body = { model: UI.config.model, stream: true, stream_options: { include_usage: true },
    messages: [{ role: "user", content: $("#question").value }],
    ponder: { strategy: spec, trace: true, ...(Object.keys(budget).length ? { budget } : {}), ...($("#scorer").value ? { scorer: $("#scorer").value } : {}) } };
  const live = new LiveSearch(spec);
  running = new AbortController();
  $("#run").disabled = true; $("#stop").disabled = false;
  try {
    const resp = await fetch("/v1/chat/completions", { method: "POST", signal: running.signal,
      headers: { "Content-Type": "application/json", "X-Ponder-UI": "1" }, body: JSON.stringify(body) });
    if (!resp.ok) {
      const err = await resp.json().catch(() => ({}));
      throw new Error((err.error && err.error.message) || `${resp.status} ${resp.statusText}`);
    }
    await readEvents(resp, (obj) => live.chunk(obj));
    live.finish();
  } catch (e) {
    live.fail(e.name === "AbortError" ? "stopped" : e.message);
  } finally {
    $("#run").disabled = false; $("#stop").disabled = true; running = null;
  }
}

async function readEvents(resp, onChunk) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onChunk(JSON.parse(data));
      }
    }
  }
}

class LiveSearch {
  constructor(spec) {
    this.spec = spec; this.nodes = new Map([[0, { id: 0, parent: null, step: "", depth: 0, tokens: 0 }]]);
    this.paths = new Map(); this.final = null; this.error = null; this.t0 = performance.now();
    this.tokens = 0; this.seconds = 0; this.reasoning = ""; this.content = ""; this.pending = false;
    UI.events = 0; UI.progressTicks = 0; UI.last = null; UI.liveNodes = this.nodes;
    $("#paths").replaceChildren(); $("#paths").hidden = false; $("#search-result").replaceChildren();
    this.status("searching…", "");
  }

  status(text, cls) { const s = $("#status"); s.textContent = text; s.className = "status " + (cls || ""); }

  chunk(obj) {
    if (obj.error) { this.error = obj.error.message; return; }
    const p = obj.ponder;
    for (const ch of obj.choices || []) {
      if (ch.delta && ch.delta.reasoning_content) this.reasoning += ch.delta.reasoning_content;
      if (ch.delta && ch.delta.content) this.content += ch.delta.content;
    }
    if (p && p.progress) UI.progressTicks += 1;
    if (p && p.progress) { this.seconds = p.progress.seconds; if (p.progress.engine_completion_tokens !== undefined) this.tokens = p.progress.engine_completion_tokens; }
    if (p && p.events) { UI.events += p.events.length; p.events.forEach((e) => this.apply(e)); }
    if (p && p.choices) this.final = { ponder: p, usage: obj.usage };
    this.schedule();
  }

  apply(e) {
    if (e.event === "node") this.nodes.set(e.id, { ...e, score: null });
    else if (e.event === "scores") for (const [id, s] of e.nodes) { const n = this.nodes.get(id); if (n) n.score = s; }
    else if (e.event === "visits") for (const [id, v, q] of e.nodes) { const n = this.nodes.get(id); if (n) { n.visits = v; n.value = q; } }
    else if (e.event === "pruned") for (const id of e.ids) { const n = this.nodes.get(id); if (n) n.pruned = true; }
    else if (e.event === "removed") for (const id of e.ids) this.nodes.delete(id);
    else if (e.event === "paths") for (let i = 0; i < e.n; i++) this.paths.set(e.first + i, { text: "", ended: null });
    else if (e.event === "text") { const p = this.paths.get(e.path) || { text: "", ended: null }; p.text += e.text; this.paths.set(e.path, p); }
    else if (e.event === "votes") this.votes = e;
    else if (e.event === "path_end") e.paths.forEach(([finish, tokens], i) => { const p = this.paths.get(e.first + i); if (p) p.ended = `${finish}, ${tokens} tokens`; });
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    setTimeout(() => { this.pending = false; this.draw(); }, 150);
  }

  draw() {
    const secs = this.seconds || (performance.now() - this.t0) / 1000;
    const nTree = this.nodes.size - 1;
    const votes = this.votes ? ` · vote so far ${Object.entries(this.votes.votes).map(([k, w]) => `${k}: ${fmt(w)}`).join(", ")} (settled ${fmt(this.votes.settled, 2)})` : "";
    if (!this.final && !this.error) this.status(`searching… ${this.tokens} tokens · ${secs.toFixed(1)} s · ${this.paths.size} paths` + (nTree ? ` · ${nTree} tree nodes` : "") + votes, "");
    if (nTree > 0 && !this.final) {
      if (!this.tree) {
        const box = el("div", { class: "tree-box", "data-role": "live-tree" });
        const svg = d3.create("svg");
        box.append(svg.node());
        $("#live").prepend(box);
        this.tree = new TreeDrawing(svg, [...this.nodes.values()], el("div"));
        this.tree.autoFit = true;  // keep the growing tree in view
        $("#paths").hidden = true;
      } else this.tree.setNodes([...this.nodes.values()]);
      this.tree.draw();
      return;
    }
    const box = $("#paths");
    const shown = [...this.paths.entries()].slice(0, 64);
    for (const [i, p] of shown) {
      let div = box.querySelector(`[data-path="${i}"]`);
      if (!div) { div = el("div", { class: "path", "data-path": i }, el("div", { class: "head" }), el("span", { class: "body" })); box.append(div); }
      div.firstChild.textContent = `path ${i}${p.ended ? " · " + p.ended : ""}`;
      div.lastChild.textContent = p.text;
      div.classList.toggle("ended", !!p.ended);
    }
  }

  finish() {
    this.draw();
    if (this.error) return this.fail(this.error);
    if (!this.final) return this.fail("the stream ended without a result");
    const choice = this.final.ponder.choices[0];
    UI.last = choice;
    UI.lastStream = { reasoning: this.reasoning, content: this.content, usage: this.final.usage };
    $("#live").querySelectorAll("[data-role=live-tree]").forEach((x) => x.remove());
    $("#paths").hidden = !!(choice.tree && choice.tree.length);  // a tree search's paths are its tree's steps
    this.status(`done: ${choice.usage.completion_tokens} generated tokens · ${choice.usage.seconds} s · ${UI.events} events`, "done");
    renderResult($("#search-result"), choice, { compare: true, id: "search", title: `${this.spec} · live` });
  }

  fail(message) { this.status(`error: ${message}`, "error"); }
}

// -- stored runs ----------------------------------------------------------------------------------------------

let storedRun = null;

async function loadRuns() {
  if (!UI.config.store) { $("#pane-stored").prepend(el("p", { class: "help", text: "This server has no evaluation store: start it with ponder serve --store FILE." })); return; }
  const { runs } = await api("/ui/api/runs");
  const sel = $("#run-select");
  sel.replaceChildren(...runs.map((r) => el("option", { value: r.run, text: `${r.run} (${r.results} results)` })));
  sel.addEventListener("change", () => openRun(sel.value));
  if (runs.length) await openRun(hashParams().get("run") || runs[runs.length - 1].run);
}

async function openRun(run) {
  storedRun = await api(`/ui/api/runs/${encodeURIComponent(run)}`);
  $("#run-select").value = run;
  drawItems();
}

function drawItems() {
  const wantWrong = $("#f-wrong").checked, wantChanged = $("#f-changed").checked, wantDis = $("#f-disagree").checked;
  const rows = storedRun.items.filter((it) => (!wantWrong || it.wrong) && (!wantChanged || it.changed) && (!wantDis || it.disagree));
  $("#item-count").textContent = `${rows.length} of ${storedRun.items.length} items`;
  $("#items tbody").replaceChildren(...rows.map((it) => {
    const right = it.results.filter((r) => r.correct > 0).length;
    return el("tr", { class: "item", "data-item": it.item, onclick: () => openItem(it) },
      el("td", { text: it.item }), el("td", { text: it.reference ?? "" }), el("td", { text: `${right}/${it.results.length}` }),
      el("td", {}, ...["wrong", "changed", "disagree"].filter((f) => it[f]).map((f) => el("span", { class: "flag", text: f }))));
  }));
}

function openItem(it) {
  for (const tr of document.querySelectorAll("tr.item")) tr.classList.toggle("selected", tr.dataset.item === it.item);
  const sorted = [...it.results].sort((a, b) => a.model.localeCompare(b.model) || a.strategy.localeCompare(b.strategy) || a.params.localeCompare(b.params) || a.budget - b.budget);
  $("#item-results tbody").replaceChildren(...sorted.map((r) => el("tr", { class: "result-row", "data-strategy": r.strategy, "data-budget": r.budget },
    el("td", { text: r.model }), el("td", { text: r.strategy, title: r.params }), el("td", { text: r.budget }),
    el("td", { text: r.answer ?? "–" }), el("td", { class: r.correct > 0 ? "right" : "wrong", text: r.correct > 0 ? "✓" : "✗" }),
    el("td", { text: r.completion_tokens }),
    el("td", {}, el("button", { class: "view", text: "view", onclick: (ev) => { selectRow(ev); openStored(storedRun.run, it, r); } }),
      el("button", { class: "add-compare", text: "compare", onclick: async () => addCompare(await fetchStored(storedRun.run, it, r), `${r.strategy} @${r.budget} · ${it.item}`) })))));
}

function selectRow(ev) {
  for (const tr of document.querySelectorAll("tr.result-row")) tr.classList.remove("selected");
  ev.target.closest("tr").classList.add("selected");
}

function fetchStored(run, it, r) {
  const q = new URLSearchParams({ run, item: it.item, model: r.model, strategy: r.strategy, params: r.params, budget: r.budget, task: it.task, seed: r.seed });
  return api(`/ui/api/trace?${q}`);
}

async function openStored(run, it, r) {
  const t = await fetchStored(run, it, r);
  UI.stored = t;
  renderResult($("#stored-result"), t, { compare: true, id: "stored", title: `${r.model} · ${r.strategy} · budget ${r.budget} · item ${it.item}` });
}

// -- compare ----------------------------------------------------------------------------------------------------

function addCompare(r, title) {
  UI.compare = [...UI.compare, { r, title }].slice(-2);
  $("#compare-count").textContent = `(${UI.compare.length})`;
  ["#compare-a", "#compare-b"].forEach((sel, i) => {
    const c = UI.compare[i];
    if (c) renderResult($(sel), c.r, { title: c.title, id: `compare-${i}` });
  });
  if (UI.compare.length === 2) showTab("compare");
}

// -- start ------------------------------------------------------------------------------------------------------

function hashParams() { return new URLSearchParams(location.hash.slice(1)); }

async function openFromHash() {
  const h = hashParams();
  if (!h.get("run")) return;
  showTab("stored");
  if (!storedRun || storedRun.run !== h.get("run")) await openRun(h.get("run"));
  const it = storedRun.items.find((x) => x.item === h.get("item"));
  if (!it) return;
  openItem(it);
  const r = h.get("strategy") && it.results.find((x) => x.strategy === h.get("strategy") && String(x.budget) === h.get("budget") &&
    (!h.get("model") || x.model === h.get("model")) && (!h.get("params") || x.params === h.get("params")));
  if (r) await openStored(storedRun.run, it, r);
}

async function start() {
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => showTab(b.dataset.tab));
  try {
    UI.config = await api("/ui/api/config");
  } catch (e) {
    $("#status").textContent = `error: ${e.message}`; $("#status").className = "status error"; return;
  }
  $("#model").textContent = UI.config.model;
  const sel = $("#strategy");
  sel.replaceChildren(...UI.config.strategies.map((s) => el("option", { value: s.name, text: s.name })));
  const dflt = UI.config.default_strategy.split("?");
  sel.value = dflt[0]; $("#params").value = dflt[1] || "";
  const help = () => {
    const s = UI.config.strategies.find((x) => x.name === sel.value);
    $("#strategy-help").textContent = s ? `${s.summary} Parameters: ${s.params.map((p) => `${p.name}=${JSON.stringify(p.default)}`).join(", ")}` : "";
  };
  sel.addEventListener("change", () => { $("#params").value = ""; help(); });
  help();
  $("#scorer").append(...UI.config.scorers.map((s) => el("option", { value: s.name, text: s.name, title: s.summary })));
  $("#ask").addEventListener("submit", runSearch);
  $("#stop").addEventListener("click", () => running && running.abort());
  for (const f of ["#f-wrong", "#f-changed", "#f-disagree"]) $(f).addEventListener("change", () => storedRun && drawItems());
  UI.renderResult = renderResult;
  await loadRuns().catch((e) => $("#pane-stored").prepend(el("p", { class: "status error", text: e.message })));
  window.addEventListener("hashchange", openFromHash);
  await openFromHash();
  UI.ready = true;
}

document.addEventListener("DOMContentLoaded", start);
