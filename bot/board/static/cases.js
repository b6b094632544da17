// The cases list: sorted like `!incidents`, filtered, searched, with ticking ages. The server
// filters and searches every case and sends the most urgent SHOWN with the count of all that
// match; live events go through the same filter here.

import { $, fill, h } from "./dom.js";
import { compareCases, label, since } from "./format.js";

export const SHOWN = 300; // a wall screen never needs more rows; the rest are one search away
const CLOSED = new Set(["resolved", "closed", "rejected"]);

export function readFilters() {
  return {
    filter: $("#f-filter").value,
    priority: $("#f-priority").value,
    area: $("#f-area").value.trim(),
    team: $("#f-team").value,
    q: $("#f-q").value.trim(),
  };
}

export function query(f) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) params.set(k, v);
  return params.toString();
}

const digits = (s) => String(s ?? "").replace(/\D/g, "");

/** The live events' filter: the same meaning as the server's query parameters. */
export function matches(c, f) {
  const open = !CLOSED.has(c.status);
  if (f.filter === "open" && !open) return false;
  if (f.filter === "unassigned" && (!open || c.team)) return false;
  if (f.filter === "overdue" && (!open || !c.overdue)) return false;
  if (f.priority && c.priority !== f.priority) return false;
  if (f.team && c.team !== f.team) return false;
  if (f.area && !String(c.location ?? "").toLowerCase().includes(f.area.toLowerCase())) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    const byCode = String(c.code).toLowerCase().includes(q);
    const byNumber = digits(q).length >= 3 && digits(c.peer).includes(digits(q));
    if (!byCode && !byNumber) return false;
  }
  return true;
}

function locationCell(c) {
  if (!c.location && c.lat == null) return h("span", { class: "muted" }, "no location yet");
  const exact = Boolean(c.location_exact);
  return h(
    "span",
    { class: exact ? "loc exact" : "loc approx", title: exact ? "exact fix (GPS/EXIF)" : "approximate: from the text" },
    h("span", { class: "loc-mark", "aria-hidden": "true" }, exact ? "◉" : "≈"),
    h("span", { class: "sr-only" }, exact ? "exact: " : "approximate: "),
    c.location || `${c.lat?.toFixed(4)}, ${c.lon?.toFixed(4)}`,
  );
}

function row(c, onOpen) {
  return h(
    "li",
    { class: `case p-${c.priority}${c.overdue ? " overdue" : ""}`, "data-code": c.code },
    h(
      "button",
      { class: "case-open", type: "button", onclick: () => onOpen(c.code), "aria-label": `Open case ${c.code}` },
      h("span", { class: `prio p-${c.priority}` }, label(c.priority).toUpperCase()),
      h("span", { class: "code" }, c.code),
      h("span", { class: "status" }, label(c.status), c.overdue ? h("b", { class: "overdue-tag" }, " OVERDUE") : null),
      h(
        "span",
        { class: "times" },
        h("span", {}, "waiting ", h("time", { "data-since": c.opened_at }, since(c.opened_at))),
        h("span", {}, "last contact ", h("time", { "data-since": c.last_contact_at }, since(c.last_contact_at)), " ago"),
      ),
      h("span", { class: "where" }, locationCell(c)),
      h(
        "span",
        { class: "facts" },
        h("span", {}, c.people == null ? "people ?" : `${c.people} people`),
        (c.needs ?? []).length ? h("span", { class: "needs" }, c.needs.join(", ")) : null,
        h("span", { class: "c-team" }, c.team ? `team ${c.team}` : "no team"),
        h("span", { class: "chan" }, `${c.channel}${c.language ? " · " + c.language : ""}`),
      ),
      c.summary ? h("span", { class: "summary" }, c.summary) : null,
    ),
  );
}

export class CaseList {
  constructor(onOpen) {
    this.cases = new Map();
    this.onOpen = onOpen;
    this.filters = readFilters();
    this.pending = 0;
    this.counts = { total: 0, by_priority: {} };
    this.rows = new WeakMap(); // case object -> its drawn row: a redraw builds changed rows only
  }

  /** The server's answer: the most urgent rows and the counts of every matching case. */
  load(data, filters) {
    this.filters = filters;
    this.cases = new Map(data.cases.map((c) => [c.code, c]));
    this.setCounts(data);
  }

  setCounts(data) {
    this.counts = { total: data.total ?? 0, by_priority: data.by_priority ?? {} };
    this.render();
  }

  upsert(c) {
    this.cases.set(c.code, c);
    // Many events in a burst (50 SMS/s) redraw once per frame, not once per event.
    if (!this.pending) this.pending = requestAnimationFrame(() => this.render());
  }

  visible() {
    return [...this.cases.values()].filter((c) => matches(c, this.filters)).sort(compareCases);
  }

  render() {
    this.pending = 0;
    const started = performance.now();
    const list = this.visible();
    // A live event replaces its case's object, so an unchanged case keeps its row element;
    // in a burst of new cases that mostly land below the first SHOWN, nothing is rebuilt.
    const rows = list.slice(0, SHOWN).map((c) => {
      let el = this.rows.get(c);
      if (!el) this.rows.set(c, (el = row(c, this.onOpen)));
      return el;
    });
    const ol = $("#cases");
    if (rows.length !== ol.children.length || rows.some((el, i) => ol.children[i] !== el)) fill(ol, rows);
    // Live cases can arrive before the next count: never claim fewer than are on screen.
    const total = Math.max(this.counts.total, list.length);
    const shown = Math.min(list.length, SHOWN);
    const more = shown < total ? ` (showing the ${shown} most urgent: narrow with filters or search)` : "";
    const parts = Object.entries(this.counts.by_priority).filter(([, n]) => n).map(([p, n]) => `${n.toLocaleString()} ${p}`);
    const count = $("#case-count");
    count.textContent = `${total.toLocaleString()} case${total === 1 ? "" : "s"}${more}`;
    count.title = parts.join(" · ");
    $("#cases-empty").hidden = list.length > 0;
    // How long one redraw takes (bench/bench_board_page.py observes it); only the last is kept,
    // so a board open for a whole shift does not pile up entries.
    performance.clearMeasures("board-render");
    performance.measure("board-render", { start: started });
  }
}

/** Every second: the ages and since-last-contact times tick without a redraw. */
export function tick() {
  for (const t of document.querySelectorAll("time[data-since]")) {
    const at = Number(t.dataset.since);
    t.textContent = at ? since(at) : "–";
  }
}
