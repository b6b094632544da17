// The incident board's entry point: who am I, first load, then live events keep it current.

import { ApiError, getJSON, setCsrf } from "./api.js";
import { $, $$ } from "./dom.js";
import { CaseList, query, readFilters, tick } from "./cases.js";
import { CasePanel } from "./casepage.js";
import { connectLive } from "./live.js";
import { CaseMap } from "./map.js";
import { renderTeams } from "./teams.js";

const teams = new Map();
let list;
let map;
let panel;

function showError(message) {
  const bar = $("#error-bar");
  bar.textContent = message;
  bar.hidden = !message;
}

async function loadCases(prefetched = null) {
  const filters = readFilters();
  try {
    const data = await (prefetched ?? getJSON(`/api/cases?${query(filters)}`));
    list.load(data.cases, filters);
    // The map shows every open case with a position, whatever the list's filter.
    const all = filters.filter === "open" && !filters.priority && !filters.team && !filters.area && !filters.q
      ? data.cases
      : (await getJSON("/api/cases?filter=open")).cases;
    map.load(all);
    showError("");
  } catch (err) {
    if (err instanceof ApiError) showError(`Cases could not be loaded: ${err.message}`);
    else throw err;
  }
}

async function loadTeams() {
  const data = await getJSON("/api/teams");
  teams.clear();
  const select = $("#f-team");
  const chosen = select.value;
  select.replaceChildren(new Option("any team", ""));
  for (const t of data.teams) {
    teams.set(t.id, t);
    map.upsertTeam(t);
    select.append(new Option(t.id, t.id));
  }
  select.value = chosen;
  renderTeams(teams, openCase);
}

function openCase(code) {
  panel.open(code);
}

function focusCase(c) {
  document.body.dataset.view = "map";
  map.resize();
  map.focus(c);
}

function refreshSitrep() {
  $("#sitrep").src = `/api/sitrep.png?t=${Date.now()}`;
}

function wireViews() {
  // On a phone one view at a time; on a wall screen all of them (CSS decides).
  for (const tab of $$("[data-view-tab]")) {
    tab.addEventListener("click", () => {
      document.body.dataset.view = tab.dataset.viewTab;
      for (const t of $$("[data-view-tab]")) t.setAttribute("aria-pressed", String(t === tab));
      if (tab.dataset.viewTab === "map") map.resize();
      if (tab.dataset.viewTab === "sitrep") refreshSitrep();
    });
  }
}

function wireFilters() {
  let timer = 0;
  const reload = () => {
    clearTimeout(timer);
    timer = setTimeout(loadCases, 250);
  };
  for (const id of ["#f-filter", "#f-priority", "#f-team"]) $(id).addEventListener("change", reload);
  for (const id of ["#f-area", "#f-q"]) $(id).addEventListener("input", reload);
  $("#filters").addEventListener("submit", (e) => {
    e.preventDefault();
    loadCases();
  });
}

async function main() {
  // Everything the first screen needs is asked for at once (one round trip, not four).
  const firstCases = getJSON(`/api/cases?${query(readFilters())}`);
  firstCases.catch(() => {}); // its error is reported where it is awaited
  const [me, mapConfig] = await Promise.all([getJSON("/api/me"), getJSON("/api/map")]);
  setCsrf(me.csrf);
  $("#me-user").textContent = me.user;
  $("#me-role").textContent = me.role;
  document.body.dataset.role = me.role;
  $("#me-district").textContent = me.district ? `district ${me.district}` : "";
  $("#logout").addEventListener("click", async () => {
    // The server answers 303 to /login; wherever it lands, the board is left.
    try {
      await fetch("/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": me.csrf } });
    } finally {
      window.location.assign("/login");
    }
  });

  list = new CaseList(openCase);
  map = new CaseMap($("#map"), mapConfig, openCase);
  panel = new CasePanel({ me, teams, onFocus: focusCase });
  wireViews();
  wireFilters();
  $("#sitrep-refresh").addEventListener("click", refreshSitrep);

  connectLive({
    onCase(c) {
      list.upsert(c);
      map.upsert(c);
      panel.changed(c.code);
    },
    onTeam(t) {
      teams.set(t.id, t);
      map.upsertTeam(t);
      renderTeams(teams, openCase);
    },
    onBack() {
      loadCases();
      loadTeams();
    },
  });
  await Promise.all([loadCases(firstCases), loadTeams()]);
  refreshSitrep();
  setInterval(tick, 1000);
  setInterval(refreshSitrep, 5 * 60 * 1000);
  document.body.classList.add("ready");
}

main().catch((err) => {
  console.error(err);
  showError(`The board could not start: ${err?.message ?? err}`);
});
