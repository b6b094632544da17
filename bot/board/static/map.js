// The map: Leaflet (served from the gateway, /vendor/leaflet), offline tiles when the gateway has
// an archive, else a plain grid with the district outline. Case pins are coloured by priority
// and clustered; exact fixes are solid, approximate (text) locations are hollow and dashed.

import { h } from "./dom.js";
import { label, priorityRank } from "./format.js";

const L = window.L;
const CLOSED = new Set(["resolved", "closed", "rejected"]);
const CHUNK_MS = 50;

/** A tile-free basemap: a lat/lon graticule drawn on canvas, so the map works with no archive. */
const Grid = L.GridLayer.extend({
  createTile(coords) {
    const tile = document.createElement("canvas");
    const size = this.getTileSize();
    tile.width = size.x;
    tile.height = size.y;
    const ctx = tile.getContext("2d");
    ctx.fillStyle = "#f4f1ea";
    ctx.fillRect(0, 0, size.x, size.y);
    ctx.strokeStyle = "#c9c2b3";
    ctx.lineWidth = 1;
    ctx.strokeRect(0.5, 0.5, size.x - 1, size.y - 1);
    const nw = this._map.unproject(coords.scaleBy(size), coords.z);
    ctx.fillStyle = "#6b6357";
    ctx.font = "11px sans-serif";
    ctx.fillText(`${nw.lat.toFixed(3)}, ${nw.lng.toFixed(3)}`, 4, 13);
    return tile;
  },
});

/** A pin's element is built only when Leaflet shows it: thousands of pins wait inside clusters
 * as data, and only the few on screen unclustered become DOM. */
const PinIcon = L.DivIcon.extend({
  createIcon(old) {
    const c = this.options.c;
    const exact = Boolean(c.location_exact);
    this.options.html = h(
      "div",
      { class: `pin p-${c.priority} ${exact ? "exact" : "approx"}`, title: `${c.code} ${exact ? "exact" : "approximate"}` },
      h("span", {}, String(c.code).slice(-3)),
    );
    return L.DivIcon.prototype.createIcon.call(this, old);
  },
});

function pinIcon(c) {
  return new PinIcon({ c, className: "pin-wrap", iconSize: [34, 34], iconAnchor: [17, 17] });
}

function teamIcon(t) {
  const el = h("div", { class: `team-pin t-${t.status}` }, t.id, h("small", {}, `${t.kind ?? ""} · ${label(t.status)}`));
  return L.divIcon({ html: el, className: "team-wrap", iconSize: [96, 38], iconAnchor: [48, 19] });
}

/** The team layer: a team at its base (name, kind, free/busy) and, for a team out on a case
 * with a position, a dashed line from its base to that case. Nothing without a base position. */
function teamLayerItems(t, onOpen) {
  if (t.lat == null || t.lon == null) return [];
  const base = [t.lat, t.lon];
  const marker = L.marker(base, { icon: teamIcon(t), title: `team ${t.id}`, zIndexOffset: -100, keyboard: true });
  marker.bindPopup(() =>
    h(
      "div",
      { class: "popup" },
      h("strong", {}, `team ${t.id} · ${t.kind ?? ""}`),
      h("div", {}, `${label(t.status)}${t.capacity ? ` · ${t.capacity} seats` : ""}`),
      h("div", { class: "muted" }, `base ${t.base ?? ""}`),
      t.case ? h("button", { type: "button", class: "btn", onclick: () => onOpen(t.case) }, `Open ${t.case}`) : null,
    ),
  );
  const items = [marker];
  if (t.case && t.case_at) {
    items.push(L.polyline([base, t.case_at], { className: "team-line", color: "#111", weight: 3, dashArray: "6 6", interactive: false }));
  }
  return items;
}

/** A cluster takes the colour of the most urgent case inside it. */
function clusterIcon(cluster) {
  const worst = cluster
    .getAllChildMarkers()
    .reduce((best, m) => Math.min(best, priorityRank(m.options.priority)), 9);
  const name = ["critical", "high", "medium", "low"][worst] ?? "low";
  const el = h("div", { class: `cluster p-${name}` }, String(cluster.getChildCount()));
  return L.divIcon({ html: el, className: "cluster-wrap", iconSize: [44, 44] });
}

function popup(c, onOpen) {
  return h(
    "div",
    { class: "popup" },
    h("strong", {}, `${c.code} · ${label(c.priority)}`),
    h("div", {}, c.location ?? ""),
    h("div", { class: "muted" }, c.location_exact ? "exact fix" : "approximate location"),
    h("button", { type: "button", class: "btn", onclick: () => onOpen(c.code) }, "Open case"),
  );
}

export class CaseMap {
  constructor(element, config, onOpen) {
    this.onOpen = onOpen;
    this.pins = new Map();
    this.teams = new Map();
    const tiles = config.tiles;
    // Clustering needs a bounded zoom: the archive's own range, or street level for the grid.
    const maxZoom = tiles?.maxzoom ?? 18;
    this.map = L.map(element, { zoomControl: true, attributionControl: false, maxZoom, minZoom: tiles?.minzoom ?? 2 });
    // A vector archive (pbf) needs a vector renderer plain Leaflet lacks: the grid instead.
    if (tiles && tiles.url && tiles.format !== "pbf") {
      L.tileLayer(tiles.url, {
        minZoom: tiles.minzoom ?? 0,
        maxZoom: tiles.maxzoom ?? 18,
        bounds: tiles.bounds ? [[tiles.bounds[1], tiles.bounds[0]], [tiles.bounds[3], tiles.bounds[2]]] : undefined,
      }).addTo(this.map);
      element.dataset.basemap = "tiles";
    } else {
      new Grid().addTo(this.map);
      element.dataset.basemap = "grid";
    }
    if (config.outline) {
      L.geoJSON(config.outline, { style: { color: "#1d3557", weight: 3, fill: false }, interactive: false }).addTo(this.map);
    }
    this.map.setView(config.center ?? [23.8, 90.4], config.zoom ?? 10);
    // Thousands of pins are clustered in slices of CHUNK_MS between frames (chunkedLoading):
    // the list and the map stay responsive while the clusterer works.
    this.loaded = () => {};
    this.loading = Promise.resolve();
    this.cluster = L.markerClusterGroup({
      iconCreateFunction: clusterIcon, maxClusterRadius: 50, showCoverageOnHover: false,
      chunkedLoading: true, chunkInterval: CHUNK_MS, chunkDelay: 10,
      chunkProgress: (done, total) => done === total && this.loaded(),
    });
    this.cluster.addTo(this.map);
    this.teamLayer = L.layerGroup().addTo(this.map);
    L.control.layers(null, { Cases: this.cluster, "Teams at their bases": this.teamLayer }, { collapsed: false }).addTo(this.map);
  }

  pin(c) {
    if (c.lat == null || c.lon == null || CLOSED.has(c.status)) return null;
    const marker = L.marker([c.lat, c.lon], { icon: pinIcon(c), priority: c.priority, keyboard: true, title: c.code });
    marker.bindPopup(() => popup(c, this.onOpen));
    this.pins.set(c.code, marker);
    return marker;
  }

  /** A live change: applied after a batch load in progress (its pins are all in by then). */
  upsert(c) {
    this.loading.then(() => this.replace(c));
  }

  replace(c) {
    const old = this.pins.get(c.code);
    if (old) this.cluster.removeLayer(old);
    this.pins.delete(c.code);
    const marker = this.pin(c);
    if (marker) this.cluster.addLayer(marker);
  }

  /** Thousands of pins go in as one batch: the clusterer builds its tree once, not per pin.
   * Resolves when every pin is in; a second load waits for the first (never two at once). */
  load(cases) {
    this.loading = this.loading.then(
      () =>
        new Promise((resolve) => {
          this.loaded = resolve;
          this.cluster.clearLayers();
          this.pins.clear();
          this.cluster.addLayers(cases.map((c) => this.pin(c)).filter(Boolean));
        }),
    );
    return this.loading;
  }

  upsertTeam(t) {
    const old = this.teams.get(t.id);
    if (old) this.teamLayer.removeLayer(old);
    this.teams.delete(t.id);
    const items = teamLayerItems(t, this.onOpen);
    if (!items.length) return;
    const group = L.layerGroup(items);
    this.teams.set(t.id, group);
    this.teamLayer.addLayer(group);
  }

  focus(c) {
    if (c.lat != null && c.lon != null) this.map.setView([c.lat, c.lon], Math.max(this.map.getZoom(), 14));
  }

  resize() {
    this.map.invalidateSize();
  }
}
