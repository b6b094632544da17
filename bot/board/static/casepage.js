// The case panel: the facts, the actions this person may take, and the whole story.
// Coordinators approve/reject/assign; responders get only what their !commands allow
// (arrived, resolve, say). The server checks again: hiding a button is not the security.

import { caseAction, getJSON } from "./api.js";
import { $, fill, h } from "./dom.js";
import { label, since } from "./format.js";
import { timeline } from "./timeline.js";

const CLOSED = new Set(["resolved", "closed", "rejected"]);
const COORDINATOR_ONLY = new Set(["approve", "reject", "assign"]);

/** Free teams of the kind the case needs first, then other free teams, then busy ones. The
 * server's order (`team_choice`: free teams, right kind first) wins when it sent one. */
export function teamChoices(teams, c, choice) {
  if (Array.isArray(choice)) {
    const byId = new Map(teams.map((t) => [t.id, t]));
    const free = choice.map((id) => byId.get(id) ?? { id, status: "free" });
    return [...free, ...teams.filter((t) => !choice.includes(t.id)).sort((a, b) => a.id.localeCompare(b.id))];
  }
  const needs = (c.needs ?? []).join(" ").toLowerCase();
  const fits = (t) => (t.kind && needs.includes(String(t.kind).toLowerCase()) ? 0 : 1);
  const free = (t) => (t.status === "free" || t.status === "available" ? 0 : 1);
  return [...teams].sort((a, b) => free(a) - free(b) || fits(a) - fits(b) || a.id.localeCompare(b.id));
}

function teamSelect(teams, c, withAuto, choice) {
  const options = teamChoices(teams, c, choice).map((t) =>
    h("option", { value: t.id }, `${t.id} · ${t.kind ?? ""} · ${label(t.status)}${t.case ? " " + t.case : ""}`),
  );
  if (withAuto) options.unshift(h("option", { value: "" }, c.team_kind ? `first free ${c.team_kind} team (gateway picks)` : "first free team (gateway picks)"));
  return h("select", { name: "team", "aria-label": "team" }, options);
}

export class CasePanel {
  constructor({ me, teams, onFocus }) {
    this.me = me;
    this.teams = teams; // Map id → team, kept live by board.js
    this.onFocus = onFocus;
    this.code = null;
    this.el = $("#case-panel");
    $("#case-close").addEventListener("click", () => this.close());
  }

  allowed(action) {
    // The server lists what this viewer may do (/api/me "actions"); the role is the fallback.
    if (Array.isArray(this.me.actions)) return this.me.actions.includes(action);
    return this.me.role === "coordinator" || !COORDINATOR_ONLY.has(action);
  }

  async open(code) {
    this.code = code;
    document.body.classList.add("panel-open");
    this.el.hidden = false;
    fill($("#case-body"), h("p", { class: "muted" }, "Loading…"));
    await this.refresh();
    $("#case-close").focus();
  }

  close() {
    this.code = null;
    this.el.hidden = true;
    document.body.classList.remove("panel-open");
  }

  /** A live event about the open case reloads it (at most every 2 s). */
  changed(code) {
    if (code !== this.code || this.reloading) return;
    this.reloading = setTimeout(() => {
      this.reloading = 0;
      this.refresh();
    }, 2000);
  }

  async refresh() {
    const code = this.code;
    let data;
    try {
      data = await getJSON(`/api/cases/${encodeURIComponent(code)}`);
    } catch (err) {
      fill($("#case-body"), h("p", { class: "error", role: "alert" }, `Could not load ${code}: ${err.message}`));
      return;
    }
    if (code !== this.code) return;
    const c = { ...data.case, team_kind: data.team_kind };
    this.choice = data.team_choice;
    fill($("#case-title"), h("span", { class: `prio p-${c.priority}` }, label(c.priority).toUpperCase()), ` ${c.code}`);
    fill($("#case-body"), this.facts(c), this.actions(c), h("h3", {}, "What happened"), timeline(data.timeline ?? []));
  }

  facts(c) {
    const row = (k, ...v) => [h("dt", {}, k), h("dd", {}, ...v)];
    return h(
      "dl",
      { class: "facts-grid" },
      row("Status", label(c.status), c.overdue ? h("b", { class: "overdue-tag" }, " OVERDUE") : ""),
      row("Waiting", h("time", { "data-since": c.opened_at }, since(c.opened_at))),
      row("Last contact", h("time", { "data-since": c.last_contact_at }, since(c.last_contact_at)), " ago"),
      row("Location", c.location ?? "unknown", " ", h("span", { class: c.location_exact ? "tag exact" : "tag approx" }, c.location_exact ? "exact fix" : "approximate"),
        c.lat != null ? h("button", { type: "button", class: "btn small", onclick: () => this.onFocus(c) }, "Show on map") : ""),
      row("People", c.people ?? "unknown"),
      row("Needs", (c.needs ?? []).join(", ") || "–"),
      row("Team", c.team ?? "none"),
      row("Dispatch", c.dispatch ? `${label(c.dispatch.status)}${c.dispatch.team ? " · " + c.dispatch.team : ""}` : "none"),
      row("Contact", `${c.channel} ${c.peer ?? ""}`, c.language ? ` · ${c.language}` : ""),
      row("Summary", c.summary ?? ""),
    );
  }

  actions(c) {
    const result = h("p", { class: "action-result", role: "status", "aria-live": "polite" });
    const run = async (action, body, button) => {
      button.disabled = true;
      result.className = "action-result pending";
      result.textContent = `${action}…`;
      try {
        const answer = await caseAction(c.code, action, body);
        result.className = "action-result ok";
        result.textContent = answer.message ?? "done";
        this.changed(c.code);
      } catch (err) {
        result.className = "action-result error";
        result.textContent = `Not done: ${err.message}`;
      } finally {
        button.disabled = false;
      }
    };
    const form = (action, text, fields, body) => {
      if (!this.allowed(action)) return null;
      const button = h("button", { type: "submit", class: `btn act-${action}`, "data-action": action }, text);
      return h("form", {
        class: `action a-${action}`,
        onsubmit: (ev) => {
          ev.preventDefault();
          run(action, body(ev.currentTarget), button);
        },
      }, fields, button);
    };
    const teams = [...this.teams.values()];
    const pending = c.dispatch && c.dispatch.status === "pending_approval";
    const open = !CLOSED.has(c.status);
    const items = [];
    if (pending) {
      items.push(form("approve", "Approve", teamSelect(teams, c, true, this.choice), (f) => (f.elements.team.value ? { team: f.elements.team.value } : {})));
      items.push(form("reject", "Reject", h("input", { name: "reason", required: true, placeholder: "reason (sent to the victim)", "aria-label": "reason" }), (f) => ({ reason: f.elements.reason.value })));
    }
    if (open) {
      items.push(form("assign", c.team ? "Reassign" : "Assign", teamSelect(teams, c, false, this.choice), (f) => ({ team: f.elements.team.value })));
      if (c.team) items.push(form("arrived", "Team arrived", null, () => ({})));
      items.push(form("resolve", "Resolve", h("input", { name: "note", placeholder: "note (optional)", "aria-label": "note" }), (f) => (f.elements.note.value ? { note: f.elements.note.value } : {})));
      items.push(form("say", "Send to victim", h("input", { name: "text", required: true, maxlength: 600, placeholder: "message to the victim", "aria-label": "message to the victim" }), (f) => ({ text: f.elements.text.value })));
    }
    const shown = items.filter(Boolean);
    if (!shown.length) return h("p", { class: "muted" }, open ? "No actions for your role." : "This case is closed.");
    return h("section", { class: "actions" }, h("h3", {}, "Act"), shown, result);
  }
}
