// The teams panel: who is free, who is out on which case, where they are based.

import { $, fill, h } from "./dom.js";
import { label } from "./format.js";

const ORDER = { free: 0, available: 0, busy: 1, lent: 2 };

export function renderTeams(teams, onOpen) {
  const list = [...teams.values()].sort(
    (a, b) => (ORDER[a.status] ?? 3) - (ORDER[b.status] ?? 3) || a.id.localeCompare(b.id),
  );
  const free = list.filter((t) => ORDER[t.status] === 0).length;
  $("#team-count").textContent = `${free} of ${list.length} free`;
  fill(
    $("#teams"),
    list.map((t) =>
      h(
        "li",
        { class: `team t-${t.status}`, "data-team": t.id },
        h("span", { class: "team-id" }, t.id),
        h("span", { class: "tag" }, label(t.status)),
        h("span", { class: "muted" }, `${t.kind ?? ""} · base ${t.base ?? "?"}${t.capacity ? ` · ${t.capacity} seats` : ""}`),
        t.case ? h("button", { type: "button", class: "btn small", onclick: () => onOpen(t.case) }, t.case) : null,
      ),
    ),
  );
}
