import { createHash } from "node:crypto";
import type { AppEnv } from "@enclave/core";
import type { Hono } from "hono";
import type { Delivery, LocalBus } from "./bus";
import type { RecentEvent } from "./recent-events";

/** A dead letter as the page lists it (the event's data is on its row in the recent events). */
export interface DeadLetterSummary {
  id: string;
  subscriber: string;
  /** The bus's id of the publish it came from (the row of the recent events it belongs to). */
  busEventId: string;
  eventId: string;
  type: string;
  source: string;
  correlationId?: string;
  time: string;
  attempts: number;
  lastError?: string;
  deadLetteredAt?: string;
}

export interface RecentEventsResponse {
  /** How many events the ring keeps. */
  limit: number;
  items: RecentEvent[];
  /** Newest first, at most MAX_DEAD_LETTERS of them; `deadLetterCount` says how many there are. */
  deadLetters: DeadLetterSummary[];
  deadLetterCount: number;
}

/** The dead-letter list is on disk and unbounded; the page polls, so it gets the newest only. */
const MAX_DEAD_LETTERS = 200;

const text = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

function summarize(delivery: Delivery): DeadLetterSummary {
  const detail = delivery.event.detail as unknown as Record<string, unknown> | null;
  const metadata = (detail && typeof detail === "object" ? detail.metadata : undefined) as Record<string, unknown> | null | undefined;
  return {
    id: delivery.id,
    subscriber: delivery.subscriber,
    busEventId: delivery.event.id,
    eventId: text(detail?.id) ?? delivery.event.id,
    type: String(delivery.event["detail-type"]),
    source: String(delivery.event.source),
    correlationId: text(metadata && typeof metadata === "object" ? metadata.correlationId : undefined),
    time: String(delivery.event.time),
    attempts: delivery.attempts,
    ...(delivery.lastError === undefined ? {} : { lastError: delivery.lastError }),
    ...(delivery.deadLetteredAt === undefined ? {} : { deadLetteredAt: delivery.deadLetteredAt }),
  };
}

/** What `GET /_local/events/recent` answers. */
export function recentEventsResponse(bus: LocalBus): RecentEventsResponse {
  const dead = bus
    .deadLetters()
    .map(summarize)
    .sort((a, b) => (b.deadLetteredAt ?? b.time).localeCompare(a.deadLetteredAt ?? a.time));
  return { limit: bus.recent.limit, items: bus.recent.list(), deadLetters: dead.slice(0, MAX_DEAD_LETTERS), deadLetterCount: dead.length };
}

const style = `
:root { color-scheme: light dark; --fg: #1d2433; --muted: #667085; --bg: #f7f8fa; --card: #fff; --line: #e3e6ec;
  --ok: #137a3a; --ok-bg: #e3f5e9; --warn: #8a5a00; --warn-bg: #fff3d6; --bad: #b42318; --bad-bg: #fde8e6; --idle: #475467; --idle-bg: #eef0f4; --accent: #3056d3; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8ee; --muted: #98a2b3; --bg: #11151c; --card: #1a1f29; --line: #2b3240;
  --ok: #6fdc96; --ok-bg: #153622; --warn: #f5c451; --warn-bg: #3a2e10; --bad: #ff8a80; --bad-bg: #3d1a17; --idle: #c0c6d2; --idle-bg: #262d3a; --accent: #8aa4ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 16px; padding: 14px 24px; border-bottom: 1px solid var(--line); background: var(--card); position: sticky; top: 0; z-index: 1; }
header h1 { font-size: 17px; margin: 0; }
header .spacer { flex: 1; }
#status { font-size: 12px; color: var(--muted); }
#status.live::before { content: "● "; color: var(--ok); }
#status.offline::before { content: "● "; color: var(--bad); }
input[type=search] { width: 280px; padding: 6px 10px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
main { padding: 16px 24px 40px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; margin-bottom: 20px; overflow: hidden; }
section > h2 { display: flex; align-items: center; gap: 12px; font-size: 15px; margin: 0; padding: 12px 16px; border-bottom: 1px solid var(--line); }
section > h2 .count { color: var(--muted); font-weight: normal; }
section > h2 button { margin-left: auto; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 8px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; font-weight: 600; color: var(--muted); background: var(--bg); }
tr:last-child td { border-bottom: 0; }
td.mono, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
td.wrap { word-break: break-all; }
.empty { padding: 16px; color: var(--muted); }
button { font: inherit; font-weight: 500; padding: 4px 12px; border-radius: 6px; border: 1px solid var(--accent); background: transparent; color: var(--accent); cursor: pointer; }
button:hover { background: var(--accent); color: var(--card); }
button:disabled { opacity: .4; cursor: default; background: transparent; color: var(--accent); }
button.link { border: 0; padding: 0; color: var(--accent); background: none; text-align: left; }
button.link:hover { text-decoration: underline; background: none; color: var(--accent); }
.deliveries { display: flex; flex-direction: column; gap: 4px; }
.delivery { display: inline-flex; flex-wrap: wrap; gap: 6px; align-items: baseline; padding: 2px 8px; border-radius: 6px; width: fit-content; max-width: 100%; }
.delivery .who { font-weight: 600; }
.delivery .how { font-size: 12px; }
.delivery .error { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; word-break: break-word; }
.delivery.delivered { color: var(--ok); background: var(--ok-bg); }
.delivery.retrying { color: var(--warn); background: var(--warn-bg); }
.delivery.dead { color: var(--bad); background: var(--bad-bg); }
.delivery.pending, .delivery.none { color: var(--idle); background: var(--idle-bg); }
tr.data td { background: var(--bg); }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font-size: 12px; }
.error-text { color: var(--bad); font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; word-break: break-word; }
#notice { position: fixed; right: 20px; bottom: 20px; padding: 10px 14px; border-radius: 8px; background: var(--fg); color: var(--bg); opacity: 0; transition: opacity .2s; }
#notice.shown { opacity: .95; }
#notice.bad { background: var(--bad); color: #fff; }
`;

/*
 * Everything the page shows comes from event data, which is user input: it only ever reaches the
 * document through text nodes and attribute values, never as markup. The CSP below (scripts and
 * styles pinned by hash) is a second line: injected markup could not run anything.
 */
const script = `
"use strict";
const RECENT = "/_local/events/recent";
const REDRIVE = "/_local/events/redrive";
const POLL_MS = 1500;
let latest = null;
let lastText = "";
let timer = 0;
const expanded = new Set();

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function clock(iso, withMs) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  const time = pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  const day = date.toDateString() === new Date().toDateString() ? "" : date.toLocaleDateString() + " ";
  return day + time + (withMs ? "." + pad(date.getMilliseconds(), 3) : "");
}

const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");

function describe(delivery) {
  switch (delivery.status) {
    case "delivered":
      return "delivered · " + plural(delivery.attempts, "attempt") + (delivery.redrives ? " · after " + plural(delivery.redrives, "redrive") : "");
    case "retrying":
      return "retrying · " + plural(delivery.attempts, "failed attempt") + (delivery.nextAttemptAt ? " · next at " + clock(delivery.nextAttemptAt, true) : "");
    case "dead":
      return "dead-lettered · " + plural(delivery.attempts, "attempt");
    default:
      return delivery.attempts > 0 ? "pending · " + plural(delivery.attempts, "failed attempt") : "pending";
  }
}

function deliveryChip(delivery) {
  const showError = delivery.lastError && delivery.status !== "delivered";
  return el(
    "div",
    { class: "delivery " + delivery.status, "data-subscriber": delivery.subscriber, "data-status": delivery.status, title: delivery.lastError || "" },
    el("span", { class: "who" }, delivery.subscriber),
    el("span", { class: "how" }, describe(delivery)),
    showError ? el("span", { class: "error" }, delivery.lastError) : null,
  );
}

function filterText() {
  return document.getElementById("filter").value.trim().toLowerCase();
}

function matches(item, needle) {
  if (!needle) return true;
  const fields = [item.type, item.source, item.correlationId, item.eventId, item.id].concat(item.deliveries.map((d) => d.subscriber));
  return fields.some((field) => typeof field === "string" && field.toLowerCase().includes(needle));
}

function setFilter(value) {
  document.getElementById("filter").value = value;
  render();
}

function correlationCell(id) {
  if (!id) return el("td", { class: "mono" }, "—");
  return el("td", { class: "mono wrap" }, el("button", { class: "link mono", title: "Show only this correlation id", onclick: () => setFilter(id) }, id));
}

function eventRows(item) {
  const open = expanded.has(item.id);
  const toggle = el("button", { class: "link", "aria-expanded": open ? "true" : "false", onclick: () => {
    if (expanded.has(item.id)) expanded.delete(item.id);
    else expanded.add(item.id);
    render();
  } }, open ? "hide data" : "data");
  const deliveries = item.deliveries.length > 0 ? item.deliveries.map(deliveryChip) : [el("div", { class: "delivery none" }, "no subscriber matched")];
  const row = el(
    "tr",
    { class: "event", "data-id": item.id, "data-event-id": item.eventId, "data-type": item.type },
    el("td", { class: "mono", title: item.time }, clock(item.time)),
    el("td", {}, el("strong", {}, item.type), el("div", {}, toggle)),
    el("td", { class: "mono" }, item.source),
    correlationCell(item.correlationId),
    el("td", { class: "mono wrap" }, item.eventId),
    el("td", {}, el("div", { class: "deliveries" }, deliveries)),
  );
  if (!open) return [row];
  return [row, el("tr", { class: "data" }, el("td", { colspan: 6 }, el("pre", {}, JSON.stringify(item.detail, null, 2))))];
}

function deadRow(dead) {
  return el(
    "tr",
    { class: "dead-letter", "data-id": dead.id, "data-subscriber": dead.subscriber },
    el("td", { class: "mono", title: dead.deadLetteredAt || "" }, clock(dead.deadLetteredAt || dead.time)),
    el("td", {}, el("strong", {}, dead.subscriber)),
    el("td", {}, dead.type),
    correlationCell(dead.correlationId),
    el("td", { class: "mono wrap" }, dead.eventId),
    el("td", {}, String(dead.attempts)),
    el("td", { class: "error-text" }, dead.lastError || ""),
    el("td", {}, el("button", { class: "redrive", onclick: (e) => redrive([dead.id], e.currentTarget) }, "Redrive")),
  );
}

function table(headings, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))), el("tbody", {}, rows));
}

function render() {
  if (!latest) return;
  const needle = filterText();
  const dead = latest.deadLetters.filter((d) => !needle || [d.type, d.source, d.correlationId, d.eventId, d.subscriber].some((f) => typeof f === "string" && f.toLowerCase().includes(needle)));
  const items = latest.items.filter((item) => matches(item, needle));

  document.getElementById("dead-count").textContent = latest.deadLetterCount > latest.deadLetters.length
    ? "(newest " + latest.deadLetters.length + " of " + latest.deadLetterCount + ")"
    : "(" + latest.deadLetterCount + ")";
  document.getElementById("redrive-all").disabled = latest.deadLetterCount === 0;
  document.getElementById("dead").replaceChildren(
    dead.length === 0
      ? el("div", { class: "empty" }, latest.deadLetterCount === 0 ? "No dead letters. Deliveries that run out of attempts land here." : "No dead letter matches the filter.")
      : table(["Dead-lettered", "Subscriber", "Type", "Correlation id", "Event id", "Attempts", "Last error", ""], dead.map(deadRow)),
  );

  const retrying = latest.items.reduce((n, item) => n + item.deliveries.filter((d) => d.status === "retrying").length, 0);
  document.getElementById("events-count").textContent =
    "(" + (needle ? items.length + " of " : "") + plural(latest.items.length, "event") + ", the last " + latest.limit + " kept" + (retrying ? "; " + retrying + " retrying" : "") + ")";
  document.getElementById("events").replaceChildren(
    items.length === 0
      ? el("div", { class: "empty" }, latest.items.length === 0 ? "No events yet. Anything published on the local bus shows up here." : "No event matches the filter.")
      : table(["Time", "Type", "Source", "Correlation id", "Event id", "Subscribers"], items.flatMap(eventRows)),
  );
}

function notice(message, bad) {
  const node = document.getElementById("notice");
  node.textContent = message;
  node.className = "shown" + (bad ? " bad" : "");
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => (node.className = ""), 3000);
}

function setStatus(live, message) {
  const node = document.getElementById("status");
  node.className = live ? "live" : "offline";
  node.textContent = message;
}

async function redrive(ids, button) {
  if (button) button.disabled = true;
  try {
    const response = await fetch(REDRIVE, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ids ? { ids } : {}) });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) notice("Redrive failed: " + ((body.error && body.error.message) || response.status), true);
    else notice("Redriven " + body.redriven + (body.redriven === 1 ? " delivery" : " deliveries"));
  } catch (error) {
    notice("Redrive failed: " + error.message, true);
  }
  await refresh();
}

async function refresh() {
  clearTimeout(timer);
  try {
    const response = await fetch(RECENT, { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const text = await response.text();
    setStatus(true, "live · updated " + clock(new Date().toISOString()));
    // Re-rendering only on change keeps buttons and selections steady between polls.
    if (text !== lastText) {
      lastText = text;
      latest = JSON.parse(text);
      render();
    }
  } catch (error) {
    setStatus(false, "cannot reach the local runtime (" + error.message + "); retrying");
  }
  // A hidden tab stops polling (each poll is a request in the dev server's log).
  if (!document.hidden) timer = setTimeout(refresh, POLL_MS);
}

document.getElementById("filter").addEventListener("input", render);
document.getElementById("redrive-all").addEventListener("click", (e) => redrive(undefined, e.currentTarget));
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
});
refresh();
`;

const body = `<header>
  <h1>Local events</h1>
  <span id="status">connecting…</span>
  <span class="spacer"></span>
  <input id="filter" type="search" placeholder="Filter: type, correlation id, subscriber…" aria-label="Filter events">
</header>
<main>
  <section aria-labelledby="dead-heading">
    <h2 id="dead-heading">Dead letters <span class="count" id="dead-count"></span><button id="redrive-all" disabled>Redrive all</button></h2>
    <div id="dead"></div>
  </section>
  <section aria-labelledby="events-heading">
    <h2 id="events-heading">Recent events <span class="count" id="events-count"></span></h2>
    <div id="events"></div>
  </section>
</main>
<div id="notice" role="status" aria-live="polite"></div>`;

const sha256 = (source: string) => `'sha256-${createHash("sha256").update(source).digest("base64")}'`;

/** The page's CSP: only its own script and style run, and it talks to this server only. */
export const eventsPageCsp = [
  "default-src 'none'",
  `script-src ${sha256(script)}`,
  `style-src ${sha256(style)}`,
  "connect-src 'self'",
  "img-src data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const eventsPageHtml = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Enclave · local events</title><link rel="icon" href="data:,">
<style>${style}</style></head>
<body>
${body}
<script>${script}</script>
</body></html>`;

/**
 * The local events page: `GET /_local/events` (HTML, self-contained) and the JSON it polls,
 * `GET /_local/events/recent`. Redrives go through the runtime's `POST /_local/events/redrive`.
 */
export function mountEventsPage(app: Hono<AppEnv>, bus: LocalBus): void {
  app.get("/_local/events", (c) => {
    c.header("content-security-policy", eventsPageCsp);
    c.header("x-content-type-options", "nosniff");
    c.header("cache-control", "no-store");
    return c.html(eventsPageHtml);
  });
  app.get("/_local/events/recent", (c) => {
    c.header("cache-control", "no-store");
    return c.json(recentEventsResponse(bus));
  });
}
