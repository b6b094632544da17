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
    list.load(data, filters);
    showError("");
  } catch (err) {
    if (err instanceof ApiError) showError(`Cases could not be loaded: ${err.message}`);
    else throw err;
  }
}

/** The map shows every open case with a position, whatever the list's filter: its own light
 * list (code, priority, position), so a filter change does not reload it. */
async function loadMarkers(prefetched = null) {
  try {
    const data = await (prefetched ?? getJSON("/api/markers"));
    await map.load(data.markers);
  } catch (err) {
    if (err instanceof ApiError) showError(`The map could not be loaded: ${err.message}`);
    else throw err;
  }
}

let countTimer = 0;
/** Live events move the counts of cases not on screen too: ask for them again (counts only,
 * limit=0), at most once every few seconds however many events arrive. */
function refreshCounts() {
  if (countTimer) return;
  countTimer = setTimeout(async () => {
    countTimer = 0;
    const filters = readFilters();
    try {
      const data = await getJSON(`/api/cases?${query({ ...filters, limit: "0" })}`);
      if (query(filters) === query(list.filters)) list.setCounts(data);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
    }
  }, 3000);
}

async function loadTeams(prefetched = null) {
  const data = await (prefetched ?? getJSON("/api/teams"));
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
  panel?.open(code); // a row tapped in the instant before the rest of the page is built waits
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

/** Resolves after the browser has painted what is on screen now. */
const painted = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

async function main() {
  // Everything the first screen needs is asked for at once (one round trip, not five).
  const firstCases = getJSON(`/api/cases?${query(readFilters())}`);
  const firstMarkers = getJSON("/api/markers");
  const firstTeams = getJSON("/api/teams");
  for (const p of [firstCases, firstMarkers, firstTeams]) p.catch(() => {}); // reported where awaited
  // The list first: it is what a coordinator reads, and it needs nothing else.
  list = new CaseList(openCase);
  const listDrawn = loadCases(firstCases).then(() => performance.mark("board-list-drawn"));
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
      refreshCounts();
    },
    onTeam(t) {
      teams.set(t.id, t);
      map.upsertTeam(t);
      renderTeams(teams, openCase);
    },
    onBack() {
      loadCases();
      loadMarkers();
      loadTeams();
    },
  });
  // The pins (thousands) after the list and the map's frame are on screen.
  const pinsDrawn = Promise.all([listDrawn, painted()])
    .then(() => loadMarkers(firstMarkers))
    .then(() => performance.mark("board-pins-drawn"));
  await Promise.all([listDrawn, loadTeams(firstTeams), pinsDrawn]);
  refreshSitrep();
  setInterval(tick, 1000);
  setInterval(refreshSitrep, 5 * 60 * 1000);
  document.body.classList.add("ready");
}

main().catch((err) => {
  console.error(err);
  showError(`The board could not start: ${err?.message ?? err}`);
});
