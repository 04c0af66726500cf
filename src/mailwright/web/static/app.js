// The mailwright web inbox: a list of captured mail kept live by server-sent events, and a
// message view. Everything from a message is put in the page with textContent, never as HTML;
// the HTML body is shown only in the sandboxed iframe, served under its own strict CSP.
"use strict";

const API = "/api/v1";
const PAGE_SIZE = 200;
const $ = (id) => document.getElementById(id);

// arrivedDuringLoad: events seen while a list request is in flight, whose answer may predate them.
const state = {
  messages: [], selected: null, query: "", tab: "html", loadSeq: 0, arrivedDuringLoad: [],
};

function fmtDate(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function fmtSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, options) {
  const resp = await fetch(API + path, options);
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`;
    try { message = (await resp.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return resp;
}

function showError(err) {
  const box = $("error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

// Same rule as the server's ?q= (capture/box.py): a case-insensitive substring of these fields.
function matches(m, query) {
  if (!query) return true;
  const needle = query.toLowerCase();
  return [m.subject, m.from, m.to, m.envelope.from, ...m.envelope.to]
    .some((f) => (f || "").toLowerCase().includes(needle));
}

function renderList() {
  const list = $("list");
  list.replaceChildren();
  for (const m of state.messages) {
    const li = el("li", "item");
    li.dataset.id = m.id;
    li.tabIndex = 0;
    if (m.id === state.selected) li.classList.add("selected");
    const top = el("div", "row");
    top.append(el("span", "from", m.from || m.envelope.from || "(no sender)"),
               el("time", "date", fmtDate(m.date)));
    const subject = el("div", "subject", m.subject || "(no subject)");
    const to = el("div", "to muted", "to " + (m.envelope.to.join(", ") || m.to));
    li.append(top, subject, to);
    li.addEventListener("click", () => select(m.id));
    li.addEventListener("keydown", (e) => { if (e.key === "Enter") select(m.id); });
    list.append(li);
  }
  $("empty").hidden = state.messages.length > 0;
  const n = state.messages.length;
  $("count").textContent = `${n}${n >= PAGE_SIZE ? "+" : ""} message${n === 1 ? "" : "s"}`;
}

async function load() {
  const seq = ++state.loadSeq;  // a slower, older search must not overwrite a newer one
  state.arrivedDuringLoad = [];
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (state.query) params.set("q", state.query);
  try {
    const body = await (await api(`/messages?${params}`)).json();
    if (seq !== state.loadSeq) return;
    const known = new Set(body.messages.map((m) => m.id));
    const missed = state.arrivedDuringLoad.filter((m) => !known.has(m.id));
    state.messages = [...missed, ...body.messages];
    state.arrivedDuringLoad = [];
    showError(null);
    renderList();
  } catch (err) {
    showError(err);
  }
}

function setTab(name) {
  state.tab = name;
  for (const b of document.querySelectorAll(".tabs [data-tab]")) {
    b.setAttribute("aria-selected", String(b.dataset.tab === name));
  }
  for (const p of document.querySelectorAll(".panels [data-panel]")) {
    p.hidden = p.dataset.panel !== name;
  }
  if (name === "raw") loadRaw();
}

async function loadRaw() {
  const id = state.selected;
  const pre = $("v-raw");
  if (!id || pre.dataset.id === id) return;
  pre.textContent = "Loading…";
  try {
    const text = await (await api(`/messages/${encodeURIComponent(id)}/raw`)).text();
    if (state.selected === id) { pre.textContent = text; pre.dataset.id = id; }
  } catch (err) {
    pre.textContent = String(err.message || err);
  }
}

async function select(id) {
  state.selected = id;
  if (location.hash !== `#${id}`) history.replaceState(null, "", `#${id}`);
  for (const li of $("list").children) li.classList.toggle("selected", li.dataset.id === id);
  let m;
  try {
    m = await (await api(`/messages/${encodeURIComponent(id)}`)).json();
  } catch (err) {
    showError(err);
    return;
  }
  if (state.selected !== id) return;
  showError(null);
  $("placeholder").hidden = true;
  $("view").hidden = false;
  $("v-subject").textContent = m.subject || "(no subject)";
  $("v-from").textContent = m.from;
  $("v-to").textContent = m.to;
  $("v-envelope").textContent = `${m.envelope.from || "<>"} → ${m.envelope.to.join(", ")}`;
  $("v-date").textContent = `${fmtDate(m.date)} · ${fmtSize(m.size)}`;
  $("v-rawlink").href = m.raw;
  $("v-rawlink").download = `${m.id}.eml`;

  const frame = $("v-html");
  frame.hidden = !m.html;
  $("v-nohtml").hidden = !!m.html;
  frame.src = m.html || "about:blank";
  $("v-text").textContent = m.text ?? "(no text part)";

  const tbody = $("v-headers").tBodies[0];
  tbody.replaceChildren();
  for (const h of m.headers) {
    const tr = el("tr");
    tr.append(el("th", null, h.name), el("td", null, h.value));
    tbody.append(tr);
  }

  const atts = $("v-attachments");
  atts.replaceChildren();
  for (const a of m.attachments) {
    const li = el("li");
    const link = el("a", null, a.name || `part ${a.part}`);
    link.href = a.url;
    link.download = a.name || `part-${a.part}`;
    li.append(link, el("span", "muted", ` ${a.type}, ${fmtSize(a.size)}`));
    atts.append(li);
  }
  $("v-noatt").hidden = m.attachments.length > 0;
  $("att-count").textContent = m.attachments.length ? `(${m.attachments.length})` : "";

  $("v-raw").dataset.id = "";
  setTab(state.tab === "html" && !m.html ? "text" : state.tab);
}

function unselect() {
  state.selected = null;
  history.replaceState(null, "", location.pathname);
  $("view").hidden = true;
  $("placeholder").hidden = false;
}

async function deleteSelected() {
  const id = state.selected;
  if (!id) return;
  try {
    await api(`/messages/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (err) {
    showError(err);
    return;
  }
  state.messages = state.messages.filter((m) => m.id !== id);
  unselect();
  renderList();
}

async function clearAll() {
  if (!confirm("Delete all captured mail?")) return;
  try {
    await api("/messages", { method: "DELETE" });
  } catch (err) {
    showError(err);
    return;
  }
  state.messages = [];
  unselect();
  renderList();
}

function listen() {
  const live = $("live");
  const source = new EventSource(`${API}/events`);
  source.onopen = () => {
    live.textContent = "live";
    live.classList.add("on");
    load();  // catch up on anything that arrived while we were not connected
  };
  source.onerror = () => {
    live.textContent = "reconnecting";
    live.classList.remove("on");
  };
  source.addEventListener("message", (event) => {
    const m = JSON.parse(event.data);
    if (!matches(m, state.query)) return;
    state.arrivedDuringLoad.unshift(m);
    state.arrivedDuringLoad.length = Math.min(state.arrivedDuringLoad.length, PAGE_SIZE);
    if (state.messages.some((x) => x.id === m.id)) return;
    state.messages.unshift(m);
    renderList();
  });
}

function init() {
  let timer = null;
  $("search").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.query = e.target.value.trim(); load(); }, 200);
  });
  $("delete").addEventListener("click", deleteSelected);
  $("clear").addEventListener("click", clearAll);
  for (const b of document.querySelectorAll(".tabs [data-tab]")) {
    b.addEventListener("click", () => setTab(b.dataset.tab));
  }
  setTab("html");
  load();
  listen();
  if (location.hash.length > 1) select(decodeURIComponent(location.hash.slice(1)));
}

document.addEventListener("DOMContentLoaded", init);
