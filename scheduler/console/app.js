// The capa console: a static page over the scheduler's authorised JSON routes (/api/v1/console/*). No build step:
// plain browser JavaScript, Vega-Lite (vega + vega-lite UMD builds, served from node_modules) for the charts.
// Every value from the API is written with textContent, never as markup.
/* global vega, vegaLite */

const KEY_STORAGE = "capa-console-key";
const REFRESH_MS = 2000;
const MONEY_REFRESH_MS = 5000;

const state = { key: sessionStorage.getItem(KEY_STORAGE) ?? "", me: undefined, timer: undefined, views: new Map() };
const $ = (sel) => document.querySelector(sel);

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, init = {}) {
  const res = await fetch(path, {
    ...init,
    headers: { ...(init.headers ?? {}), authorization: `Bearer ${state.key}` },
  });
  const text = await res.text();
  const body = text && res.headers.get("content-type")?.startsWith("application/json") ? JSON.parse(text) : text;
  if (!res.ok) {
    const err = body?.error ?? {};
    const fields = (err.violations ?? []).map((v) => `${v.field}: ${v.description ?? v.message ?? ""}`).join("; ");
    throw new ApiError(res.status, err.code ?? String(res.status), fields || err.message || res.statusText);
  }
  return body;
}

// ---- formatting -------------------------------------------------------------------------------------------------
const usd = (micros) => {
  const v = micros / 1e6;
  return `$${v >= 100 ? v.toFixed(2) : v >= 0.01 || v === 0 ? v.toFixed(2) : v.toPrecision(2)}`;
};
const duration = (s) => {
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
};
const ago = (ms) => (ms > 0 ? `${duration(Math.max(0, (Date.now() - ms) / 1000))} ago` : "-");
const pct = (x) => `${Math.round(x * 1000) / 10}%`;

function cell(tr, value, cls) {
  const td = document.createElement("td");
  td.textContent = value === undefined || value === null || value === "" ? "-" : String(value);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

/** Replaces a table body's rows: one per item, `cells` gives [value, class?] pairs, `attrs` data-* attributes. */
function fill(tbody, items, cells, attrs = () => ({})) {
  const rows = items.map((item) => {
    const tr = document.createElement("tr");
    for (const [k, v] of Object.entries(attrs(item))) tr.dataset[k] = v;
    for (const c of cells(item)) Array.isArray(c) ? cell(tr, c[0], c[1]) : cell(tr, c);
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(tr, "none", "muted");
    td.colSpan = tbody.parentElement.querySelectorAll("thead th").length;
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

async function chart(el, spec) {
  state.views.get(el.id)?.finalize();
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: "svg", container: el, hover: true });
  state.views.set(el.id, view);
  await view.runAsync();
}

const moneySpec = (series, title) => ({
  $schema: "https://vega.github.io/schema/vega-lite/v6.json",
  width: "container",
  height: 240,
  data: {
    values: series.flatMap((s) => s.points.map((p) => ({ name: s.name, at: p.atMs, usd: p.cumulativeMicros / 1e6 }))),
  },
  mark: { type: "line", interpolate: "step-after", point: false },
  encoding: {
    x: { field: "at", type: "temporal", title: "time" },
    y: { field: "usd", type: "quantitative", title },
    color: { field: "name", type: "nominal", title: null },
  },
});

// ---- views ------------------------------------------------------------------------------------------------------
const isOperator = () => state.me && (state.me.role === "operator" || state.me.role === "admin");
const tenantish = () => state.me && state.me.role !== "provider";

async function refreshFleet() {
  const f = await api("/api/v1/console/fleet");
  fill(
    $("#fleet tbody"),
    f.cells,
    (c) => [
      c.region,
      c.gpuModel,
      [c.agents, "num"],
      [c.freeGpus, "num"],
      [c.usedGpus, "num"],
      [c.unavailableGpus, "num"],
      [
        c.minPriceMicros === c.maxPriceMicros
          ? usd(c.minPriceMicros)
          : `${usd(c.minPriceMicros)}–${usd(c.maxPriceMicros)}`,
        "num",
      ],
      [c.minSpotMicros ? usd(c.minSpotMicros) : "-", "num"],
    ],
    (c) => ({ region: c.region, model: c.gpuModel, free: String(c.freeGpus) }),
  );
  if (f.agents)
    fill(
      $("#agents tbody"),
      f.agents,
      (a) => [
        a.agentId,
        a.region,
        a.status,
        a.provider,
        a.gpus.map((g) => `${g.model} ${g.free}/${g.total} @ ${usd(g.priceMicros)}`).join(", "),
        [a.tasks, "num"],
        ago(a.lastSeenMs),
      ],
      (a) => ({ agentId: a.agentId, status: a.status }),
    );
}

const shape = (j) => `${j.replicas}x${j.gpusPerReplica}${j.gpuModels.length ? ` ${j.gpuModels.join("|")}` : ""}`;
const placement = (j) =>
  j.tasks
    .filter((t) => t.agentId)
    .map((t) => `${t.agentId} (${t.region}) ${t.gpus}x${t.gpuModel}`)
    .join(", ");

async function refreshJobs() {
  const v = await api("/api/v1/console/jobs");
  $("#queue-count").textContent = `(${v.queue.length})`;
  $("#running-count").textContent = `(${v.running.length})`;
  const attrs = (j) => ({ jobId: j.id, state: j.state });
  fill(
    $("#queue tbody"),
    v.queue,
    (j) => [j.id, j.tenant, j.name, shape(j), j.state, [duration(j.ageS), "num"], j.reason],
    attrs,
  );
  fill(
    $("#running tbody"),
    v.running,
    (j) => [
      j.id,
      j.tenant,
      j.name,
      j.state,
      placement(j),
      [j.tasks[0] ? usd(j.tasks[0].priceMicros) : "-", "num"],
      [duration(j.ageS), "num"],
    ],
    attrs,
  );
  fill(
    $("#recent tbody"),
    v.recent,
    (j) => [j.id, j.tenant, j.name, j.state, j.reason, [usd(j.spentMicros), "num"], ago(j.finishedAtMs)],
    attrs,
  );
}

async function refreshDecisions() {
  const v = await api("/api/v1/console/decisions");
  const items = v.decisions.map((d) => {
    const box = document.createElement("details");
    box.className = "decision";
    box.dataset.jobId = d.jobId;
    box.dataset.outcome = d.outcome;
    const summary = document.createElement("summary");
    const where = d.chosen.map((c) => `${c.agentId} ${c.gpuModel} @ ${usd(c.priceMicros)}`).join(", ");
    summary.textContent = `${d.jobId} ${d.jobName ? `(${d.jobName}) ` : ""}— ${d.outcome}${where ? ` on ${where}` : ""} · ${d.profile} · ${ago(d.decidedAtMs)}`;
    box.appendChild(summary);
    const ul = document.createElement("ul");
    const lines = [
      ...d.summary,
      d.estimatedCostMicros ? `estimated cost ${usd(d.estimatedCostMicros)}` : "",
      `${d.candidatesConsidered} candidate(s) considered`,
      ...Object.entries(d.rejections).map(([k, n]) => `rejected ${n}: ${k}`),
      ...d.runnerUp.map(
        (r) => `runner-up ${r.agentId} (${r.region}) @ ${usd(r.priceMicros)}, score ${r.score.toFixed(1)}`,
      ),
      d.relaxation ? `would place if: ${d.relaxation}` : "",
    ].filter(Boolean);
    for (const line of lines) {
      const li = document.createElement("li");
      li.textContent = line;
      ul.appendChild(li);
    }
    box.appendChild(ul);
    return box;
  });
  if (items.length === 0) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = "no decisions yet";
    items.push(p);
  }
  // Keep open the decisions the viewer expanded.
  const open = new Set([...document.querySelectorAll("#decisions details[open]")].map((e) => e.dataset.jobId));
  for (const box of items) if (box.dataset?.jobId && open.has(box.dataset.jobId)) box.open = true;
  $("#decisions").replaceChildren(...items);
}

async function refreshMoney() {
  if (tenantish()) {
    const s = await api("/api/v1/console/spend");
    await chart($("#spend-chart"), moneySpec(s.series, "spend, cumulative ($)"));
    $("#spend-total").textContent =
      s.series.map((x) => `${x.name}: ${usd(x.totalMicros)}`).join(" · ") || "no charges yet";
  }
  if (state.me.role !== "tenant") {
    const e = await api("/api/v1/console/earnings");
    const series = [...e.series, ...e.fees];
    await chart($("#earnings-chart"), moneySpec(series, "payouts, cumulative ($)"));
    $("#earnings-total").textContent =
      series.map((x) => `${x.name}: ${usd(x.totalMicros)}`).join(" · ") || "no payouts yet";
  }
}

async function refreshPolicy() {
  const p = await api("/api/v1/console/policy");
  const meta = $("#policy-meta");
  meta.replaceChildren();
  for (const [k, v] of [
    ["profile", p.profile],
    ["set by", p.updatedBy || "(default)"],
    ["set", p.updatedAtMs ? new Date(p.updatedAtMs).toISOString() : "-"],
    ["known profiles", p.availableProfiles.join(", ")],
  ]) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    meta.append(dt, dd);
  }
  const weights = Object.entries(p.profileDocument?.weights ?? {});
  fill($("#policy-weights tbody"), weights, ([k, w]) => [k, [w, "num"]]);
  $("#policy-json").textContent = JSON.stringify(p.profileDocument, null, 2);
}

// ---- replay -----------------------------------------------------------------------------------------------------
async function readFileInput(input) {
  const file = input.files?.[0];
  return file ? await file.text() : "";
}

async function runReplay(event) {
  event.preventDefault();
  const status = $("#replay-status");
  const trace = (await readFileInput($("#replay-trace-file"))) || $("#replay-trace").value;
  const fleet = await readFileInput($("#replay-fleet-file"));
  const profiles = $("#replay-profiles")
    .value.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  status.textContent = "replaying…";
  try {
    const r = await api("/api/v1/replay", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        traceCsv: trace,
        fleetCsv: fleet,
        agents: Number($("#replay-agents").value),
        activeProfile: $("#replay-active").value.trim(),
        profiles,
        seed: Number($("#replay-seed").value),
      }),
    });
    const active = r.policies.find((p) => p.name === "active");
    fill(
      $("#replay-table tbody"),
      r.policies,
      (p) => [
        p.name,
        [p.placed, "num"],
        [p.neverStarted, "num"],
        [usd(p.costMicros), "num"],
        [
          active && p !== active && active.costMicros > 0 ? `${(p.costMicros / active.costMicros).toFixed(2)}x` : "",
          "num",
        ],
        [duration(p.meanQueueS), "num"],
        [duration(p.p99QueueS), "num"],
        [pct(p.utilisation), "num"],
        [p.preemptions, "num"],
      ],
      (p) => ({ policy: p.name }),
    );
    await chart($("#replay-chart"), r.plot);
    const nowhere = r.policies[0]?.unplaceable ?? 0;
    status.textContent =
      `replayed ${r.jobs} jobs over ${r.agents} agents (${r.gpus} GPUs, ${r.fleetSource}) for ${r.policies.length} policies in ${r.wallSeconds}s` +
      (nowhere > 0 ? `; ${nowhere} job(s) fit nowhere on this fleet` : "");
  } catch (err) {
    status.textContent = `replay failed: ${err.message}`;
  }
}

// ---- wiring -----------------------------------------------------------------------------------------------------
let lastMoney = 0;
async function refresh() {
  try {
    const tasks = [refreshFleet()];
    if (tenantish()) tasks.push(refreshJobs(), refreshDecisions());
    if (Date.now() - lastMoney >= MONEY_REFRESH_MS && !$('[data-panel="money"]').hidden) {
      lastMoney = Date.now();
      tasks.push(refreshMoney());
    }
    await Promise.all(tasks);
    $("#error").textContent = "";
    $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.refreshed = String(Date.now());
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return signOut("the key was refused (401): sign in again");
    $("#error").textContent = `could not refresh: ${err.message}`;
  }
}

function showTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const p of document.querySelectorAll("[data-panel]")) p.hidden = p.dataset.panel !== name;
  if (name === "money") {
    lastMoney = 0;
    void refresh();
  }
  if (name === "policy")
    refreshPolicy().catch((err) => {
      $("#error").textContent = err.message;
    });
}

async function signIn(key) {
  state.key = key;
  try {
    state.me = await api("/api/v1/whoami");
  } catch (err) {
    state.key = "";
    sessionStorage.removeItem(KEY_STORAGE);
    $("#sign-in-error").textContent = `could not sign in: ${err.message}`;
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $("#sign-in").hidden = true;
  $("#views").hidden = false;
  $("#sign-out").hidden = false;
  const scope =
    state.me.role === "tenant"
      ? ` of tenant ${state.me.tenant}`
      : state.me.role === "provider"
        ? ` ${state.me.provider}`
        : "";
  $("#who").textContent = `${state.me.name} (${state.me.role}${scope})`;
  document.body.dataset.role = state.me.role;
  for (const el of document.querySelectorAll("[data-operator]")) el.hidden = !isOperator();
  $("#earnings-card").hidden = state.me.role === "tenant";
  await refresh();
  state.timer = setInterval(refresh, REFRESH_MS);
}

function signOut(message = "") {
  clearInterval(state.timer);
  state.key = "";
  state.me = undefined;
  sessionStorage.removeItem(KEY_STORAGE);
  $("#views").hidden = true;
  $("#sign-out").hidden = true;
  $("#sign-in").hidden = false;
  $("#who").textContent = "";
  $("#sign-in-error").textContent = message;
}

$("#sign-in-form").addEventListener("submit", (e) => {
  e.preventDefault();
  void signIn($("#api-key").value.trim());
});
$("#sign-out").addEventListener("click", () => signOut());
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
$("#replay-form").addEventListener("submit", runReplay);
if (state.key) void signIn(state.key);
