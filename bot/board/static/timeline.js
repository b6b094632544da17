// A case's whole story, in order: messages in and out, model turns (passages given, tools called,
// what the backend decided), dispatches and audit entries. Text only: never markup from data.

import { h } from "./dom.js";
import { clock, label } from "./format.js";

function media(items) {
  // One attachment or a list of them (a Matrix message can carry several).
  const list = Array.isArray(items) ? items : items ? [items] : [];
  return list.map(one);
}

function one(m) {
  if (!m || !m.id) return null;
  const src = `/media/${encodeURIComponent(m.id)}`;
  if (m.kind === "audio") return h("audio", { controls: true, preload: "none", src, class: "media" });
  if (m.kind === "image") return h("img", { src, alt: "photo sent with the message", class: "media photo", loading: "lazy" });
  return h("a", { href: src, class: "media" }, `attachment (${m.mime ?? "file"})`);
}

function message(e) {
  const dir = e.kind === "in" ? "from the victim" : e.to === "coordinators" ? "to the coordinators" : "to the victim";
  return [
    h(
      "div",
      { class: "meta" },
      h("b", {}, e.kind === "in" ? "IN" : "OUT"),
      ` ${e.channel ?? ""} ${dir}`,
      e.status ? h("span", { class: "tag" }, label(e.status)) : null,
      e.parts > 1 ? h("span", { class: "tag" }, `${e.parts} SMS parts`) : null,
    ),
    e.text ? h("p", { class: "text" }, e.text) : null,
    e.lat != null && e.lon != null ? h("div", { class: "muted" }, `location fix ${e.lat}, ${e.lon}`) : null,
    media(e.media),
    e.error ? h("div", { class: "error" }, `send failed: ${e.error}`) : null,
  ];
}

function modelTurn(e) {
  const passages = e.passages ?? [];
  const calls = e.tool_calls ?? [];
  return [
    h("div", { class: "meta" }, h("b", {}, "MODEL"), " turn",
      e.seconds != null ? ` · ${Number(e.seconds).toFixed(1)} s` : "",
      e.ok === false ? h("span", { class: "tag" }, "failed") : null),
    e.error ? h("div", { class: "error" }, e.error) : null,
    passages.length
      ? h("details", {}, h("summary", {}, `${passages.length} protocol passage(s) given`),
          h("ul", {}, passages.map((p) => h("li", {}, p.title ?? "", p.source ? h("span", { class: "muted" }, ` — ${p.source}`) : null))))
      : h("div", { class: "muted" }, "no protocol passages given"),
    calls.map((c) =>
      h("div", { class: "tool" },
        h("code", {}, c.name ?? "?"),
        h("pre", {}, typeof c.arguments === "string" ? c.arguments : JSON.stringify(c.arguments ?? {}, null, 1)),
        h("div", { class: "decision" }, "backend: ", h("b", {}, typeof c.decision === "string" ? c.decision : JSON.stringify(c.decision ?? ""))),
        c.result ? h("pre", { class: "result" }, c.result) : null),
    ),
    (e.guard ?? []).map((g) => h("div", { class: "error" }, `guard: ${typeof g === "string" ? g : JSON.stringify(g)}`)),
    e.reply ? h("p", { class: "text" }, h("span", { class: "muted" }, "reply: "), e.reply) : null,
  ];
}

function dispatch(e) {
  return [
    h("div", { class: "meta" }, h("b", {}, "DISPATCH"), " ", h("span", { class: "tag" }, label(e.status))),
    h("div", {}, e.team ? `team ${e.team}` : "no team yet", e.by ? ` · by ${e.by}` : ""),
  ];
}

function audit(e) {
  return [
    h("div", { class: "meta" }, h("b", {}, "AUDIT"), ` ${e.action ?? ""}`),
    h("div", {}, e.actor ?? "", e.detail ? h("span", { class: "muted" }, ` — ${typeof e.detail === "string" ? e.detail : JSON.stringify(e.detail)}`) : ""),
  ];
}

const RENDER = { in: message, out: message, model_turn: modelTurn, dispatch, audit };

export function timeline(entries) {
  const sorted = [...entries].sort((a, b) => (a.at ?? 0) - (b.at ?? 0));
  return h(
    "ol",
    { class: "timeline" },
    sorted.map((e) =>
      h("li", { class: `entry k-${e.kind}` },
        h("time", { class: "when" }, clock(e.at)),
        (RENDER[e.kind] ?? ((x) => [h("pre", {}, JSON.stringify(x))]))(e)),
    ),
  );
}
