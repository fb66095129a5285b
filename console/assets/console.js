// Clocker's console: one page, a view per hash (#fleet, #containers,
// #container/ID, #apps, #networks, #dryrun, #trends). Live state comes
// from /ui/api/events (server-sent events); changes go through Clocker's
// own APIs (/v1/fleet, /v1/applications).
"use strict";

const $ = (sel, root) => (root || document).querySelector(sel);
// pending holds the container events that arrive while the first list
// loads; they are applied over it.
const state = { hosts: [], containers: new Map(), pending: [], view: "", renderQueued: false };
const BOARD_PER_HOST = 60, TABLE_ROWS = 300;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}

function showError(msg) {
  const box = $("#error");
  box.textContent = msg || "";
  box.hidden = !msg;
}

// api fetches JSON; a non-2xx answer throws its message.
async function api(method, path, body) {
  const opt = { method, headers: {} };
  if (body !== undefined) { opt.body = typeof body === "string" ? body : JSON.stringify(body); opt.headers["Content-Type"] = "application/json"; }
  const r = await fetch(path, opt);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (!r.ok) throw new Error((data && (data.message || data.Message)) || (r.status + " " + r.statusText));
  return data;
}

const gib = n => (n / (1 << 30)).toFixed(n >= 10 * (1 << 30) ? 0 : 1) + " GiB";
const pct = (a, b) => b > 0 ? Math.min(100, Math.round(100 * a / b)) : 0;
const short = id => (id || "").slice(0, 12);
const isRunning = c => c.State === "running";

// ---------------------------------------------------------------- live

function connect() {
  const live = $("#live");
  const es = new EventSource("/ui/api/events");
  es.addEventListener("open", () => { live.textContent = "live"; live.classList.remove("off"); });
  es.addEventListener("error", () => { live.textContent = "reconnecting"; live.classList.add("off"); });
  es.addEventListener("hosts", ev => { state.hosts = JSON.parse(ev.data); queueRender(); });
  es.addEventListener("container", ev => {
    const e = JSON.parse(ev.data);
    if (state.pending) state.pending.push(e); else applyEvent(e);
    // The fleet view draws host cards only: a container changes nothing
    // there (the cards' counts come with the hosts events).
    if (state.view === "containers") queueRender();
  });
}

// applyEvent moves a container on the board as its engine reports.
function applyEvent(ev) {
  let c = state.containers.get(ev.ID);
  if (ev.Action === "destroy") { state.containers.delete(ev.ID); return; }
  if (!c) {
    c = { ID: ev.ID, Name: ev.Name, Image: ev.Image, Host: ev.Host, State: "created", Status: "Created", Networks: [] };
    state.containers.set(ev.ID, c);
  }
  if (ev.Name) c.Name = ev.Name;
  switch (ev.Action) {
    case "start": case "restart": case "unpause": c.State = "running"; c.Status = "Up"; break;
    case "die": case "stop": c.State = "exited"; c.Status = "Exited"; break;
    case "pause": c.State = "paused"; c.Status = "Paused"; break;
  }
}

async function loadContainers() {
  const list = await api("GET", "/ui/api/containers");
  state.containers = new Map(list.map(c => [c.ID, c]));
  for (const e of state.pending) applyEvent(e);
  state.pending = null;
  queueRender();
}

function queueRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => { state.renderQueued = false; render(); });
}

function render() {
  if (state.view === "fleet") renderFleet();
  if (state.view === "containers") renderContainers();
}

// ---------------------------------------------------------------- fleet

// cards are the host cards drawn, by host: a hosts event (every card,
// sent when any changed) redraws only the cards that changed, and the
// zones only when hosts came, went or moved.
const cards = new Map(); // name → {key, el}
let fleetLayout = "";

function renderFleet() {
  const zones = new Map();
  for (const h of state.hosts) {
    const z = h.Zone || "(no zone)";
    if (!zones.has(z)) zones.set(z, []);
    zones.get(z).push(h);
  }
  const healthy = state.hosts.filter(h => h.State === "healthy").length;
  $("#fleet-summary").textContent = `${state.hosts.length} hosts, ${healthy} healthy, ${state.hosts.reduce((n, h) => n + h.Containers, 0)} containers`;
  const layout = [...zones].map(([z, hs]) => z + ":" + hs.map(h => h.Name).join(",")).join(";");
  const same = layout === fleetLayout;
  const card = h => {
    const key = JSON.stringify(h), old = cards.get(h.Name);
    if (old && old.key === key) return old.el;
    const c = { key, el: hostCard(h) };
    cards.set(h.Name, c);
    if (same && old) old.el.replaceWith(c.el);
    return c.el;
  };
  if (same) { for (const h of state.hosts) card(h); return; }
  fleetLayout = layout;
  const names = new Set(state.hosts.map(h => h.Name));
  for (const n of [...cards.keys()]) if (!names.has(n)) cards.delete(n);
  $("#zones").replaceChildren(...[...zones].map(([z, hs]) =>
    el("div", { class: "zone", "data-zone": z }, el("h2", {}, "zone " + z), el("div", { class: "cards" }, hs.map(card)))));
}

function hostCard(h) {
  const labels = Object.entries(h.Labels || {}).map(([k, v]) => el("span", { title: k in (h.ClockerLabels || {}) ? "set in Clocker" : "engine label" }, `${k}=${v}`));
  const draining = h.State === "draining";
  return el("div", { class: "card " + h.State, "data-host": h.Name, "data-state": h.State },
    el("h3", {}, h.Name, el("span", { class: "state " + h.State }, h.State)),
    el("div", { class: "muted" }, (h.Provisioner || "engine") + " · " + h.Address),
    el("div", {}, `CPU ${h.ReservedCPUs.toFixed(2)} / ${h.NCPU} reserved`), el("div", { class: "bar" }, el("i", { style: `width:${pct(h.ReservedCPUs, h.NCPU)}%` })),
    el("div", {}, `memory ${gib(h.ReservedMemory)} / ${gib(h.MemTotal)} reserved`), el("div", { class: "bar" }, el("i", { style: `width:${pct(h.ReservedMemory, h.MemTotal)}%` })),
    el("div", { class: "containers" }, `containers ${h.Containers}` + (h.Slots ? ` / ${h.Slots} slots` : "")),
    h.Slots ? el("div", { class: "bar" }, el("i", { style: `width:${pct(h.Containers, h.Slots)}%` })) : null,
    el("div", { class: "labels" }, labels),
    h.Error ? el("div", { class: "error" }, h.Error) : null,
    el("button", { onclick: () => drain(h.Name, !draining) }, draining ? "undrain" : "drain"), " ",
    el("button", { onclick: () => editLabel(h.Name) }, "label…"));
}

async function drain(name, on) {
  try { await api("POST", `/v1/fleet/hosts/${encodeURIComponent(name)}/drain?drain=${on}`); showError(""); await refreshHosts(); }
  catch (e) { showError(`drain ${name}: ${e.message}`); }
}

async function editLabel(name) {
  const kv = prompt(`Label for ${name}: KEY=VALUE (KEY= removes it)`);
  if (kv === null) return;
  const i = kv.indexOf("=");
  if (i < 1) { showError(`label ${name}: "${kv}" is not KEY=VALUE`); return; }
  try { await api("POST", `/v1/fleet/hosts/${encodeURIComponent(name)}/labels`, { Labels: { [kv.slice(0, i)]: kv.slice(i + 1) } }); showError(""); await refreshHosts(); }
  catch (e) { showError(`label ${name}: ${e.message}`); }
}

async function refreshHosts() { state.hosts = await api("GET", "/ui/api/hosts"); queueRender(); }

// ---------------------------------------------------------------- containers

function filtered() {
  const q = $("#search").value.trim().toLowerCase();
  const stopped = $("#show-stopped").checked;
  const out = [];
  for (const c of state.containers.values()) {
    if (!stopped && !isRunning(c)) continue;
    if (q && !`${c.Name} ${c.Image} ${c.Host} ${c.ID}`.toLowerCase().includes(q)) continue;
    out.push(c);
  }
  out.sort((a, b) => (a.Host || "").localeCompare(b.Host || "") || (a.Name || "").localeCompare(b.Name || ""));
  return out;
}

function renderContainers() {
  const list = filtered();
  $("#containers-summary").textContent = `${list.filter(isRunning).length} running, ${list.length} shown, ${state.containers.size} in all`;
  const byHost = new Map(state.hosts.map(h => [h.Name, []]));
  for (const c of list) { if (!byHost.has(c.Host)) byHost.set(c.Host, []); byHost.get(c.Host).push(c); }
  const hostState = new Map(state.hosts.map(h => [h.Name, h.State]));
  const board = $("#board");
  board.hidden = !$("#show-board").checked;
  if (!board.hidden) {
    board.replaceChildren(...[...byHost].map(([host, cs]) =>
      el("div", { class: "column " + (hostState.get(host) || ""), "data-host": host },
        el("h3", {}, `${host || "(no host)"} `, el("small", { class: "muted" }, `${cs.length}`)),
        cs.slice(0, BOARD_PER_HOST).map(c => el("a", { class: "chip " + c.State, href: "#container/" + c.ID, "data-id": c.ID, "data-state": c.State, title: `${c.Image} · ${c.Status}` },
          c.Name || short(c.ID), " ", el("small", {}, c.Image))),
        cs.length > BOARD_PER_HOST ? el("div", { class: "muted" }, `+${cs.length - BOARD_PER_HOST} more (search to narrow)`) : null)));
  }
  const tbody = $("#ctable tbody");
  tbody.replaceChildren(...list.slice(0, TABLE_ROWS).map(c => el("tr", { class: c.State, "data-id": c.ID },
    el("td", {}, el("a", { href: "#container/" + c.ID }, c.Name || short(c.ID))), el("td", {}, c.Image), el("td", {}, c.Host),
    el("td", {}, c.State), el("td", {}, c.Status), el("td", {}, short(c.ID)))));
  $("#ctable-more").textContent = list.length > TABLE_ROWS ? `first ${TABLE_ROWS} of ${list.length}: search to narrow` : "";
}

// ---------------------------------------------------------------- one container

let logStream = null;

async function showContainer(id) {
  if (logStream) { logStream.close(); logStream = null; }
  $("#c-inspect").replaceChildren(); $("#c-placement").replaceChildren(); $("#c-logs").replaceChildren();
  let p;
  try { p = await api("GET", "/ui/api/containers/" + encodeURIComponent(id)); }
  catch (e) { showError(`container ${id}: ${e.message}`); return; }
  $("#c-name").textContent = p.Name; $("#c-state").textContent = p.State;
  const rows = [["ID", p.ID], ["image", p.Image], ["host", p.Host], ["created", p.Created], ["started", p.StartedAt], ["exit code", p.ExitCode],
    ["command", (p.Cmd || []).join(" ")], ["memory", p.Memory ? gib(p.Memory) : "—"], ["CPUs", p.NanoCPUs ? p.NanoCPUs / 1e9 : "—"],
    ["restart", p.Restart || "no"], ["ports", (p.Ports || []).join(", ")],
    ["networks", Object.entries(p.Networks || {}).map(([n, ip]) => `${n} ${ip}`).join(", ")], ["mounts", (p.Mounts || []).join("; ")],
    ["env", (p.Env || []).join(" ")], ["labels", Object.entries(p.Labels || {}).map(([k, v]) => `${k}=${v}`).join(" ")]];
  $("#c-inspect").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v === undefined || v === "" ? "—" : String(v))]));
  $("#c-placement").replaceChildren(p.Placement ? decisionView(p.Placement.Decision, p.Placement.Host, `placed ${new Date(p.Placement.Time).toLocaleString()}`)
    : el("p", { class: "muted" }, "No decision kept: created before Clocker's last start, long ago, or on an engine directly."));
  const pre = $("#c-logs");
  logStream = new EventSource(`/ui/api/containers/${encodeURIComponent(p.ID)}/logs`);
  logStream.addEventListener("line", ev => {
    const l = JSON.parse(ev.data);
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(el("span", { class: l.Stream }, l.Text + "\n"));
    while (pre.childNodes.length > 2000) pre.firstChild.remove();
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  });
  logStream.addEventListener("end", () => { logStream.close(); pre.append(el("span", { class: "muted" }, "— the container stopped —\n")); });
}

// decisionView is a placement decision: the ranked hosts with each
// ranker's score, then every host turned down and why.
function decisionView(d, chosen, caption) {
  const rankers = d.Hosts.length ? d.Hosts[0].Scores.map(s => s.Ranker) : [];
  return el("div", { class: "decision" },
    el("p", { class: "muted" }, `${caption || ""} strategy ${d.Strategy}`),
    el("table", { class: "rank" }, el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, "host"), rankers.map(r => el("th", {}, r)))),
      el("tbody", {}, d.Hosts.map((c, i) => el("tr", { "data-host": c.Host }, el("td", {}, i + 1),
        el("td", { class: c.Host === chosen ? "first" : "" }, c.Host), c.Scores.map(s => el("td", {}, +s.Value.toFixed(4))))))),
    d.Rejected.length ? el("table", { class: "rejected" }, el("thead", {}, el("tr", {}, el("th", {}, "turned down"), el("th", {}, "filter"), el("th", {}, "why"))),
      el("tbody", {}, d.Rejected.map(r => el("tr", { "data-host": r.Host }, el("td", {}, r.Host), el("td", {}, r.Filter), el("td", {}, typeof r.Reason === "string" ? r.Reason : JSON.stringify(r.Reason)))))) : null);
}

// ---------------------------------------------------------------- dry run

async function dryRun(ev) {
  ev.preventDefault();
  const text = $("#dryrun-input").value.trim();
  const errBox = $("#dryrun-error"), out = $("#dryrun-result");
  errBox.hidden = true; out.replaceChildren();
  try {
    let name = "", body;
    if (text.startsWith("{")) {
      try { body = JSON.parse(text); } catch (e) { throw new Error("the create body is not JSON: " + e.message); }
    } else {
      const rl = await api("POST", "/ui/api/runline", { Line: text });
      name = rl.Name; body = rl.Body;
    }
    const d = await api("POST", "/v1/fleet/placement" + (name ? "?name=" + encodeURIComponent(name) : ""), body);
    out.append(d.Host ? el("p", {}, "would go to ", el("strong", { id: "dryrun-host" }, d.Host)) : el("p", { class: "error" }, `${d.Status}: ${d.Error}`));
    out.append(decisionView(d, d.Host, ""));
  } catch (e) {
    errBox.textContent = e.message; errBox.hidden = false;
  }
}

// ---------------------------------------------------------------- applications

let selectedEntity = null;

async function showApps() {
  const tree = $("#app-tree");
  let apps;
  try { apps = await api("GET", "/v1/applications"); } catch (e) { showError("applications: " + e.message); return; }
  if (!apps.length) { tree.replaceChildren(el("li", { class: "muted" }, "No application deployed (POST a blueprint to /v1/applications, or docker compose up).")); return; }
  tree.replaceChildren(...apps.map(a => el("li", {}, entityLink(a.id, a.id, `${a.spec.name} (${a.status})`), el("ul", { class: "tree", id: "kids-" + a.id }))));
  for (const a of apps) loadChildren(a.id, a.id);
}

function entityLink(app, id, label) {
  return el("a", { "data-entity": id, onclick: () => showEntity(app, id) }, label);
}

async function loadChildren(app, id) {
  const ul = document.getElementById("kids-" + id);
  if (!ul) return;
  const kids = await api("GET", `/v1/applications/${app}/entities/${id}/children`).catch(() => []);
  ul.replaceChildren(...kids.map(k => el("li", {}, entityLink(app, k.id, `${k.name} `), el("small", { class: "muted" }, k.type), el("ul", { class: "tree", id: "kids-" + k.id }))));
  for (const k of kids) loadChildren(app, k.id);
}

async function showEntity(app, id) {
  selectedEntity = { app, id };
  document.querySelectorAll(".tree a").forEach(a => a.classList.toggle("sel", a.dataset.entity === id));
  const base = `/v1/applications/${app}/entities/${id}`;
  const box = $("#entity");
  try {
    const [ent, sensors, effectors, policies, activities] = await Promise.all([api("GET", base), api("GET", base + "/sensors/current-state"),
      api("GET", base + "/effectors"), api("GET", base + "/policies"), api("GET", base + "/activities")]);
    box.replaceChildren(
      el("h2", {}, ent.name, " ", el("small", { class: "muted" }, ent.type)),
      el("div", { class: "panel" }, el("h3", {}, "Sensors"), el("dl", { class: "kv", id: "sensors" }, sensorRows(sensors))),
      el("div", { class: "panel" }, el("h3", {}, "Effectors"), effectors.map(f => effectorForm(base, f))),
      el("div", { class: "panel" }, el("h3", {}, "Policies"), policies.length ? policies.map(p => el("div", {}, `${p.name} — ${p.state} `,
        el("button", { onclick: () => policyOp(base, p.id, p.state === "RUNNING" ? "stop" : "start") }, p.state === "RUNNING" ? "stop" : "start"))) : el("p", { class: "muted" }, "none")),
      el("div", { class: "panel" }, el("h3", {}, "Activity"), el("table", {}, el("tbody", {}, activities.slice().sort((a, b) => b.submitTimeUtc - a.submitTimeUtc).slice(0, 50).map(t =>
        el("tr", {}, el("td", {}, new Date(t.submitTimeUtc).toLocaleTimeString()), el("td", {}, t.displayName), el("td", {}, t.currentStatus), el("td", {}, t.isError ? String(t.result || "") : "")))))));
  } catch (e) { showError(`entity ${id}: ${e.message}`); }
}

// Sensors stay live while an entity is shown (Brooklyn's API has no
// stream: they are read again every 2 s, only the sensors' list redrawn).
function sensorRows(sensors) {
  return Object.entries(sensors).sort().flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]);
}

setInterval(async () => {
  const dl = $("#sensors");
  if (state.view !== "apps" || !selectedEntity || !dl) return;
  const { app, id } = selectedEntity;
  try { dl.replaceChildren(...sensorRows(await api("GET", `/v1/applications/${app}/entities/${id}/sensors/current-state`))); }
  catch (e) { /* the entity went: the next click says so */ }
}, 2000);

function effectorForm(base, f) {
  const inputs = f.parameters.map(p => el("label", {}, ` ${p.name} `, el("input", { name: p.name, placeholder: p.type, title: p.description || "" })));
  const status = el("span", { class: "muted" });
  return el("form", { class: "effector", "data-effector": f.name, onsubmit: async ev => {
    ev.preventDefault();
    const params = {};
    for (const i of ev.target.querySelectorAll("input")) if (i.value !== "") params[i.name] = i.value;
    status.textContent = " running…";
    try {
      const r = await api("POST", `${base}/effectors/${encodeURIComponent(f.name)}?timeout=0`, params);
      status.textContent = " submitted " + (r && r.id ? r.id : "");
      setTimeout(() => selectedEntity && showEntity(selectedEntity.app, selectedEntity.id), 1000);
    } catch (e) { status.textContent = ""; showError(`${f.name}: ${e.message}`); }
  } }, el("button", { type: "submit" }, f.name), inputs, status);
}

async function policyOp(base, id, op) {
  try { await api("POST", `${base}/policies/${encodeURIComponent(id)}/${op}`); if (selectedEntity) showEntity(selectedEntity.app, selectedEntity.id); }
  catch (e) { showError(`policy ${id}: ${e.message}`); }
}

// ---------------------------------------------------------------- networks

async function showNetworks() {
  let nets, local, list;
  // The container list afresh: containers the event stream brought have
  // no networks yet.
  try { [nets, local, list] = await Promise.all([api("GET", "/ui/api/networks"), api("GET", "/ui/api/networks/local"), api("GET", "/ui/api/containers")]); }
  catch (e) { showError("networks: " + e.message); return; }
  const members = new Map(); // network → containers
  for (const c of list) for (const n of c.Networks || []) { if (!members.has(n)) members.set(n, []); members.get(n).push(c); }
  const root = $("#networks");
  const fleet = !nets.length ? [el("p", { class: "muted" }, "No fleet network (docker network create NAME makes one).")] : nets.map(n => {
    const cs = members.get(n.Name) || [];
    return el("div", { class: "net", "data-network": n.Name },
      el("h3", {}, n.Name, " ", el("small", { class: "muted" }, `${n.Driver || "bridge"} · ${n.Subnet}${n.Subnet6 ? " · " + n.Subnet6 : ""} · ${short(n.ID)}`)),
      netGraph(n, cs),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "host"), el("th", {}, "slice"), el("th", {}, "gateway"), el("th", {}, "members"))),
        el("tbody", {}, n.Slices.map(s => el("tr", {}, el("td", {}, s.Host), el("td", {}, s.IPRange), el("td", {}, s.Gateway),
          el("td", {}, cs.filter(c => c.Host === s.Host).map(c => c.Name).join(", ")))))));
  });
  // Per-host networks: on one host each, joined only by containers there.
  const perHost = el("div", { class: "local-nets" }, el("h2", {}, "per-host networks"),
    !local.length ? el("p", { class: "muted" }, "No per-host network.") :
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "host"), el("th", {}, "network"), el("th", {}, "driver"), el("th", {}, "subnet"), el("th", {}, "members"))),
      el("tbody", {}, local.map(n => el("tr", { "data-local-network": n.Name, "data-host": n.Host },
        el("td", {}, n.Host), el("td", {}, n.Name, " ", el("small", { class: "muted" }, short(n.ID))), el("td", {}, n.Driver),
        el("td", {}, (n.Subnets || []).join(", ")),
        el("td", {}, (members.get(n.Name) || []).filter(c => c.Host === n.Host).map(c => c.Name).join(", ")))))));
  root.replaceChildren(el("h2", {}, "fleet networks"), ...fleet, perHost);
}

// netGraph draws the member hosts on a circle, every pair linked (the
// VXLAN overlay is a full mesh), each with its count of members.
function netGraph(n, cs) {
  const NS = "http://www.w3.org/2000/svg", W = 360, H = 230, R = 70, cx = W / 2, cy = H / 2 - 8; // room for the labels under the circles
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  const pos = n.Slices.map((s, i) => {
    const a = 2 * Math.PI * i / Math.max(1, n.Slices.length) - Math.PI / 2;
    return { s, x: cx + R * Math.cos(a), y: cy + R * Math.sin(a) };
  });
  const add = (tag, attrs, text) => { const e = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text) e.textContent = text; svg.append(e); };
  for (let i = 0; i < pos.length; i++) for (let j = i + 1; j < pos.length; j++)
    add("line", { x1: pos[i].x, y1: pos[i].y, x2: pos[j].x, y2: pos[j].y, stroke: "#90cdf4", "stroke-width": 2 });
  const hostState = new Map(state.hosts.map(h => [h.Name, h.State]));
  for (const p of pos) {
    const ok = hostState.get(p.s.Host) === "healthy";
    add("circle", { cx: p.x, cy: p.y, r: 18, fill: ok ? "#c6f6d5" : "#fed7d7", stroke: ok ? "#1f9d55" : "#d64545", "data-host": p.s.Host });
    add("text", { x: p.x, y: p.y + 4, "text-anchor": "middle" }, String(cs.filter(c => c.Host === p.s.Host).length));
    add("text", { x: p.x, y: p.y + 32, "text-anchor": "middle" }, `${p.s.Host} ${p.s.IPRange}`);
  }
  if (!pos.length) add("text", { x: cx, y: cy, "text-anchor": "middle" }, "no member host yet");
  return svg;
}

// ---------------------------------------------------------------- trends

async function showTrends() {
  let t;
  try { t = await api("GET", "/ui/api/trends"); } catch (e) { showError("trends: " + e.message); return; }
  const root = $("#trends");
  if (!t.Series.length) { root.replaceChildren(el("p", { class: "muted" }, "No sample yet (one every " + t.EverySeconds + " s).")); return; }
  root.replaceChildren(...t.Series.map(s => el("div", { class: "trend", "data-series": s.Name }, el("h3", {}, `${s.Name}: ${s.Points.length ? +s.Points[s.Points.length - 1][1].toFixed(2) : "—"}`), sparkline(s.Points))));
}

function sparkline(points) {
  const NS = "http://www.w3.org/2000/svg", W = 240, H = 60;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  if (points.length > 1) {
    const t0 = points[0][0], t1 = points[points.length - 1][0], vmax = Math.max(1e-9, ...points.map(p => p[1]));
    const d = points.map((p, i) => `${i ? "L" : "M"}${((p[0] - t0) / Math.max(1, t1 - t0) * (W - 4) + 2).toFixed(1)},${(H - 4 - p[1] / vmax * (H - 8)).toFixed(1)}`).join(" ");
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", d); path.setAttribute("fill", "none"); path.setAttribute("stroke", "#2b6cb0"); path.setAttribute("stroke-width", "1.5");
    svg.append(path);
  }
  return svg;
}

// ---------------------------------------------------------------- routing

function route() {
  const [view, arg] = (location.hash.slice(1) || "fleet").split("/");
  state.view = view;
  document.querySelectorAll("main > section").forEach(s => { s.hidden = s.id !== "view-" + view; });
  document.querySelectorAll("header nav a").forEach(a => a.classList.toggle("active", a.dataset.view === view || (view === "container" && a.dataset.view === "containers")));
  if (view !== "container" && logStream) { logStream.close(); logStream = null; }
  showError("");
  if (view === "container") showContainer(decodeURIComponent(arg || ""));
  if (view === "apps") showApps();
  if (view === "networks") showNetworks();
  if (view === "trends") showTrends();
  render();
}

window.addEventListener("hashchange", route);
$("#search").addEventListener("input", queueRender);
$("#show-board").addEventListener("change", queueRender);
$("#show-stopped").addEventListener("change", queueRender);
$("#dryrun-form").addEventListener("submit", dryRun);
route();
connect();
loadContainers().catch(e => showError("containers: " + e.message));
