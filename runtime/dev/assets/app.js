// The Cairn console: a page over the client API (POST /api, docs/api.md)
// with live updates from GET /events. No build step, no framework.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const main = () => $("#main");
// Draws the page: children flattened, empty ones left out.
const mount = (...children) => main().replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
const PAGE = 25;
const state = { info: null, list: { cursors: [null], page: 0, filters: {} }, reload: null };

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(action, fields) {
  const r = await fetch("/api", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ v: 1, action, ...fields }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok || body.error) {
    const e = body.error || { code: "HTTP", message: r.statusText, status: r.status };
    const err = new Error(`${e.code} ${e.message}`);
    err.api = e;
    throw err;
  }
  return body;
}

function toast(text, error = false) {
  const t = h("div", { class: error ? "error" : "" }, text);
  $("#toast").append(t);
  setTimeout(() => t.remove(), error ? 9000 : 4000);
}

// A modal confirmation; resolves true only if the user confirms.
function confirmAction(title, text, body) {
  const d = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-body").textContent = body || "";
  $("#confirm-body").hidden = !body;
  d.returnValue = "";
  d.showModal();
  $("#confirm-no").focus();
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
  });
}

function parseJson(label, text) {
  const t = text.trim();
  if (t === "") return null;
  try { return JSON.parse(t); } catch (e) {
    throw new Error(`${label} is not valid JSON (${e.message}); example: {"name": "alice"}`);
  }
}

const pretty = (v) => JSON.stringify(v, null, 2);
const badge = (s) => h("span", { class: `badge ${s}`, "data-status": s }, s);
const when = (t) => (t ? t.replace("T", " ").replace("Z", " UTC") : "");
const link = (id) => h("a", { href: `#/x/${encodeURIComponent(id)}`, class: "mono" }, id);

function payload(summary, value, open = false) {
  if (value === undefined) return null;
  return h("details", { open }, h("summary", {}, summary), h("pre", {}, pretty(value)));
}

// ---- executions list -----------------------------------------------------

async function fetchListPage() {
  const f = state.list.filters;
  const req = { limit: PAGE };
  if (f.workflow) req.workflow = f.workflow;
  if (f.status) req.status = [f.status];
  let cursor = state.list.cursors[state.list.page];
  // An id prefix filters the API's pages here, reading on until a page is full.
  const rows = [];
  let next = null;
  for (let reads = 0; reads < 20; reads++) {
    const page = await api("list", cursor ? { ...req, cursor } : req);
    for (const e of page.executions) if (!f.prefix || e.id.startsWith(f.prefix)) rows.push(e);
    next = page.next_cursor || null;
    if (!f.prefix || rows.length >= PAGE || !next) break;
    cursor = next;
  }
  return { rows, next };
}

async function showList() {
  const f = state.list.filters;
  const m = main();
  const filters = h("form", { class: "filters", "aria-label": "Filter executions", onsubmit: (ev) => {
      ev.preventDefault();
      state.list.filters = {
        workflow: $("#f-workflow").value.trim(), status: $("#f-status").value, prefix: $("#f-prefix").value.trim(),
      };
      state.list.cursors = [null];
      state.list.page = 0;
      render();
    } },
    h("label", { for: "f-workflow" }, "Workflow", h("input", { id: "f-workflow", name: "workflow", value: f.workflow || "", placeholder: "any" })),
    h("label", { for: "f-status" }, "Status", h("select", { id: "f-status", name: "status" },
      ["", "running", "waiting", "completed", "failed", "cancelled", "parked"].map((s) =>
        h("option", { value: s, selected: (f.status || "") === s }, s || "any")))),
    h("label", { for: "f-prefix" }, "Id starts with", h("input", { id: "f-prefix", name: "prefix", value: f.prefix || "", placeholder: "order-" })),
    h("button", { type: "submit", class: "primary" }, "Apply"),
  );
  const { rows, next } = await fetchListPage();
  const table = rows.length === 0 ? h("p", { class: "empty" }, "No executions match.") :
    h("table", { id: "executions", "aria-label": "Executions" },
      h("thead", {}, h("tr", {}, ["Execution", "Workflow", "Status", "Run", "Updated", "Waiting on"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((e) => h("tr", { "data-id": e.id },
        h("td", {}, link(e.id)), h("td", {}, e.workflow), h("td", {}, badge(e.status)),
        h("td", {}, e.run), h("td", { class: "meta" }, when(e.updated_at)), h("td", {}, e.waiting_on || "")))));
  const pager = h("nav", { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", disabled: state.list.page === 0, onclick: () => { state.list.page--; render(); } }, "← Newer"),
    h("span", { class: "meta" }, `page ${state.list.page + 1}`),
    h("button", { type: "button", id: "next-page", disabled: !next, onclick: () => {
      state.list.cursors[state.list.page + 1] = next; state.list.page++; render(); } }, "Older →"));
  mount(h("h1", {}, "Executions"), filters, table, pager, startForm());
  state.reload = { relevant: () => true, refresh: () => render() };
}

function startForm() {
  if (state.info && state.info.read_only) return null;
  return h("form", { class: "action", id: "start-form", "aria-label": "Start an execution", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const req = { workflow: $("#s-workflow").value.trim() };
        if (!req.workflow) throw new Error("name the workflow to start");
        const id = $("#s-id").value.trim();
        if (id) req.id = id;
        req.input = parseJson("The input", $("#s-input").value);
        if (!(await confirmAction("Start an execution", `Start workflow ${req.workflow}${id ? " as " + id : ""}?`, pretty(req.input)))) return;
        const a = await api("start", req);
        toast(`${a.id}: ${a.outcome}`);
        location.hash = `#/x/${encodeURIComponent(a.id)}`;
      } catch (e) { toast(e.message, true); }
    } },
    h("h2", {}, "Start"),
    h("label", { for: "s-workflow" }, "Workflow", h("input", { id: "s-workflow", required: true, list: "s-workflows" })),
    workflowList(),
    h("label", { for: "s-id" }, "Execution id (optional)", h("input", { id: "s-id" })),
    h("label", { for: "s-input" }, "Input (JSON)", h("textarea", { id: "s-input" })),
    h("button", { type: "submit", class: "primary" }, "Start…"));
}

// The registered workflows, as suggestions for the start form.
function workflowList() {
  const list = h("datalist", { id: "s-workflows" });
  fetch("/console/components").then((r) => r.json()).then((r) => {
    const names = new Set((r.components || []).flatMap((c) => c.registered_for));
    list.replaceChildren(...[...names].sort().map((n) => h("option", { value: n })));
  }).catch(() => {});
  return list;
}

// ---- one execution ---------------------------------------------------------

function entryName(e) {
  if (e.name) return e.name;
  if (e.kind === "started") return e.workflow;
  if (e.kind === "child-started" || e.kind === "child-completed") return e.workflow || e.child_id;
  if (e.kind.startsWith("timer")) return `${(e.duration_ms / 1000).toFixed(1)} s`;
  return "";
}

function timeline(entries, parked) {
  let compensating = false;
  let prev = null;
  return h("ol", { class: "timeline", id: "timeline", "aria-label": "Journal" }, entries.map((e) => {
    const at = Date.parse(e.at);
    const took = prev === null ? null : at - prev;
    prev = at;
    const failedHere = e.kind === "activity-completed" && e.result && e.result.Err;
    const isComp = compensating && e.kind === "activity-completed";
    if (failedHere || e.kind === "cancel-requested") compensating = true;
    const parkedHere = parked && parked.index === e.index;
    const payloads = [];
    for (const k of ["input", "result", "payload", "output", "failure", "reason"]) {
      if (e[k] !== undefined) payloads.push(payload(k, e[k]));
    }
    return h("li", { class: `k-${e.kind}${failedHere ? " err" : ""}${parkedHere ? " parked-at" : ""}`, "data-kind": e.kind, "data-index": e.index },
      h("div", { class: "entry-head" },
        h("span", { class: "idx" }, `#${e.index}`),
        h("span", { class: "kind" }, e.kind),
        h("span", {}, entryName(e)),
        e.seq !== undefined ? h("span", { class: "meta" }, `seq ${e.seq}`) : null,
        e.attempts !== undefined ? h("span", { class: "meta" }, `attempt ${e.attempts}`) : null,
        took !== null ? h("span", { class: "meta", title: "time since the previous entry" }, `+${took} ms`) : null,
        isComp ? h("span", { class: "compensation" }, "compensation") : null,
        failedHere ? h("span", { class: "badge failed" }, "failed") : null,
        e.child_id ? h("span", {}, "child ", link(e.child_id)) : null,
        e.fire_at ? h("span", { class: "meta" }, `fires ${when(new Date(e.fire_at).toISOString())}`) : null,
        h("span", { class: "meta" }, when(e.at))),
      parkedHere ? h("p", { class: "banner park" }, `The code diverged here (${parked.code}): the journal has ${parked.expected}; the code ${parked.got}.`) : null,
      payloads);
  }));
}

function failureCode(f) {
  const m = /CRN\d{3}/.exec(f.message || "");
  return m ? m[0] : f.kind;
}

async function showExecution(id, run) {
  const d = await api("describe", { id });
  const hist = [];
  let cursor = null;
  let page;
  do {
    page = await api("history", { id, limit: 1000, ...(run ? { run } : {}), ...(cursor ? { cursor } : {}) });
    hist.push(...page.entries);
    cursor = page.next_cursor;
  } while (cursor);
  const started = hist.find((e) => e.kind === "started");
  const facts = h("dl", { class: "facts" },
    h("dt", {}, "Status"), h("dd", { id: "status" }, badge(d.status)),
    h("dt", {}, "Workflow"), h("dd", {}, d.workflow),
    h("dt", {}, "Component"), h("dd", { class: "mono" }, h("a", { href: "#/components" }, d.component.slice(0, 12))),
    h("dt", {}, "Run"), h("dd", {}, page.runs > 1 ? h("select", { "aria-label": "Run", onchange: (ev) => showExecution(id, Number(ev.target.value)) },
      Array.from({ length: page.runs }, (_, i) => h("option", { value: i + 1, selected: i + 1 === page.run }, `run ${i + 1}`))) : String(d.run)),
    h("dt", {}, "Created"), h("dd", {}, when(d.created_at)),
    h("dt", {}, "Updated"), h("dd", {}, when(d.updated_at)),
    h("dt", {}, "Inbox"), h("dd", {}, `${d.inbox} item(s) not yet taken`),
    started && started.parent ? [h("dt", {}, "Parent"), h("dd", {}, link(started.parent.id))] : null);
  const banners = [];
  if (d.status === "waiting" && d.waiting_on)
    banners.push(h("p", { class: "banner wait", id: "waiting" }, `Waits for ${d.waiting_on}`, d.wake_at ? ` until ${when(d.wake_at)}` : "", "."));
  if (d.failure)
    banners.push(h("div", { class: "banner failure", id: "failure" }, h("strong", {}, `${failureCode(d.failure)}: `), d.failure.message,
      d.failure.details !== undefined ? payload("details", d.failure.details) : null));
  if (d.parked)
    banners.push(h("div", { class: "banner park", id: "parked" }, h("strong", {}, `Parked (${d.parked.code}) at entry #${d.parked.index}: `),
      `the journal recorded ${d.parked.expected}; the code ${d.parked.got}. Its journal is untouched: `,
      h("code", {}, `cairn resume ${id} --component NEW.wasm`), " replays it against another build."));
  if (d.status === "completed")
    banners.push(h("div", { class: "banner ok", id: "output" }, h("strong", {}, "Output"), h("pre", {}, pretty(d.output))));
  mount(
    h("p", {}, h("a", { href: "#/" }, "← Executions")),
    h("h1", {}, id), facts, banners,
    actions(d),
    h("h2", {}, `Journal (${hist.length} entries${page.runs > 1 ? `, run ${page.run} of ${page.runs}` : ""})`),
    timeline(hist, d.parked));
  state.reload = { relevant: (c) => c.id === id || c.what === "reload", refresh: () => showExecution(id, run) };
}

function actions(d) {
  const running = !["completed", "failed", "cancelled"].includes(d.status);
  const ro = state.info && state.info.read_only;
  const id = d.id;
  const signal = h("form", { id: "signal-form", "aria-label": "Send a signal", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const name = $("#sig-name").value.trim();
        if (!name) throw new Error("name the signal");
        const payload = parseJson("The payload", $("#sig-payload").value);
        if (!(await confirmAction("Send a signal", `Send signal '${name}' to ${id}?`, pretty(payload)))) return;
        const a = await api("signal", { id, name, payload });
        toast(`signal '${name}' delivered (${a.delivered})`);
        ev.target.reset();
      } catch (e) { toast(e.message, true); }
    } },
    h("fieldset", {}, h("legend", {}, "Signal"),
      h("label", { for: "sig-name" }, "Name", h("input", { id: "sig-name" })),
      h("label", { for: "sig-payload" }, "Payload (JSON)", h("textarea", { id: "sig-payload" })),
      h("button", { type: "submit", id: "sig-send" }, "Send…")));
  const query = h("form", { id: "query-form", "aria-label": "Ask a query", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const name = $("#q-name").value.trim();
        if (!name) throw new Error("name the query");
        const a = await api("query", { id, name, args: parseJson("The arguments", $("#q-args").value) });
        $("#q-answer").textContent = pretty(a.failure ? { failure: a.failure } : a.answer);
      } catch (e) { $("#q-answer").textContent = e.message; }
    } },
    h("fieldset", {}, h("legend", {}, "Query"),
      h("label", { for: "q-name" }, "Name", h("input", { id: "q-name" })),
      h("label", { for: "q-args" }, "Arguments (JSON)", h("textarea", { id: "q-args" })),
      h("button", { type: "submit" }, "Ask"),
      h("pre", { id: "q-answer", "aria-live": "polite" })));
  const cancel = h("form", { id: "cancel-form", "aria-label": "Cancel the execution", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const reason = $("#c-reason").value.trim() || "cancelled from the console";
        if (!(await confirmAction("Cancel the execution", `Cancel ${id}? Its compensations run.`, reason))) return;
        await api("cancel", { id, reason });
        toast(`cancel requested for ${id}`);
        ev.target.reset();
      } catch (e) { toast(e.message, true); }
    } },
    h("fieldset", {}, h("legend", {}, "Cancel"),
      h("label", { for: "c-reason" }, "Reason", h("input", { id: "c-reason" })),
      h("button", { type: "submit", class: "danger", id: "c-send" }, "Cancel execution…")));
  if (!running) return null;
  return h("section", { "aria-label": "Actions" }, h("h2", {}, "Actions"),
    h("div", { class: "actions" }, ro ? null : signal, query, ro ? null : cancel));
}

// ---- components ------------------------------------------------------------

async function showComponents() {
  const r = await fetch("/console/components").then((x) => x.json());
  if (r.error) throw new Error(`${r.error.code} ${r.error.message}`);
  const rows = r.components.map((c) => h("tr", { "data-hash": c.hash },
    h("td", { class: "mono" }, c.hash),
    h("td", {}, `${(c.size / 1024).toFixed(0)} KiB`),
    h("td", {}, (c.holds.workflows || []).join(", ")),
    h("td", {}, (c.holds.activities || []).join(", ")),
    h("td", {}, c.registered_for.join(", ") || "—"),
    h("td", {}, String(c.pinned)),
    h("td", {}, h("button", { type: "button", onclick: () => replayCheck(c.hash) }, "Replay check"))));
  mount(h("h1", {}, "Components"),
    h("table", { "aria-label": "Components" },
      h("thead", {}, h("tr", {}, ["Hash", "Size", "Workflows", "Activities", "Registered for", "Unfinished pinned", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)),
    r.missing.length ? h("p", { class: "banner failure" }, `Needed but not stored: ${r.missing.map((m) => m.hash.slice(0, 12)).join(", ")}`) : null,
    h("section", { id: "replay", "aria-live": "polite" }));
  state.reload = null;
}

async function replayCheck(hash) {
  const out = $("#replay");
  out.replaceChildren(h("p", {}, "Replaying…"));
  const r = await fetch("/console/replay-check", { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ component: hash, sample: 20 }) }).then((x) => x.json());
  if (r.error) { out.replaceChildren(h("p", { class: "banner failure" }, r.error.message)); return; }
  out.replaceChildren(h("h2", {}, `Replay check of ${hash.slice(0, 12)}`),
    r.results.length === 0 ? h("p", { class: "empty" }, "No stored executions of its workflows.") :
    h("table", { "aria-label": "Replay check" },
      h("thead", {}, h("tr", {}, ["Execution", "Workflow", "Verdict", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, r.results.map((x) => h("tr", {}, h("td", {}, link(x.id)), h("td", {}, x.workflow),
        h("td", {}, h("span", { class: `badge ${x.verdict === "compatible" ? "completed" : "failed"}` }, x.verdict)),
        h("td", { class: "mono" }, JSON.stringify(x.detail)))))));
}

// ---- routing and live updates ---------------------------------------------

async function render() {
  const hash = location.hash || "#/";
  for (const a of document.querySelectorAll(".top nav a")) a.removeAttribute("aria-current");
  try {
    if (hash.startsWith("#/x/")) {
      $("#nav-executions").setAttribute("aria-current", "page");
      await showExecution(decodeURIComponent(hash.slice(4)));
    } else if (hash === "#/components") {
      $("#nav-components").setAttribute("aria-current", "page");
      await showComponents();
    } else {
      $("#nav-executions").setAttribute("aria-current", "page");
      await showList();
    }
    document.body.dataset.ready = hash;
  } catch (e) {
    mount(h("h1", {}, "Error"), h("p", { class: "banner failure", role: "alert" }, e.message));
    document.body.dataset.ready = hash;
  }
}

let pending = null;
// Someone typing in a form: do not redraw under them.
const editing = () => { const a = document.activeElement; return a && ["INPUT", "TEXTAREA", "SELECT"].includes(a.tagName) && a.value !== ""; };
function live() {
  const es = new EventSource("/events");
  es.addEventListener("open", () => { $("#live").textContent = "live"; $("#live").classList.add("on"); });
  es.addEventListener("error", () => { $("#live").textContent = "reconnecting…"; $("#live").classList.remove("on"); });
  const onChange = (change) => {
    const w = state.reload;
    if (!w || !w.relevant(change)) return;
    // Several changes in a burst: one refresh, keeping the focus where it was.
    if (pending) return;
    const later = () => {
      pending = null;
      if (state.reload !== w) return;
      if (editing() || document.querySelector("dialog[open]")) pending = setTimeout(later, 1000);
      else w.refresh();
    };
    pending = setTimeout(later, 250);
  };
  es.addEventListener("change", (ev) => onChange(JSON.parse(ev.data)));
  es.addEventListener("reload", () => onChange({ id: "", what: "reload" }));
}

window.addEventListener("hashchange", () => { main().focus(); render(); });
fetch("/console/info").then((r) => r.json()).then((info) => {
  state.info = info;
  $("#store").textContent = `${info.store}${info.read_only ? " (read-only)" : ""}`;
}).finally(() => { render(); live(); });
