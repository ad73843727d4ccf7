// docpipe console: a hash-routed page over the JSON API. The API key stays in this tab's
// sessionStorage and goes out only as the x-api-key header. Every text from the API enters
// the page through textContent or an attribute, never as markup.
"use strict";

(() => {
  const KEY = "docpipe.apiKey";
  const SVG = "http://www.w3.org/2000/svg";
  const FINAL = ["completed", "needs_review", "failed", "cancelled"];
  const STATUSES = ["queued", "ingesting", "ocr", "extracting", "verifying", "completed",
    "needs_review", "failed", "cancelled"];
  // Invoice fields a reviewer may have to fill in although the machine found none.
  const INVOICE_FIELDS = ["invoice_number", "issue_date", "due_date", "currency", "seller_name",
    "buyer_name", "net_total", "tax_total", "gross_total", "due_total"];
  const LINE_KEYS = ["description", "quantity", "unit_price", "net_amount", "tax_rate"];
  // Pages of unfinished jobs refresh themselves; well inside the default 60 requests a minute.
  const POLL_MS = 2000;
  const DRY_RUN_MS = 350;

  const main = () => document.getElementById("main");
  let view = 0; // bumps on each navigation; async work of an old view drops its result
  let machine = null; // GET /api/v1/statemachine, once per sign-in
  let pageImage = null; // the object URL of the page image shown, revoked when replaced

  // ---- DOM helpers -------------------------------------------------------------------
  function build(doc, ns, tag, attrs, children) {
    const el = ns ? doc.createElementNS(ns, tag) : doc.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else if (k === "value" && !ns) el.value = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : doc.createTextNode(String(c)));
    }
    return el;
  }
  const h = (tag, attrs, ...children) => build(document, null, tag, attrs, children);
  const s = (tag, attrs, ...children) => build(document, SVG, tag, attrs, children);

  function show(...nodes) {
    main().replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
  }

  function toast(text, bad) {
    const t = document.getElementById("toast");
    t.textContent = text;
    t.className = bad ? "bad" : "";
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  const fmtTime = (iso) => (iso ? String(iso).replace("T", " ").replace(/\.\d+/, "") : "");
  const badge = (status) => h("span", { class: `status ${status}`, text: status });
  const pretty = (text) => {
    if (text === null || text === undefined) return "";
    if (typeof text !== "string") return JSON.stringify(text, null, 2);
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
  };
  const enc = encodeURIComponent;

  // ---- API ---------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, error) {
      super((error && error.message) || `HTTP ${status}`);
      this.status = status;
      this.code = (error && error.code) || "";
      this.details = (error && error.details) || null;
    }
  }

  async function call(path, { method = "GET", body, raw = false } = {}) {
    const headers = { "x-api-key": sessionStorage.getItem(KEY) || "" };
    if (body !== undefined) headers["content-type"] = "application/json";
    const resp = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", cache: "no-store", redirect: "error",
    });
    if (resp.status === 401) {
      signOut("The key was refused; sign in again.");
      throw new ApiError(401, { code: "UNAUTHORIZED", message: "signed out" });
    }
    if (raw && resp.ok) return resp;
    const type = resp.headers.get("content-type") || "";
    const json = type.includes("json") ? await resp.json() : null;
    if (!resp.ok || !json || json.status !== "success") {
      throw new ApiError(resp.status, json && json.error);
    }
    return json.data;
  }

  /// A binary answer (page image, CSV) as an object URL; null when there is none.
  async function objectUrl(path) {
    try {
      const resp = await call(path, { raw: true });
      const url = URL.createObjectURL(await resp.blob());
      return url;
    } catch (e) {
      if (e.status === 404) return null;
      throw e;
    }
  }

  async function download(path, filename) {
    try {
      const url = await objectUrl(path);
      if (!url) { toast("Nothing to download yet.", true); return; }
      const a = h("a", { href: url, download: filename });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      toast(`Download failed: ${e.message}`, true);
    }
  }

  function showPageImage(img, url) {
    if (pageImage) URL.revokeObjectURL(pageImage);
    pageImage = url;
    if (img && url) img.src = url;
  }

  const stateMachine = async () => (machine = machine || await call("/api/v1/statemachine"));

  // ---- Sign-in -----------------------------------------------------------------------
  function signOut(message) {
    sessionStorage.removeItem(KEY);
    machine = null;
    showPageImage(null, null);
    Object.assign(listFilter, { status: "", kind: "", q: "" });
    // Without a hashchange event, whose render would drop the message.
    history.replaceState(null, "", "#/");
    render(message);
  }

  function signIn(message) {
    const input = h("input", { id: "api-key", type: "password", autocomplete: "off",
      spellcheck: "false", required: true, "aria-describedby": "signin-msg" });
    const msg = h("p", { id: "signin-msg", class: message ? "error" : "muted",
      text: message || "Keys are made with `docpipe keys create NAME`. The key stays in this tab." });
    const form = h("form", { id: "signin", class: "panel signin", onsubmit: async (ev) => {
      ev.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY, key);
      try {
        await call("/api/v1/jobs?limit=1");
        render();
      } catch (e) {
        if (e.status !== 401) { msg.textContent = e.message; msg.className = "error"; }
      }
    } },
    h("h1", { text: "Sign in" }),
    h("label", { for: "api-key", text: "API key" }), input,
    h("button", { type: "submit", class: "primary", text: "Sign in" }), msg);
    show(form);
    input.focus();
  }

  // ---- Executions list ---------------------------------------------------------------
  const listFilter = { status: "", kind: "", q: "" };

  async function executionsList(token) {
    const status = h("select", { id: "filter-status", "aria-label": "Status" },
      h("option", { value: "", text: "any status" }),
      STATUSES.map((st) => h("option", { value: st, text: st })));
    status.value = listFilter.status;
    const kind = h("select", { id: "filter-kind", "aria-label": "Kind" },
      h("option", { value: "", text: "any kind" }),
      h("option", { value: "invoice", text: "invoice" }),
      h("option", { value: "blueprint", text: "blueprint" }));
    kind.value = listFilter.kind;
    const search = h("input", { id: "search", type: "search", placeholder: "Search id or file name",
      value: listFilter.q, "aria-label": "Search" });
    const body = h("tbody");
    const more = h("button", { type: "button", id: "more", text: "Load more", hidden: true });
    const table = h("table", { id: "jobs" },
      h("thead", {}, h("tr", {}, ["Job", "Status", "Kind", "File", "Created", "Updated"]
        .map((t) => h("th", { text: t })))), body);
    const empty = h("div", { class: "empty", id: "no-jobs", hidden: true, text: "No jobs." });
    let jobs = [];
    let cursor = null;

    const paint = () => {
      const q = listFilter.q.toLowerCase();
      const shown = jobs.filter((j) => !q || j.job_id.toLowerCase().includes(q)
        || (j.filename || "").toLowerCase().includes(q));
      body.replaceChildren(...shown.map((j) => h("tr", {
        class: "link", tabindex: 0, "data-job": j.job_id,
        onclick: () => { location.hash = `#/executions/${enc(j.job_id)}`; },
        onkeydown: (ev) => { if (ev.key === "Enter") location.hash = `#/executions/${enc(j.job_id)}`; },
      }, h("td", { class: "id", text: j.job_id }), h("td", {}, badge(j.status)),
      h("td", { text: j.kind }), h("td", { text: j.filename }),
      h("td", { class: "time", text: fmtTime(j.created_at) }), h("td", { class: "time", text: fmtTime(j.updated_at) }))));
      empty.hidden = shown.length > 0;
      more.hidden = !cursor;
    };
    const load = async (append) => {
      const params = new URLSearchParams({ limit: "100" });
      if (listFilter.status) params.set("status", listFilter.status);
      if (listFilter.kind) params.set("kind", listFilter.kind);
      if (append && cursor) params.set("cursor", cursor);
      const data = await call(`/api/v1/jobs?${params}`);
      if (token !== view) return;
      jobs = append ? jobs.concat(data.jobs) : data.jobs;
      cursor = data.next_cursor || null;
      paint();
    };
    status.addEventListener("change", () => { listFilter.status = status.value; load(false); });
    kind.addEventListener("change", () => { listFilter.kind = kind.value; load(false); });
    search.addEventListener("input", () => { listFilter.q = search.value.trim(); paint(); });
    more.addEventListener("click", () => load(true));
    show(h("h1", { text: "Executions" }),
      h("div", { class: "toolbar" }, status, kind, search, h("span", { class: "grow" }),
        h("button", { type: "button", text: "Refresh", onclick: () => load(false) })),
      table, empty, more);
    await load(false);
  }

  // ---- Execution page ----------------------------------------------------------------
  const detailsOf = (ev) => {
    const key = Object.keys(ev).find((k) => k.endsWith("EventDetails"));
    return key ? ev[key] : {};
  };

  /// What each state did in one execution's history.
  function analyse(execution) {
    const states = {};
    const order = [];
    const rows = [];
    let current = null;
    const st = (name) => (states[name] = states[name] || {
      entered: 0, exited: 0, scheduled: 0, lastFailed: false, input: null, output: null, error: null });
    for (const ev of execution.events || []) {
      const d = detailsOf(ev);
      const type = ev.type || "";
      if (type.endsWith("StateEntered")) {
        current = d.name;
        const x = st(current);
        x.entered += 1;
        x.input = d.input;
        order.push(current);
      } else if (type.endsWith("StateExited")) {
        const x = st(d.name);
        x.exited += 1;
        x.output = d.output;
      } else if (current && (type === "TaskScheduled" || type === "LambdaFunctionScheduled")) {
        st(current).scheduled += 1;
        st(current).lastFailed = false;
      } else if (current && /^(Task|LambdaFunction)(Failed|TimedOut|StartFailed|SubmitFailed)$/.test(type)) {
        Object.assign(st(current), { lastFailed: true, error: d.error || type, cause: d.cause || "" });
      } else if (current && (type === "TaskSucceeded" || type === "LambdaFunctionSucceeded")) {
        st(current).lastFailed = false;
      }
      const stateName = d.name || (type.startsWith("Execution") ? "" : current || "");
      rows.push({ ev, state: stateName, detail: d });
    }
    const running = execution.status === "RUNNING";
    const failedStatus = ["FAILED", "TIMED_OUT", "ABORTED"].includes(execution.status);
    let failed = Object.keys(states).filter((n) => states[n].lastFailed);
    if (failedStatus && failed.length === 0 && current) failed = [current];
    const taken = new Set();
    for (let i = 1; i < order.length; i += 1) taken.add(`${order[i - 1]}\u0000${order[i]}`);
    return { states, rows, failed, taken, running };
  }

  function classOf(name, a) {
    const x = a.states[name];
    if (a.failed.includes(name)) return "failed";
    if (x && a.running && x.entered > x.exited) return "running";
    return x ? "visited" : "";
  }

  function drawGraph(graph, a, onSelect) {
    const byId = Object.fromEntries(graph.nodes.map((n) => [n.id, n]));
    const rightmost = (n) => !graph.nodes.some((m) => m.y === n.y && m.x > n.x);
    const pathOf = (e) => {
      const f = byId[e.from];
      const t = byId[e.to];
      if (e.kind === "catch") {
        // Error paths run down the right margin, clear of the boxes between.
        const [sx, sy] = [f.x + f.width, f.y + f.height / 2];
        const xr = graph.width + 20;
        if (rightmost(t)) {
          const [ex, ey] = [t.x + t.width, t.y + t.height / 2];
          return `M${sx},${sy} C${xr},${sy} ${xr},${ey} ${ex},${ey}`;
        }
        const [ex, ey] = [t.x + t.width / 2, t.y];
        return `M${sx},${sy} C${xr},${sy} ${xr},${ey - 30} ${ex},${ey}`;
      }
      if (t.y > f.y) {
        const [sx, sy, ex, ey] = [f.x + f.width / 2, f.y + f.height, t.x + t.width / 2, t.y];
        const dy = (ey - sy) / 2;
        return `M${sx},${sy} C${sx},${sy + dy} ${ex},${ey - dy} ${ex},${ey}`;
      }
      // Back (or sideways) edges leave and enter on the right, bowing outwards.
      const [sx, sy, ex, ey] = [f.x + f.width, f.y + f.height / 2, t.x + t.width, t.y + t.height / 2];
      return `M${sx},${sy} C${sx + 60},${sy} ${ex + 60},${ey} ${ex},${ey}`;
    };
    const edges = graph.edges
      .map((e) => ({ e, taken: a.taken.has(`${e.from}\u0000${e.to}`) }))
      .sort((x, y) => Number(x.taken) - Number(y.taken))
      .map(({ e, taken }) => s("path", {
        class: `edge ${e.kind}${taken ? " taken" : ""}`, d: pathOf(e), "marker-end": "url(#arrow)",
        "data-from": e.from, "data-to": e.to, "data-kind": e.kind,
      }, s("title", { text: `${e.from} \u2192 ${e.to} (${e.kind})` })));
    const nodes = graph.nodes.map((n) => {
      const x = a.states[n.id];
      const retries = x ? Math.max(0, x.scheduled - 1) : 0;
      const cls = classOf(n.id, a);
      const select = () => onSelect(n.id);
      return s("g", {
        class: `state ${n.type} ${cls}`.trim(), "data-state": n.id, tabindex: 0, role: "button",
        "aria-label": `${n.id} (${n.type})${cls ? `, ${cls}` : ""}${retries ? `, retries ${retries}` : ""}`,
        onclick: select, onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(); } },
      },
      s("title", { text: `${n.id} (${n.type})` }),
      s("rect", { x: n.x, y: n.y, width: n.width, height: n.height, rx: n.type === "Choice" ? 16 : 5 }),
      s("text", { x: n.x + n.width / 2, y: n.y + n.height / 2, text: n.id }),
      retries > 0 && s("g", { class: "badge", "data-retries": retries },
        s("rect", { x: n.x + n.width - 58, y: n.y - 9, width: 62, height: 16, rx: 8 }),
        s("text", { x: n.x + n.width - 27, y: n.y - 1, text: `retries: ${retries}` })));
    });
    const defs = s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z" })));
    return s("svg", { class: "graph", id: "graph", width: graph.width + 60, height: graph.height,
      viewBox: `0 0 ${graph.width + 60} ${graph.height}`, role: "img",
      "aria-label": "State machine of this execution" }, defs, edges, nodes);
  }

  function stateDetail(name, a, graph) {
    const node = graph.nodes.find((n) => n.id === name);
    const x = a.states[name];
    const cls = classOf(name, a) || "not entered";
    return h("div", { id: "state-detail", class: "panel" },
      h("h2", { text: name }),
      h("dl", { class: "kv" },
        h("dt", { text: "type" }), h("dd", { text: node ? node.type : "" }),
        h("dt", { text: "state" }), h("dd", { id: "state-status", text: cls }),
        x && h("dt", { text: "entered" }), x && h("dd", { text: String(x.entered) }),
        x && x.scheduled > 1 && h("dt", { text: "retries" }),
        x && x.scheduled > 1 && h("dd", { text: String(x.scheduled - 1) })),
      x && x.error && [h("h2", { text: "Error" }), h("pre", { class: "error", text: `${x.error}\n${pretty(x.cause)}` })],
      h("h2", { text: "Input" }), h("pre", { id: "state-input", text: x ? pretty(x.input) : "(not entered)" }),
      h("h2", { text: "Output" }), h("pre", { id: "state-output", text: x && x.output !== null ? pretty(x.output) : "(none)" }));
  }

  function eventsTable(a) {
    return h("table", { id: "events" },
      h("thead", {}, h("tr", {}, ["#", "Type", "State", "Time", "Detail"].map((t) => h("th", { text: t })))),
      h("tbody", {}, a.rows.map(({ ev, state, detail }) => h("tr", { "data-type": ev.type },
        h("td", { text: String(ev.id) }), h("td", { text: ev.type }), h("td", { text: state }),
        h("td", { class: "time", text: fmtTime(ev.timestamp) }),
        h("td", { class: "mono", text: detail.error ? `${detail.error}: ${detail.cause || ""}` : "" })))));
  }

  async function executionPage(token, jobId) {
    show(h("p", { class: "muted", text: "Loading\u2026" }));
    let job;
    let executions;
    let sm;
    try {
      [job, sm] = await Promise.all([call(`/api/v1/jobs/${enc(jobId)}`), stateMachine()]);
      executions = (await call(`/api/v1/jobs/${enc(jobId)}/executions`)).executions || [];
    } catch (e) {
      if (token === view) show(h("h1", { text: jobId }), h("p", { class: "error", text: e.message }));
      return;
    }
    if (token !== view) return;
    const head = h("div", { class: "toolbar" },
      h("h1", { class: "mono", text: jobId }), badge(job.status),
      h("a", { href: `#/jobs/${enc(jobId)}`, id: "job-link", text: "Job and result" }),
      job.status === "needs_review" && h("a", { href: `#/reviews/${enc(jobId)}`, text: "Review" }));
    if (executions.length === 0) {
      show(head, h("p", { class: "empty", text: "No execution recorded yet." }));
      return;
    }
    let index = executions.length - 1;
    let selected = null;
    let poll = null;
    const picker = h("select", { id: "execution", "aria-label": "Execution" },
      executions.map((x, i) => h("option", { value: i, text: `${x.name} \u2014 ${x.status} \u2014 ${fmtTime(x.started_at)}` })));
    picker.value = String(index);
    const area = h("div");
    const paint = () => {
      const x = executions[index];
      const a = analyse(x);
      selected = selected || a.failed[0] || Object.keys(a.states).pop() || sm.graph.nodes[0].id;
      const onSelect = (name) => { selected = name; paint(); };
      const svg = drawGraph(sm.graph, a, onSelect);
      svg.querySelector(`g.state[data-state="${CSS.escape(selected)}"]`)?.classList.add("selected");
      area.replaceChildren(
        h("dl", { class: "kv panel" },
          h("dt", { text: "execution" }), h("dd", { class: "mono", text: x.name }),
          h("dt", { text: "status" }), h("dd", { id: "execution-status" }, badge(x.status)),
          h("dt", { text: "started" }), h("dd", { text: fmtTime(x.started_at) }),
          h("dt", { text: "stopped" }), h("dd", { text: fmtTime(x.stopped_at) }),
          x.error && h("dt", { text: "error" }), x.error && h("dd", { class: "error", text: `${x.error} ${x.cause || ""}` })),
        h("div", { class: "legend" },
          h("span", {}, h("i", { class: "l-visited" }), "path taken"),
          h("span", {}, h("i", { class: "l-failed" }), "failed here"),
          h("span", {}, h("i", { class: "l-running" }), "running / waiting"),
          h("span", {}, h("i", { class: "l-choice" }), "choice / default"),
          h("span", {}, h("i", { class: "l-catch" }), "catch")),
        h("div", { class: "cols" }, h("div", { class: "panel graph-wrap" }, svg), stateDetail(selected, a, sm.graph)),
        h("h2", { text: "Event history" }), eventsTable(a));
      // One refresh pending at a time, however often the page is repainted meanwhile.
      clearTimeout(poll);
      if (a.running) {
        poll = setTimeout(async () => {
          if (token !== view) return;
          try {
            const fresh = (await call(`/api/v1/jobs/${enc(jobId)}/executions`)).executions || [];
            if (token !== view) return;
            executions = fresh;
            paint();
          } catch { /* shown on the next navigation */ }
        }, POLL_MS);
      }
    };
    picker.addEventListener("change", () => { index = Number(picker.value); selected = null; paint(); });
    show(head, executions.length > 1 ? h("div", { class: "toolbar" }, h("label", { for: "execution", text: "Execution" }), picker) : null, area);
    paint();
  }

  // ---- Job page ----------------------------------------------------------------------
  /// The result's tables; `machine` (the pipeline's own version, after a correction) adds
  /// what the machine had read where a reviewer changed it.
  function resultTables(result, machine) {
    const out = [];
    const r = result.review;
    if (r) {
      out.push(h("h2", { text: "Review" }), h("dl", { class: "kv panel", id: "result-review" },
        h("dt", { text: "by" }), h("dd", { text: r.by }),
        h("dt", { text: "action" }), h("dd", { text: r.action }),
        h("dt", { text: "at" }), h("dd", { text: fmtTime(r.at) }),
        (r.changed || []).length > 0 && [h("dt", { text: "changed" }), h("dd", { text: r.changed.join(", ") })],
        r.comment && [h("dt", { text: "comment" }), h("dd", { text: r.comment })],
        (r.failed_checks || []).length > 0 && [h("dt", { text: "saved despite" }),
          h("dd", { class: "error", text: r.failed_checks.join(", ") })]));
    }
    const fields = Object.entries(result.fields || {});
    const valueOf = (f) => (f && f.value !== null && f.value !== undefined ? String(f.value) : "");
    const before = (name) => {
      if (!machine) return null;
      const was = valueOf((machine.fields || {})[name]);
      return was === valueOf(result.fields[name]) ? "" : was || "(none)";
    };
    if (fields.length) {
      out.push(h("h2", { text: "Fields" }), h("table", { id: "result-fields" },
        h("thead", {}, h("tr", {}, ["Field", "Value", "Confidence", "Page", machine && "Machine read"]
          .filter(Boolean).map((t) => h("th", { text: t })))),
        h("tbody", {}, fields.map(([name, f]) => h("tr", { "data-field": name },
          h("td", { text: name }), h("td", { class: "value", text: valueOf(f) }),
          h("td", { text: f && f.confidence !== undefined ? Number(f.confidence).toFixed(2) : "" }),
          h("td", { text: f && f.page ? String(f.page) : "" }),
          machine && h("td", { class: "machine muted", text: before(name) }))))));
    }
    if ((result.lines || []).length) {
      out.push(h("h2", { text: "Line items" }), h("table", {},
        h("thead", {}, h("tr", {}, LINE_KEYS.map((t) => h("th", { text: t })))),
        h("tbody", {}, result.lines.map((l) => h("tr", {}, LINE_KEYS.map((k) => h("td", { text: l[k] ?? "" })))))));
    }
    if ((result.rooms || []).length) {
      out.push(h("h2", { text: "Rooms" }), h("pre", { text: pretty(result.rooms) }));
    }
    if ((result.checks || []).length) out.push(h("h2", { text: "Checks" }), checksList(result.checks));
    if ((result.review_reasons || []).length) {
      out.push(h("h2", { text: "Review reasons" }), h("ul", { class: "reasons" }, result.review_reasons.map((r) => h("li", { text: r }))));
    }
    return out;
  }

  function checksList(checks, id) {
    return h("ul", { class: "checks", id }, (checks || []).map((c) => h("li", {
      class: c.passed ? "pass" : "fail", "data-check": c.name }, `${c.name}: ${c.detail || ""}`)));
  }

  function costPanel(job) {
    const c = job.cost || {};
    const rows = [["pages", c.pages ?? job.pages], ["OCR pages", c.ocr_pages],
      ["model input tokens", c.model_input_tokens], ["model output tokens", c.model_output_tokens]];
    const ms = c.stage_ms || job.stage_timings || {};
    const usd = job.cost_usd;
    const dollars = (v) => `$${Number(v).toFixed(6)}`;
    const priced = usd ? [[h("dt", { text: `cost (USD, ${usd.host})` }),
      h("dd", { id: "cost-usd", text: dollars(usd.total_usd), title: `prices of ${usd.prices_as_of}` })]] : [];
    const perStage = {};
    for (const l of (usd && usd.lines) || []) perStage[l.stage] = (perStage[l.stage] || 0) + Number(l.usd);
    return h("dl", { class: "kv panel", id: "cost" }, priced,
      rows.filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })]),
      Object.entries(ms).map(([k, v]) => [h("dt", { text: `${k} ms` }), h("dd", { text: String(v) })]),
      Object.entries(perStage).map(([k, v]) => [h("dt", { text: `${k} USD` }), h("dd", { text: dollars(v) })]));
  }

  function historyTable(job) {
    return h("table", { id: "history" },
      h("thead", {}, h("tr", {}, ["Status", "At", "Change"].map((t) => h("th", { text: t })))),
      h("tbody", {}, (job.status_history || []).map((c) => h("tr", { "data-status": c.status, "data-action": c.action || "" },
        h("td", {}, badge(c.status)), h("td", { class: "time", text: fmtTime(c.at) }),
        h("td", { text: c.action ? [`${c.by || "?"}: ${c.action}`,
          (c.fields || []).length ? `(${c.fields.join(", ")})` : "",
          c.comment ? `\u2014 ${c.comment}` : ""].filter(Boolean).join(" ") : "" })))));
  }

  async function jobPage(token, jobId) {
    let job;
    let result = null;
    let machine = null;
    try {
      job = await call(`/api/v1/jobs/${enc(jobId)}`);
      if (job.result_url) result = await call(`/api/v1/jobs/${enc(jobId)}/result`);
      if (result && result.review && result.review.action === "correct") {
        machine = await call(`/api/v1/jobs/${enc(jobId)}/result?version=machine`).catch(() => null);
      }
    } catch (e) {
      if (token === view) show(h("h1", { text: jobId }), h("p", { class: "error", text: e.message }));
      return;
    }
    if (token !== view) return;
    const act = async (label, path, method) => {
      try {
        await call(path, { method });
        toast(`${label}: done`);
      } catch (e) {
        toast(`${label}: ${e.message}`, true);
      }
      if (token === view) render();
    };
    const final = FINAL.includes(job.status);
    show(
      h("div", { class: "toolbar" }, h("h1", { class: "mono", text: jobId }),
        h("span", { id: "job-status" }, badge(job.status))),
      h("div", { class: "toolbar" },
        h("a", { href: `#/executions/${enc(jobId)}`, id: "execution-link", text: "Execution graph" }),
        job.status === "needs_review" && h("a", { href: `#/reviews/${enc(jobId)}`, id: "open-review", text: "Review" }),
        job.status === "failed" && h("button", { type: "button", id: "retry", text: "Retry",
          onclick: () => act("Retry", `/api/v1/jobs/${enc(jobId)}/retry`, "POST") }),
        !final && h("button", { type: "button", id: "cancel", class: "danger", text: "Cancel",
          onclick: () => act("Cancel", `/api/v1/jobs/${enc(jobId)}`, "DELETE") }),
        result && h("button", { type: "button", id: "download-json", text: "Download JSON",
          onclick: () => download(`/api/v1/jobs/${enc(jobId)}/result`, `${jobId}.json`) }),
        result && h("button", { type: "button", id: "download-csv", text: "Download CSV",
          onclick: () => download(`/api/v1/jobs/${enc(jobId)}/result?format=csv`, `${jobId}.csv`) })),
      h("div", { class: "cols" },
        h("div", {},
          h("dl", { class: "kv panel" },
            h("dt", { text: "file" }), h("dd", { text: job.filename }),
            h("dt", { text: "kind" }), h("dd", { text: job.kind }),
            h("dt", { text: "created" }), h("dd", { text: fmtTime(job.created_at) }),
            h("dt", { text: "updated" }), h("dd", { text: fmtTime(job.updated_at) }),
            job.attempt !== undefined && [h("dt", { text: "attempt" }), h("dd", { text: String(job.attempt) })],
            job.error && [h("dt", { text: "error" }), h("dd", { class: "error", id: "job-error", text: `${job.error.code}: ${job.error.message}` })]),
          result ? resultTables(result, machine) : h("p", { class: "muted", text: "No result." })),
        h("div", {}, h("h2", { text: "Cost" }), costPanel(job), h("h2", { text: "History" }), historyTable(job))));
    if (!final) setTimeout(() => { if (token === view) render(); }, POLL_MS);
  }

  // ---- Review queue ------------------------------------------------------------------
  async function reviewQueue(token) {
    let reviews;
    try {
      reviews = (await call("/api/v1/reviews")).reviews || [];
    } catch (e) {
      if (token === view) show(h("h1", { text: "Review queue" }), h("p", { class: "error", text: e.message }));
      return;
    }
    if (token !== view) return;
    const open = (id) => { location.hash = `#/reviews/${enc(id)}`; };
    // Reasons are listed when the queue gives them; the review page always shows them.
    const withReasons = reviews.some((r) => (r.review_reasons || []).length > 0);
    const row = ({ job, review_reasons: reasons }) => h("tr", {
      class: "link", tabindex: 0, "data-job": job.job_id, onclick: () => open(job.job_id),
      onkeydown: (ev) => { if (ev.key === "Enter") open(job.job_id); },
    }, h("td", { class: "id", text: job.job_id }), h("td", { text: job.filename }),
    h("td", { text: job.kind }), h("td", { text: fmtTime(job.created_at) }),
    withReasons && h("td", {}, h("ul", { class: "reasons" }, (reasons || []).map((r) => h("li", { text: r })))));
    const table = h("table", { id: "reviews" },
      h("thead", {}, h("tr", {}, ["Job", "File", "Kind", "Created", withReasons && "Reasons"]
        .filter(Boolean).map((t) => h("th", { text: t })))),
      h("tbody", {}, reviews.map(row)));
    show(h("h1", { text: "Review queue" }), reviews.length === 0
      ? h("p", { class: "empty", id: "no-reviews", text: "Nothing waits for review." })
      : table);
  }

  // ---- Review page -------------------------------------------------------------------
  const boxOf = (item) => {
    const b = item && item.box;
    if (!b) return null;
    if (Array.isArray(b) && b.length === 4) return b.map(Number);
    if (typeof b === "object" && "x0" in b) return [b.x0, b.y0, b.x1, b.y1].map(Number);
    return null;
  };
  const text = (v) => (v === null || v === undefined ? "" : String(v));

  async function reviewPage(token, jobId) {
    let job;
    let result;
    try {
      [job, result] = await Promise.all([call(`/api/v1/jobs/${enc(jobId)}`), call(`/api/v1/jobs/${enc(jobId)}/result`)]);
    } catch (e) {
      if (token === view) show(h("h1", { text: jobId }), h("p", { class: "error", text: e.message }));
      return;
    }
    if (token !== view) return;
    if (job.status !== "needs_review") {
      show(h("h1", { class: "mono", text: jobId }),
        h("p", {}, "This job is ", badge(job.status), ", not waiting for review. ",
          h("a", { href: `#/jobs/${enc(jobId)}`, text: "Open the job" })));
      return;
    }
    const fields = { ...(result.fields || {}) };
    if (result.kind === "invoice" || job.kind === "invoice") {
      for (const name of INVOICE_FIELDS) if (!(name in fields)) fields[name] = { value: null, confidence: 0 };
    }
    const lines = (result.lines || []).map((l) => ({ ...l }));
    // What verify flagged: those fields are marked and focused first.
    const flagged = new Set();
    for (const r of result.review_reasons || []) {
      const low = /^low_confidence: (\w+)/.exec(r);
      if (low) flagged.add(low[1]);
      const missing = /^required_fields: missing (.+)$/.exec(r);
      if (missing) missing[1].split(/,\s*/).forEach((n) => flagged.add(n.trim()));
    }
    const isLow = (name) => flagged.has(name) || Number((fields[name] || {}).confidence || 0) < 0.8;

    // The page image with the boxes of what was read on it.
    const pageCount = Math.max(1, job.pages || 0, ...Object.values(fields).map((f) => f.page || 0),
      ...lines.map((l) => l.page || 0));
    const firstLow = Object.entries(fields).map(([n, f]) => isLow(n) && f).find((f) => f && f.page);
    let page = (firstLow && firstLow.page) || 1;
    const img = h("img", { id: "page-image", alt: "" });
    const overlay = s("svg", { viewBox: "0 0 1 1", preserveAspectRatio: "none", "aria-hidden": "true" });
    const docNote = h("p", { class: "muted", id: "page-note" });
    const pager = h("div", { class: "pages" });
    const paintBoxes = () => {
      const rects = [];
      for (const [name, f] of Object.entries(fields)) {
        const b = boxOf(f);
        if (b && f.page === page) {
          rects.push(s("rect", { id: `box-f-${name}`, class: isLow(name) ? "low" : "",
            x: b[0], y: b[1], width: Math.max(0, b[2] - b[0]), height: Math.max(0, b[3] - b[1]),
            "vector-effect": "non-scaling-stroke" }));
        }
      }
      lines.forEach((l, i) => {
        const b = boxOf(l);
        if (b && l.page === page) {
          rects.push(s("rect", { id: `box-l-${i}`, x: b[0], y: b[1], width: Math.max(0, b[2] - b[0]),
            height: Math.max(0, b[3] - b[1]), "vector-effect": "non-scaling-stroke" }));
        }
      });
      overlay.replaceChildren(...rects);
    };
    const loadPage = async (n) => {
      page = n;
      pager.querySelectorAll("button").forEach((b) => b.classList.toggle("primary", Number(b.dataset.page) === n));
      paintBoxes();
      try {
        const url = await objectUrl(`/api/v1/jobs/${enc(jobId)}/pages/${n}`);
        // Another page may have been asked for meanwhile: the last one asked wins.
        if (token !== view || page !== n) {
          if (url) URL.revokeObjectURL(url);
          return;
        }
        img.hidden = !url;
        if (url) {
          showPageImage(img, url);
          img.dataset.page = String(n);
        }
        docNote.textContent = url ? "" : `No image of page ${n} is available.`;
      } catch (e) {
        if (page === n) docNote.textContent = `Page ${n}: ${e.message}`;
      }
    };
    for (let n = 1; n <= pageCount; n += 1) {
      pager.append(h("button", { type: "button", "data-page": n, text: `Page ${n}`, onclick: () => loadPage(n) }));
    }
    const focusBox = (id, on) => {
      const item = id.startsWith("f-") ? fields[id.slice(2)] : lines[Number(id.slice(2))];
      if (on && item && item.page && item.page !== page) loadPage(item.page);
      overlay.querySelector(`#box-${CSS.escape(id)}`)?.classList.toggle("focus", on);
    };

    // The editable fields and lines.
    const inputs = [];
    const fieldRows = Object.entries(fields).map(([name, f]) => {
      const original = text(f.value);
      const input = h("input", { id: `field-${name}`, "data-field": name, value: original, autocomplete: "off",
        onfocus: () => focusBox(`f-${name}`, true), onblur: () => focusBox(`f-${name}`, false) });
      inputs.push({ input, original, kind: "field", name });
      const conf = Number(f.confidence || 0);
      return [h("label", { for: `field-${name}`, text: name }), input,
        h("span", { class: `conf${isLow(name) ? " low" : ""}`, text: conf.toFixed(2) })];
    });
    const lineRows = lines.map((l, i) => h("tr", {}, LINE_KEYS.map((k) => {
      const original = text(l[k]);
      const input = h("input", { "data-line": i, "data-key": k, value: original, "aria-label": `line ${i + 1} ${k}`,
        autocomplete: "off", onfocus: () => focusBox(`l-${i}`, true), onblur: () => focusBox(`l-${i}`, false) });
      inputs.push({ input, original, kind: "line", index: i, key: k });
      return h("td", {}, input);
    })));
    const changedFields = () => Object.fromEntries(inputs
      .filter((x) => x.kind === "field" && x.input.value.trim() !== x.original)
      // An emptied field is removed from the result.
      .map((x) => [x.name, x.input.value.trim() === "" ? null : x.input.value.trim()]));
    const linesChanged = () => inputs.some((x) => x.kind === "line" && x.input.value.trim() !== x.original);
    // A line keeps what the reviewer cannot edit (its id, confidence, page and box).
    const editedLines = () => lines.map((l, i) => {
      const out = { ...l };
      for (const k of LINE_KEYS) {
        const x = inputs.find((y) => y.kind === "line" && y.index === i && y.key === k);
        const v = x ? x.input.value.trim() : text(l[k]);
        out[k] = v === "" && k !== "description" ? null : v;
      }
      return out;
    });
    const correction = () => {
      const body = { action: "correct", fields: changedFields() };
      if (linesChanged()) body.lines = editedLines();
      return body;
    };
    const edited = () => Object.keys(changedFields()).length > 0 || linesChanged();

    const checks = h("div", { id: "checks-wrap" }, checksList(result.checks, "checks"));
    const checksNote = h("p", { class: "muted", id: "checks-note", text: "Checks of the machine's reading." });
    const force = h("input", { type: "checkbox", id: "force" });
    const comment = h("input", { id: "comment", placeholder: "Why the checks may fail", "aria-label": "Comment" });
    const forceRow = h("div", { class: "actions", id: "force-row", hidden: true },
      h("label", {}, force, " Save although checks fail"), comment);
    const approve = h("button", { type: "submit", class: "primary", id: "approve", text: "Approve", "data-mode": "approve" });
    const message = h("p", { id: "review-message", role: "alert" });

    let dryTimer = null;
    let drySeq = 0;
    const onEdit = () => {
      const isEdited = edited();
      approve.textContent = isEdited ? "Save correction" : "Approve";
      approve.dataset.mode = isEdited ? "correct" : "approve";
      for (const x of inputs) x.input.classList.toggle("changed", x.input.value.trim() !== x.original);
      clearTimeout(dryTimer);
      dryTimer = setTimeout(async () => {
        const seq = (drySeq += 1);
        if (!isEdited) {
          checks.replaceChildren(checksList(result.checks, "checks"));
          checksNote.textContent = "Checks of the machine's reading.";
          return;
        }
        checksNote.textContent = "Checking\u2026";
        try {
          const d = await call(`/api/v1/jobs/${enc(jobId)}/review`, { method: "POST", body: { ...correction(), dry_run: true } });
          if (seq !== drySeq || token !== view) return;
          checks.replaceChildren(checksList(d.checks, "checks"));
          checksNote.textContent = d.passed ? "The correction passes every check." : "The correction fails a check.";
          checksNote.className = d.passed ? "muted" : "error";
          checksNote.dataset.source = "dry-run";
        } catch (e) {
          if (seq === drySeq) { checksNote.textContent = `Checks unavailable: ${e.message}`; checksNote.className = "error"; }
        }
      }, DRY_RUN_MS);
    };

    const submit = async (body) => {
      message.textContent = "";
      message.className = "";
      try {
        await call(`/api/v1/jobs/${enc(jobId)}/review`, { method: "POST", body });
        toast(body.action === "approve" ? "Approved" : body.action === "reject" ? "Rejected" : "Correction saved");
        location.hash = `#/jobs/${enc(jobId)}`;
      } catch (e) {
        message.className = "error";
        if (e.status === 409) {
          message.replaceChildren("Someone else has already resolved this job. ",
            h("a", { href: `#/jobs/${enc(jobId)}`, text: "Open it" }));
        } else if (e.code === "CHECKS_FAILED") {
          message.textContent = "The correction fails these checks; fix it, or save it anyway with a comment.";
          if (e.details && e.details.checks) checks.replaceChildren(checksList(e.details.checks, "checks"));
          forceRow.hidden = false;
        } else {
          message.textContent = e.message;
        }
      }
    };

    const form = h("form", { id: "review-form", class: "panel", oninput: onEdit, onsubmit: (ev) => {
      ev.preventDefault();
      if (!edited()) { submit({ action: "approve" }); return; }
      const body = correction();
      if (force.checked) { body.force = true; body.comment = comment.value.trim(); }
      submit(body);
    } },
    h("h2", { text: "Why it is here" }),
    h("ul", { class: "reasons", id: "reasons" }, (result.review_reasons || []).map((r) => h("li", { text: r }))),
    h("h2", { text: "Fields" }), h("div", { class: "fields" }, fieldRows),
    lines.length > 0 && [h("h2", { text: "Line items" }), h("table", { class: "lines" },
      h("thead", {}, h("tr", {}, LINE_KEYS.map((k) => h("th", { text: k })))), h("tbody", {}, lineRows))],
    h("h2", { text: "Checks" }), checksNote, checks, forceRow,
    h("div", { class: "actions" }, approve, h("span", { class: "muted", text: "Enter approves, or saves what you changed." })),
    message);
    const reason = h("input", { id: "reject-reason", placeholder: "Reason", required: true, "aria-label": "Reject reason" });
    const rejectForm = h("form", { id: "reject-form", class: "actions", onsubmit: (ev) => {
      ev.preventDefault();
      submit({ action: "reject", reason: reason.value.trim() });
    } }, reason, h("button", { type: "submit", class: "danger", id: "reject", text: "Reject" }));

    show(h("div", { class: "toolbar" }, h("h1", { class: "mono", text: jobId }), badge(job.status),
      h("span", { text: job.filename }), h("a", { href: `#/executions/${enc(jobId)}`, text: "Execution" })),
    h("div", { class: "cols" },
      h("div", {}, pager, h("div", { class: "doc" }, img, overlay), docNote),
      h("div", {}, form, rejectForm)));
    loadPage(page);
    (inputs.find((x) => x.kind === "field" && isLow(x.name)) || inputs[0])?.input.focus();
  }

  // ---- Routing -----------------------------------------------------------------------
  function render(message) {
    view += 1;
    showPageImage(null, null);
    const token = view;
    const signedIn = Boolean(sessionStorage.getItem(KEY));
    document.getElementById("nav").hidden = !signedIn;
    if (!signedIn) { signIn(message); return; }
    const path = location.hash.replace(/^#/, "") || "/";
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active",
      (a.dataset.nav === "reviews") === (parts[0] === "reviews")));
    const fail = (e) => { if (token === view && e.status !== 401) show(h("p", { class: "error", text: e.message })); };
    const page = ({
      executions: () => (parts[1] ? executionPage(token, parts[1]) : executionsList(token)),
      jobs: () => (parts[1] ? jobPage(token, parts[1]) : executionsList(token)),
      reviews: () => (parts[1] ? reviewPage(token, parts[1]) : reviewQueue(token)),
    }[parts[0]] || (() => executionsList(token)));
    Promise.resolve().then(page).catch(fail);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("sign-out").addEventListener("click", () => signOut());
    window.addEventListener("hashchange", () => render());
    render();
  });
})();
