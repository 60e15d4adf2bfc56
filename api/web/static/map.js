/* floodwarn analysts' map: runs, alerts, settlements, collective centres, evacuation flows,
 * flood depth, time of first flooding and reach return periods on one page, offline.
 * Spanish first, English switch. The API key lives in sessionStorage (this tab only) and goes
 * in the X-API-Key header, never in a URL. The collective centres' reported state and the
 * site managers' screens live in sites.js (the `Sites` object, loaded before this file). */
"use strict";

const LEVEL_COLOURS = { verde: "#2e7d32", amarilla: "#f2c400", naranja: "#ef6c00", roja: "#c62828" };
const LEVEL_LETTERS = { verde: "V", amarilla: "A", naranja: "N", roja: "R" };
const LEVEL_ORDER = ["verde", "amarilla", "naranja", "roja"];
const CENTRE_COLOURS = { safe: "#1565c0", at_risk: "#ef6c00", unsafe: "#c62828" };
const RETURN_PERIOD_COLOURS = [[0, "#a3acb9"], [2, "#4fc3f7"], [5, "#fdd835"], [10, "#fb8c00"],
  [25, "#e53935"], [50, "#ad1457"], [100, "#4a148c"]];
const POLL_MS = 10000;
const KEY_STORE = "floodwarn.key";
const LANG_STORE = "floodwarn.lang";
const TIME_ZONE = "America/El_Salvador";

const TEXT = {
  es: {
    title: "floodwarn — riesgo de inundación", run: "Corrida", no_runs: "sin corridas",
    enter_key: "Ingresar clave", leave: "Salir", key_title: "Clave de acceso",
    key_help: "La clave se guarda solo mientras esta pestaña esté abierta.",
    cancel: "Cancelar", enter: "Entrar", key_refused: "Clave no válida.",
    layers: "Capas", alerts_in_force: "Alertas vigentes", first_flooding_by: "Inundado a la hora",
    public_view: "Vista pública: solo las alertas vigentes. Ingrese una clave para ver corridas y asentamientos.",
    no_alerts: "No hay alertas vigentes.",
    role: { analyst: "analista", admin: "administración", committee: "comité", site_manager: "gestión de albergue" },
    layer: {
      hillshade: "Relieve (modelo de terreno)", municipalities: "Municipios por nivel de alerta",
      depth: "Profundidad de inundación (m)", first_flooding: "Hora de primera inundación",
      reaches: "Ríos: periodo de retorno del pico", flows: "Flujos de evacuación",
      centres: "Centros colectivos (albergues)", settlements: "Asentamientos por nivel",
      sites: "Albergues: estado informado",
    },
    level: { verde: "verde", amarilla: "amarilla", naranja: "naranja", roja: "roja" },
    no_alert: "sin alerta",
    status: { safe: "seguro", at_risk: "en riesgo", unsafe: "inseguro" },
    rp_under2: "< 2 años", rp_years: (y) => `≥ ${y} años`,
    flow_legend: "ancho según personas", centre_legend: "tamaño según capacidad",
    synthetic: "SIMULACRO / DATOS SINTÉTICOS: esta corrida usa terreno o lluvia sintéticos; no es un pronóstico real.",
    exercise: "SIMULACRO: las alertas vigentes son de un ejercicio, no de un pronóstico real.",
    sent: "emitida", expires: "vence", cap: "mensaje CAP",
    depth: "Profundidad máxima", people_exposed: "Personas expuestas", population: "Población",
    hours_to_flooding: "Horas hasta la inundación", return_period: "Periodo de retorno",
    flooded_share: "Parte inundada", reason: "Motivo del nivel", municipality: "Municipio",
    destinations: "Destinos de evacuación", unmet: "Sin albergue disponible",
    evacuees: "Personas a evacuar", none: "ninguno",
    capacity: "Capacidad", occupancy: "Ocupación", status_label: "Estado", kind: "Tipo",
    site_depth: "Profundidad en el sitio", origins: "Personas que llegan de",
    reach: "Tramo de río", strahler: "Orden de Strahler", area: "Área de drenaje",
    peak: "Caudal pico", hours_to_peak: "Horas hasta el pico", discharge: "Caudal (m³/s)",
    member: "miembro", members_spread: "dispersión de miembros (10–90 %)", median: "mediana",
    years: "años", hours: "h", never: "no se inunda", loading: "cargando…",
    run_status: { queued: "en cola", running: "en curso", succeeded: "terminada", failed: "fallida" },
    run_synthetic: "SINTÉTICA", forecast_hour: (h, t) => `hora ${h} (${t})`,
    new_run: "Nueva corrida publicada: mapa actualizado.",
    kinds: { school: "escuela", health_unit: "unidad de salud", hospital: "hospital (no es albergue)", church: "iglesia", hall: "salón comunal", other: "otro edificio público" },
    what_to_do: "Qué hacer", onset: "Inicio esperado", margin_depth: "Agua alrededor del sitio",
    at: "a las", still_rising: "aún sube al final del pronóstico", cap_xml: "mensaje CAP (XML)",
    committee_scope: (m) => `Comité de ${m}: sus asentamientos, centros y alertas; ríos y profundidad se ven en todo el país.`,
    panel: "Panel", key_label: "Clave de acceso",
  },
  en: {
    title: "floodwarn — flood risk", run: "Run", no_runs: "no runs",
    enter_key: "Enter key", leave: "Sign out", key_title: "Access key",
    key_help: "The key is kept only while this tab is open.",
    cancel: "Cancel", enter: "Enter", key_refused: "Key not valid.",
    layers: "Layers", alerts_in_force: "Alerts in force", first_flooding_by: "Flooded by hour",
    public_view: "Public view: alerts in force only. Enter a key to see runs and settlements.",
    no_alerts: "No alerts in force.",
    role: { analyst: "analyst", admin: "administration", committee: "committee", site_manager: "site manager" },
    layer: {
      hillshade: "Relief (terrain model)", municipalities: "Municipalities by alert level",
      depth: "Flood depth (m)", first_flooding: "Time of first flooding",
      reaches: "Rivers: return period of the peak", flows: "Evacuation flows",
      centres: "Collective centres (shelters)", settlements: "Settlements by level",
      sites: "Shelters: reported state",
    },
    level: { verde: "green", amarilla: "yellow", naranja: "orange", roja: "red" },
    no_alert: "no alert",
    status: { safe: "safe", at_risk: "at risk", unsafe: "unsafe" },
    rp_under2: "< 2 years", rp_years: (y) => `≥ ${y} years`,
    flow_legend: "width by people", centre_legend: "size by capacity",
    synthetic: "EXERCISE / SYNTHETIC DATA: this run uses synthetic terrain or rain; it is not a real forecast.",
    exercise: "EXERCISE: the alerts in force come from a drill, not a real forecast.",
    sent: "sent", expires: "expires", cap: "CAP message",
    depth: "Maximum depth", people_exposed: "People exposed", population: "Population",
    hours_to_flooding: "Hours to flooding", return_period: "Return period",
    flooded_share: "Share flooded", reason: "Reason for the level", municipality: "Municipality",
    destinations: "Evacuation destinations", unmet: "No shelter available",
    evacuees: "People to evacuate", none: "none",
    capacity: "Capacity", occupancy: "Occupancy", status_label: "Status", kind: "Kind",
    site_depth: "Depth at the site", origins: "People arriving from",
    reach: "River reach", strahler: "Strahler order", area: "Drainage area",
    peak: "Peak discharge", hours_to_peak: "Hours to peak", discharge: "Discharge (m³/s)",
    member: "member", members_spread: "members' spread (10–90 %)", median: "median",
    years: "years", hours: "h", never: "does not flood", loading: "loading…",
    run_status: { queued: "queued", running: "running", succeeded: "finished", failed: "failed" },
    run_synthetic: "SYNTHETIC", forecast_hour: (h, t) => `hour ${h} (${t})`,
    new_run: "New run published: map updated.",
    kinds: { school: "school", health_unit: "health unit", hospital: "hospital (not a shelter)", church: "church", hall: "community hall", other: "other public building" },
    what_to_do: "What to do", onset: "Expected start", margin_depth: "Water around the site",
    at: "at", still_rising: "still rising at the end of the forecast", cap_xml: "CAP message (XML)",
    committee_scope: (m) => `Committee of ${m}: your settlements, centres and alerts; rivers and depth show for the whole country.`,
    panel: "Panel", key_label: "Access key",
  },
};

const state = {
  lang: sessionStorage.getItem(LANG_STORE) || "es",
  key: sessionStorage.getItem(KEY_STORE),
  me: null, runs: [], runId: null, followLatest: true, timeline: null,
  alerts: { version: -1, alerts: [], exercise: false },
  settlements: null, centres: null, evacuation: [], reaches: null, legend: null,
  visible: { hillshade: true, municipalities: true, depth: true, first_flooding: false,
             reaches: true, flows: true, centres: true, settlements: true, sites: false },
  // Collective centres with their latest report (GET /sites), loaded when first shown.
  sites: null, siteId: null,
  selected: null, chart: null, prefetched: null, notice: null,
};
const t = (key) => TEXT[state.lang][key];
/* A site manager's key reads its own sites only: no runs, settlements or rivers. */
const seesRuns = () => Boolean(state.me) && state.me.role !== "site_manager";
const $ = (id) => document.getElementById(id);
let map;
let markUsable;
const usable = new Promise((resolve) => { markUsable = resolve; });

/* ---------- talking to the service ---------- */

class HttpError extends Error {
  constructor(status, body) { super(`${status}: ${body}`); this.status = status; }
}

async function api(path, { keyed = true } = {}) {
  const headers = {};
  if (keyed && state.key) headers["X-API-Key"] = state.key;
  const response = await fetch(path, { headers, cache: "no-cache" });
  if (!response.ok) throw new HttpError(response.status, await response.text());
  return response.json();
}

const emptyCollection = () => ({ type: "FeatureCollection", features: [] });

/* ---------- formatting ---------- */

function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return Number(value).toLocaleString(state.lang === "es" ? "es-SV" : "en-US",
    { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
function when(iso) {
  if (!iso) return "—";
  const date = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(iso) ? iso : iso + "Z");
  return date.toLocaleString(state.lang === "es" ? "es-SV" : "en-US",
    { timeZone: TIME_ZONE, dateStyle: "short", timeStyle: "short" }) + " (UTC−6)";
}
/* "25.0 h (1/12/26, 4:00 a. m.)": hours counted from the forecast's start, with the clock time. */
function hoursWithClock(hours) {
  if (hours === null || hours === undefined) return t("never");
  const clock = state.timeline ? ` (${when(new Date(Date.parse(state.timeline.start) + hours * 3600e3).toISOString())})` : "";
  return `${number(hours, 1)} ${t("hours")}${clock}`;
}

function levelBadge(level) {
  const span = document.createElement("span");
  span.className = `level-badge level-${level}`;
  span.textContent = `${LEVEL_LETTERS[level]} · ${t("level")[level]}`;
  return span;
}
function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function factsTable(rows) {
  return "<table class=facts>" + rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${v}</td></tr>`).join("") + "</table>";
}

/* ---------- symbols drawn on a canvas (no glyph server: labels and level marks are images) ---------- */

function levelIcon(level) {
  const size = 30, c = document.createElement("canvas");
  c.width = c.height = size * 2;
  const g = c.getContext("2d");
  g.scale(2, 2);
  g.fillStyle = LEVEL_COLOURS[level];
  g.strokeStyle = "#fff";
  g.lineWidth = 2;
  g.beginPath();
  // Shape as well as colour and letter: circle, triangle, diamond, square.
  if (level === "verde") g.arc(15, 15, 11, 0, 2 * Math.PI);
  else if (level === "amarilla") { g.moveTo(15, 2); g.lineTo(28, 27); g.lineTo(2, 27); g.closePath(); }
  else if (level === "naranja") { g.moveTo(15, 1); g.lineTo(29, 15); g.lineTo(15, 29); g.lineTo(1, 15); g.closePath(); }
  else g.rect(3, 3, 24, 24);
  g.fill(); g.stroke();
  g.fillStyle = level === "amarilla" ? "#222" : "#fff";
  g.font = "bold 13px sans-serif";
  g.textAlign = "center"; g.textBaseline = "middle";
  g.fillText(LEVEL_LETTERS[level], 15, level === "amarilla" ? 19 : 15.5);
  return g.getImageData(0, 0, size * 2, size * 2);
}

function labelImage(text) {
  const c = document.createElement("canvas"), g = c.getContext("2d");
  g.font = "600 12px sans-serif";
  const width = Math.ceil(g.measureText(text).width) + 8;
  c.width = width * 2; c.height = 36;
  g.scale(2, 2);
  g.font = "600 12px sans-serif";
  g.lineWidth = 3; g.strokeStyle = "rgba(255,255,255,.95)"; g.fillStyle = "#1b1f24";
  g.textBaseline = "middle";
  g.strokeText(text, 4, 9); g.fillText(text, 4, 9);
  return g.getImageData(0, 0, c.width, c.height);
}

/* ---------- the map ---------- */

function tileUrl(layer) {
  if (!state.runId) return [];
  const hour = layer === "first_flooding" ? `?hour=${$("hour-slider").value}` : "";
  return [`${location.origin}/runs/${state.runId}/tiles/${layer}/{z}/{x}/{y}.png${hour}`];
}

function buildMap() {
  map = new maplibregl.Map({
    container: "map",
    // No fades: each fade is frames to draw, and without a GPU a frame is costly.
    fadeDuration: 0,
    bounds: [[-90.2, 13.1], [-87.6, 14.5]],
    maxBounds: [[-93.5, 11.0], [-84.0, 16.8]],
    attributionControl: { compact: true, customAttribution: "geoBoundaries CC BY 4.0 · GeoNames CC BY 4.0 · MINSAL" },
    transformRequest: (url) => {
      // The key goes in a header, only to this service's run resources.
      if (state.key && url.startsWith(`${location.origin}/runs/`)) {
        return { url, headers: { "X-API-Key": state.key } };
      }
      return { url };
    },
    style: {
      version: 8,
      sources: {
        countries: { type: "geojson", data: "/map/boundaries/country.geojson" },
        departments: { type: "geojson", data: "/map/boundaries/departments.geojson" },
        municipalities: { type: "geojson", data: "/map/boundaries/municipalities.geojson", promoteId: "id" },
        hillshade: { type: "raster", tiles: [`${location.origin}/terrain/tiles/hillshade/{z}/{x}/{y}.png`], tileSize: 256, maxzoom: 13 },
      },
      layers: [
        { id: "sea", type: "background", paint: { "background-color": "#c9dbe6" } },
        { id: "countries-fill", type: "fill", source: "countries", paint: { "fill-color": ["case", ["get", "el_salvador"], "#f4f1ea", "#e6e3dc"] } },
        { id: "hillshade", type: "raster", source: "hillshade", paint: { "raster-opacity": 0.55, "raster-fade-duration": 0 } },
        { id: "municipalities-fill", type: "fill", source: "municipalities", paint: { "fill-opacity": 0.55, "fill-color": ["match", ["coalesce", ["feature-state", "level"], "none"], "amarilla", LEVEL_COLOURS.amarilla, "naranja", LEVEL_COLOURS.naranja, "roja", LEVEL_COLOURS.roja, "rgba(0,0,0,0)"] } },
        { id: "municipalities-line", type: "line", source: "municipalities", paint: { "line-color": "#8a8f98", "line-width": 0.5 } },
        { id: "departments-line", type: "line", source: "departments", paint: { "line-color": "#5a5f68", "line-width": 1.2 } },
        { id: "countries-line", type: "line", source: "countries", paint: { "line-color": "#3a3f48", "line-width": 1.6 } },
      ],
    },
  });
  map.addControl(new maplibregl.NavigationControl(), "top-left");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
  // Layers can be added once the style is parsed; the first full render need not be awaited.
  return new Promise((resolve) => (map.isStyleLoaded() ? resolve() : map.once("style.load", resolve)));
}

function addRunLayers() {
  for (const level of LEVEL_ORDER) map.addImage(`level-${level}`, levelIcon(level), { pixelRatio: 2 });
  for (const id of ["reaches", "flows", "centres", "settlements"]) {
    map.addSource(id, { type: "geojson", data: emptyCollection() });
  }
  const rpColour = ["step", ["get", "return_period_class"], RETURN_PERIOD_COLOURS[0][1]];
  for (const [years, colour] of RETURN_PERIOD_COLOURS.slice(1)) rpColour.push(years, colour);
  map.addLayer({ id: "reaches", type: "line", source: "reaches", layout: { "line-cap": "round" },
    paint: { "line-color": rpColour, "line-width": ["interpolate", ["linear"], ["get", "strahler"], 3, 0.8, 7, 3.5] } });
  map.addLayer({ id: "flows", type: "line", source: "flows",
    paint: { "line-color": "#6a1b9a", "line-opacity": 0.7, "line-dasharray": [2, 1],
             "line-width": ["interpolate", ["linear"], ["get", "people"], 10, 1, 1000, 5] } });
  map.addLayer({ id: "centres", type: "circle", source: "centres",
    paint: { "circle-color": ["match", ["get", "status"], "unsafe", CENTRE_COLOURS.unsafe, "at_risk", CENTRE_COLOURS.at_risk, CENTRE_COLOURS.safe],
             "circle-radius": ["interpolate", ["linear"], ["get", "capacity"], 0, 3, 300, 8],
             "circle-stroke-color": "#fff", "circle-stroke-width": 1 } });
  Sites.addLayer();
  // Names of places in naranja or roja are always drawn (over anything); the others go under
  // the level symbols in placement, so they never hide a symbol.
  const severe = ["in", ["get", "level"], ["literal", ["naranja", "roja"]]];
  const labelLayout = { "icon-image": ["concat", "label-", ["to-string", ["id"]]], "icon-anchor": "left",
    "icon-offset": [17, 0], "icon-optional": true };
  map.addLayer({ id: "settlement-labels", type: "symbol", source: "settlements", minzoom: 8.5,
    filter: ["!", severe], layout: { ...labelLayout, "symbol-sort-key": ["match", ["get", "level"], "amarilla", 0, 1] } });
  map.addLayer({ id: "settlements", type: "symbol", source: "settlements",
    layout: { "icon-image": ["concat", "level-", ["get", "level"]], "icon-allow-overlap": true,
              "symbol-sort-key": ["match", ["get", "level"], "roja", 0, "naranja", 1, "amarilla", 2, 3],
              "icon-size": ["match", ["get", "level"], "verde", 0.7, 1] } });
  map.addLayer({ id: "settlement-labels-severe", type: "symbol", source: "settlements", minzoom: 7.5,
    filter: severe, layout: { ...labelLayout, "icon-allow-overlap": true, "icon-ignore-placement": true } });

  // Name labels are drawn when first shown (zoomed in), not all at once.
  map.on("styleimagemissing", (event) => {
    const match = /^label-(\d+)$/.exec(event.id);
    const feature = match && state.settlements?.features.find((f) => String(f.id) === match[1]);
    if (feature && !map.hasImage(event.id)) map.addImage(event.id, labelImage(feature.properties.name), { pixelRatio: 2 });
  });
  for (const id of ["settlements", "sites", "centres", "reaches", "municipalities-fill"]) {
    map.on("mouseenter", id, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", id, () => { map.getCanvas().style.cursor = ""; });
  }
  map.on("click", (event) => {
    const layers = ["settlements", "sites", "centres", "reaches", "municipalities-fill"].filter((id) => map.getLayer(id) && state.visible[layerKey(id)]);
    let hits;
    try {
      hits = map.queryRenderedFeatures(event.point, { layers });
    } catch (error) { // MapLibre mid-update of a source: the next click finds it
      console.warn("query failed", error);
      return;
    }
    if (!hits.length) return;
    const hit = hits[0];
    if (hit.layer.id === "settlements") showSettlement(hit.id ?? hit.properties.id);
    else if (hit.layer.id === "sites") Sites.showSite(hit.properties.site_id);
    else if (hit.layer.id === "centres") showCentre(hit.properties.id);
    else if (hit.layer.id === "reaches") showReach(hit.properties.reach_id);
    else showMunicipality(hit.properties.id);
  });
}

/* Run rasters: added once a run is chosen (a raster source needs a tile address). */
function showRunRaster(id) {
  if (map.getSource(id)) { map.getSource(id).setTiles(tileUrl(id)); return; }
  map.addSource(id, { type: "raster", tiles: tileUrl(id), tileSize: 256, minzoom: 5, maxzoom: 14 });
  map.addLayer({ id, type: "raster", source: id, layout: { visibility: state.visible[id] ? "visible" : "none" },
    paint: { "raster-opacity": 0.85, "raster-fade-duration": 0 } }, "reaches");
}

const layerKey = (id) => (id === "municipalities-fill" ? "municipalities" : id.startsWith("settlement") ? "settlements" : id);
const LAYER_IDS = { hillshade: ["hillshade"], municipalities: ["municipalities-fill"], depth: ["depth"],
  first_flooding: ["first_flooding"], reaches: ["reaches"], flows: ["flows"], centres: ["centres"], sites: ["sites"],
  settlements: ["settlements", "settlement-labels", "settlement-labels-severe"] };
const RUN_LAYERS = ["depth", "first_flooding", "reaches", "flows", "centres", "settlements"];

function applyVisibility() {
  for (const [key, ids] of Object.entries(LAYER_IDS)) {
    for (const id of ids) {
      if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", state.visible[key] ? "visible" : "none");
    }
  }
  $("time-control").hidden = !(state.visible.first_flooding && state.runId);
  if (state.visible.sites && state.me) Sites.ensureLoaded();
}

/* ---------- layers panel and legends ---------- */

function legendItem(colour, text, kind = "swatch") {
  return `<span><i class="swatch ${kind === "line" ? "line" : ""}" style="background:${colour}"></i>${escapeHtml(text)}</span>`;
}
function rasterLegend(layer) {
  // The tile service's own colour map (/tiles/legend.json), so legend and tiles never differ.
  const legend = state.legend?.[layer];
  if (!legend?.stops) return "";
  const items = legend.stops.filter((s) => !/^#[0-9a-f]{6}00$/i.test(s.color))
    .map((s) => legendItem(s.color.slice(0, 7), s.label?.[state.lang] ?? String(s.value)));
  if (legend.not_drawn) items.push(`<span class="note">${escapeHtml(legend.not_drawn[state.lang])}</span>`);
  return items.join("");
}
function legendFor(key) {
  switch (key) {
    case "municipalities": return [...LEVEL_ORDER.slice(1).map((l) => legendItem(LEVEL_COLOURS[l], t("level")[l])), legendItem("transparent", t("no_alert"))].join("");
    case "settlements": return LEVEL_ORDER.map((l) => `<span>${levelBadge(l).outerHTML}</span>`).join("");
    case "sites": return Sites.legend();
    case "centres": return Object.entries(CENTRE_COLOURS).map(([s, c]) => legendItem(c, t("status")[s])).join("") + `<span>${t("centre_legend")}</span>`;
    case "flows": return legendItem("#6a1b9a", t("flow_legend"), "line");
    case "reaches": return RETURN_PERIOD_COLOURS.map(([y, c]) => legendItem(c, y === 0 ? t("rp_under2") : t("rp_years")(y), "line")).join("");
    case "depth": case "first_flooding": case "hillshade": return rasterLegend(key);
    default: return "";
  }
}
function renderLayerList() {
  const runLayersAllowed = seesRuns();
  const keys = ["settlements", "sites", "centres", "flows", "reaches", "depth", "first_flooding", "municipalities", "hillshade"];
  $("layer-list").innerHTML = keys.filter((k) => (runLayersAllowed || !RUN_LAYERS.includes(k)) && (k !== "sites" || state.me)).map((k) => `
    <div class="layer"><label><input type="checkbox" data-layer="${k}" ${state.visible[k] ? "checked" : ""}> ${escapeHtml(t("layer")[k])}</label>
    <div class="legend" data-legend="${k}">${legendFor(k)}</div></div>`).join("");
  for (const box of $("layer-list").querySelectorAll("input[data-layer]")) {
    box.addEventListener("change", () => { state.visible[box.dataset.layer] = box.checked; applyVisibility(); });
  }
}

/* ---------- alerts ---------- */

function visibleAlerts() {
  const all = state.alerts.alerts;
  if (state.me?.role === "committee") return all.filter((a) => a.municipality_id === state.me.municipality_id);
  return all;
}
function renderAlerts() {
  const alerts = visibleAlerts().slice().sort((a, b) => LEVEL_ORDER.indexOf(b.level) - LEVEL_ORDER.indexOf(a.level) || a.municipality.localeCompare(b.municipality));
  $("alert-count").textContent = `(${alerts.length})`;
  $("alerts-note").textContent = !state.me ? t("public_view") : state.me.role === "committee" ? t("committee_scope")(state.me.municipality) : "";
  const list = $("alert-list");
  list.innerHTML = "";
  if (!alerts.length) { list.innerHTML = `<li class="none">${t("no_alerts")}</li>`; }
  for (const alert of alerts) {
    const item = document.createElement("li");
    item.style.borderLeftColor = LEVEL_COLOURS[alert.level];
    item.dataset.municipality = alert.municipality_id;
    item.append(levelBadge(alert.level), ` ${alert.municipality}, ${alert.department}`);
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.innerHTML = `${escapeHtml(alert.headline)}`
      + (alert.instruction ? `<br><strong>${t("what_to_do")}:</strong> ${escapeHtml(alert.instruction)}` : "")
      + (alert.onset ? `<br>${t("onset")}: ${escapeHtml(when(alert.onset))}` : "")
      + `<br>${t("sent")} ${escapeHtml(when(alert.sent))} · ${t("expires")} ${escapeHtml(when(alert.expires))} · <a href="${escapeHtml(alert.cap_url)}" target="_blank" rel="noopener">${t("cap_xml")}</a>`;
    item.append(meta);
    item.addEventListener("click", (e) => { if (e.target.tagName !== "A") zoomToMunicipality(alert.municipality_id); });
    list.append(item);
  }
  // Levels as feature state: a new publication recolours without re-reading the polygons.
  map.removeFeatureState({ source: "municipalities" });
  for (const alert of state.alerts.alerts) {
    map.setFeatureState({ source: "municipalities", id: alert.municipality_id }, { level: alert.level });
  }
  renderBanner();
}
function fitMunicipality(id) {
  const feature = state.boundaries?.features.find((f) => f.properties.id === id);
  if (!feature) return;
  const bounds = new maplibregl.LngLatBounds();
  const polygons = feature.geometry.type === "Polygon" ? [feature.geometry.coordinates] : feature.geometry.coordinates;
  for (const polygon of polygons) for (const point of polygon[0]) bounds.extend(point);
  map.fitBounds(bounds, { padding: 60, maxZoom: 11, duration: 0 });
}

function zoomToMunicipality(id) {
  fitMunicipality(id);
  showMunicipality(id);
}

function renderNotice() {
  $("run-notice").textContent = state.notice ? t(state.notice) : "";
}

function renderBanner() {
  const run = state.runs.find((r) => r.id === state.runId);
  const banner = $("synthetic-banner");
  const text = run?.synthetic ? t("synthetic") : state.alerts.exercise ? t("exercise") : "";
  banner.hidden = !text;
  banner.textContent = text;
}

/* ---------- runs ---------- */

function runLabel(run) {
  return `#${run.id} · ${when(run.created_at)} · ${t("run_status")[run.status] ?? run.status}${run.synthetic ? " · " + t("run_synthetic") : ""}`;
}
function renderRunSelect() {
  const select = $("run-select");
  select.innerHTML = "";
  if (!state.runs.length) {
    select.innerHTML = `<option>${t("no_runs")}</option>`;
    select.disabled = true;
    return;
  }
  for (const run of state.runs) {
    const option = document.createElement("option");
    option.value = run.id;
    option.textContent = runLabel(run);
    option.disabled = run.status !== "succeeded";
    option.selected = run.id === state.runId;
    select.append(option);
  }
  select.disabled = false;
}

async function loadRuns(prefetched = null) {
  if (!seesRuns()) { state.runs = []; renderRunSelect(); return; }
  state.runs = prefetched ?? await api("/runs?limit=50");
  const latest = state.runs.find((r) => r.status === "succeeded");
  const changed = Boolean(state.followLatest && latest && state.runId && latest.id !== state.runId);
  renderRunSelect();
  if (changed || (!state.runId && latest)) await selectRun(latest.id);
  return changed;
}

async function selectRun(runId) {
  state.runId = runId;
  $("run-select").value = String(runId);
  state.selected = null;
  $("detail-section").hidden = true;
  const id = runId;
  const current = () => state.runId === id; // another run may be chosen meanwhile
  // Each layer is drawn as soon as its data arrives: settlements first, rivers last.
  const data = state.prefetched?.id === id ? state.prefetched : fetchRunData(id);
  state.prefetched = null;
  const { reaches, timeline } = data;
  const [settlements, centres, evacuation] = await Promise.all([data.settlements, data.centres, data.evacuation]);
  if (!current()) return;
  state.settlements = settlements; state.centres = centres; state.evacuation = evacuation;
  map.getSource("settlements").setData(settlements);
  // The other layers (centres, flows, depth tiles, thousands of river lines) are drawn once the
  // page is usable: without a GPU every layer lengthens each frame, and the places at risk
  // come first.
  usable.then(() => {
    if (!current()) return;
    map.getSource("centres").setData(centres);
    map.getSource("flows").setData(flowLines());
    showRunRaster("depth");
  });
  state.timeline = await timeline;
  if (!current()) return;
  if (state.timeline) {
    const slider = $("hour-slider");
    slider.max = Math.round(state.timeline.hours);
    slider.step = state.timeline.step_hours || 1;
    slider.value = slider.max;
  }
  updateHour();
  Promise.all([reaches, usable]).then(([data]) => {
    if (current()) { state.reaches = data; map.getSource("reaches").setData(data); }
  });
  const run = state.runs.find((r) => r.id === id);
  $("run-facts").textContent = run?.summary ? `${number(run.summary.people_exposed)} ${t("people_exposed").toLowerCase()}` : "";
  renderBanner();
  applyVisibility();
}

/* A run's layers, asked for all at once. */
function fetchRunData(id) {
  return {
    id,
    settlements: api(`/runs/${id}/settlements`),
    centres: api(`/runs/${id}/centres`).catch(() => emptyCollection()),
    evacuation: api(`/runs/${id}/evacuation`).catch(() => []),
    timeline: api(`/runs/${id}/timeline`).catch(() => null),
    reaches: api(`/runs/${id}/reaches`).catch(() => emptyCollection()),
  };
}

function flowLines() {
  const settlementAt = new Map(state.settlements.features.map((f) => [Number(f.id), f.geometry.coordinates]));
  const centreAt = new Map(state.centres.features.map((f) => [String(f.properties.id), f]));
  const features = [];
  for (const flow of state.evacuation) {
    const from = settlementAt.get(Number(flow.settlement_id));
    const to = flow.centre_id && centreAt.get(String(flow.centre_id));
    if (!from || !to) continue;
    features.push({ type: "Feature", properties: { people: flow.people, settlement_id: flow.settlement_id, centre_id: flow.centre_id, distance_km: flow.distance_km },
      geometry: { type: "LineString", coordinates: [from, to.geometry.coordinates] } });
  }
  return { type: "FeatureCollection", features };
}

function updateHour() {
  const slider = $("hour-slider");
  const hour = Number(slider.value);
  let clock = "";
  if (state.timeline) clock = when(new Date(Date.parse(state.timeline.start) + hour * 3600e3).toISOString());
  $("hour-label").textContent = t("forecast_hour")(hour, clock);
  if (state.runId && map.getLayer("reaches")) showRunRaster("first_flooding");
}

/* ---------- details ---------- */

function showDetail(title, html, withChart = false) {
  $("detail-section").hidden = false;
  $("detail-title").textContent = title;
  $("detail-body").innerHTML = html;
  $("chart-box").hidden = !withChart;
  if (!withChart && state.chart) { state.chart.destroy(); state.chart = null; }
  $("detail-section").scrollIntoView({ block: "nearest" });
}

let popup = null;
function openPopup(lngLat, html) {
  if (popup) popup.remove();
  popup = new maplibregl.Popup({ maxWidth: "320px" }).setLngLat(lngLat).setHTML(html).addTo(map);
}

function showSettlement(id) {
  const feature = state.settlements?.features.find((f) => Number(f.id) === Number(id));
  if (!feature) return;
  state.selected = { kind: "settlement", id };
  const p = feature.properties;
  const centres = new Map(state.centres.features.map((f) => [String(f.properties.id), f.properties]));
  const flows = state.evacuation.filter((r) => Number(r.settlement_id) === Number(id));
  const destinations = flows.filter((r) => r.centre_id).sort((a, b) => a.distance_km - b.distance_km)
    .map((r) => `<li>${escapeHtml(centres.get(String(r.centre_id))?.name ?? r.centre_id)} — ${number(r.people)} · ${number(r.distance_km, 1)} km</li>`);
  const unmet = flows.filter((r) => !r.centre_id).reduce((s, r) => s + r.people, 0);
  const html = levelBadge(p.level).outerHTML + factsTable([
    [t("municipality"), escapeHtml(`${placeName(p.municipality_id)}, ${p.department}`)],
    [t("population"), number(p.population)],
    [t("depth"), `${number(p.max_depth_m, 2)} m`],
    [t("flooded_share"), `${number(100 * (p.flooded_share ?? 0), 0)} %`],
    [t("people_exposed"), number(p.people_exposed)],
    [t("hours_to_flooding"), hoursWithClock(p.hours_to_flooding)],
    [t("return_period"), p.return_period_years ? t("rp_years")(p.return_period_years) : t("rp_under2")],
    [t("evacuees"), number(p.evacuees)],
    [t("reason"), escapeHtml(explainReason(p.level_reason))],
  ]) + `<h3>${t("destinations")}</h3><ul class="compact">${destinations.join("") || `<li>${t("none")}</li>`}</ul>`
    + (unmet ? `<p class="error">${t("unmet")}: ${number(unmet)}</p>` : "");
  showDetail(p.name, html);
  openPopup(feature.geometry.coordinates,
    `<strong>${escapeHtml(p.name)}</strong><br>${levelBadge(p.level).outerHTML} ${number(p.max_depth_m, 2)} m · ${number(p.people_exposed)} ${escapeHtml(t("people_exposed").toLowerCase())}`);
}

/* The level's reason (models/levels.yaml rule or ensemble probability) in the page's
 * language; the stored text is the analysts' English shorthand. */
const METRIC_WORDS = {
  es: { max_depth_m: "profundidad máxima (m)", people_exposed: "personas expuestas", hours_to_flooding: "horas hasta la inundación", flooded_share: "parte inundada" },
  en: { max_depth_m: "maximum depth (m)", people_exposed: "people exposed", hours_to_flooding: "hours to flooding", flooded_share: "share flooded" },
};
function explainReason(reason) {
  const words = METRIC_WORDS[state.lang];
  const rule = /^(\w+) condition (\d+): (.*)$/.exec(reason ?? "");
  if (rule) {
    const bounds = rule[3].split(", ").map((part) => part.replace(/^(\w+)/, (m) => words[m] ?? m));
    return state.lang === "es"
      ? `regla ${rule[2]} de ${t("level")[rule[1]]}: ${bounds.join(" y ")}`
      : `${t("level")[rule[1]]} rule ${rule[2]}: ${bounds.join(" and ")}`;
  }
  const ensemble = /^ensemble: P\(≥ (\w+)\) = ([\d.]+) ≥ ([\d.]+)$/.exec(reason ?? "");
  if (ensemble) {
    const [, level, p, need] = ensemble;
    return state.lang === "es"
      ? `conjunto: ${number(100 * p)} % de los miembros dan ${t("level")[level]} o más (umbral ${number(100 * need)} %)`
      : `ensemble: ${number(100 * p)} % of members give ${t("level")[level]} or worse (threshold ${number(100 * need)} %)`;
  }
  if (reason === "no rule met") return state.lang === "es" ? "ninguna regla se cumple" : "no rule met";
  if (reason === "ensemble: no level likely enough") return state.lang === "es" ? "conjunto: ningún nivel es bastante probable" : "ensemble: no level likely enough";
  return reason;
}

function placeName(municipalityId) {
  const hit = state.boundaries?.features.find((f) => f.properties.id === municipalityId);
  return hit ? hit.properties.name : municipalityId;
}

function showCentre(id) {
  const feature = state.centres?.features.find((f) => String(f.properties.id) === String(id));
  if (!feature) return;
  state.selected = { kind: "centre", id };
  const p = feature.properties;
  const names = new Map(state.settlements.features.map((f) => [Number(f.id), f.properties.name]));
  const origins = state.evacuation.filter((r) => String(r.centre_id) === String(id))
    .map((r) => `<li>${escapeHtml(names.get(Number(r.settlement_id)) ?? r.settlement_id)} — ${number(r.people)} · ${number(r.distance_km, 1)} km</li>`);
  const html = factsTable([
    [t("status_label"), `<strong style="color:${CENTRE_COLOURS[p.status] ?? "#333"}">${escapeHtml(t("status")[p.status] ?? p.status)}</strong>`],
    [t("kind"), escapeHtml(t("kinds")[p.kind] ?? p.kind)],
    [t("municipality"), escapeHtml(`${p.municipality}, ${p.department}`)],
    [t("capacity"), number(p.capacity)],
    [t("occupancy"), `${number(p.occupancy)} / ${number(p.capacity)}`],
    [t("site_depth"), `${number(p.site_depth_m, 2)} m`],
    [t("margin_depth"), `${number(p.margin_depth_m, 2)} m`],
    [t("hours_to_flooding"), hoursWithClock(p.hours_to_flooding)],
  ]) + `<h3>${t("origins")}</h3><ul class="compact">${origins.join("") || `<li>${t("none")}</li>`}</ul>`;
  showDetail(p.name, html);
  openPopup(feature.geometry.coordinates,
    `<strong>${escapeHtml(p.name)}</strong><br>${escapeHtml(t("status")[p.status] ?? p.status)} · ${number(p.occupancy)} / ${number(p.capacity)}`);
}

function showMunicipality(id) {
  const alert = state.alerts.alerts.find((a) => a.municipality_id === id);
  const name = placeName(id);
  const html = (alert ? levelBadge(alert.level).outerHTML + `<p>${escapeHtml(alert.headline)}</p>`
    + (alert.instruction ? `<p><strong>${t("what_to_do")}:</strong> ${escapeHtml(alert.instruction)}</p>` : "")
    + (alert.onset ? `<p>${t("onset")}: ${escapeHtml(when(alert.onset))}</p>` : "") + `<p>${t("sent")} ${escapeHtml(when(alert.sent))}<br>${t("expires")} ${escapeHtml(when(alert.expires))}<br><a href="${escapeHtml(alert.cap_url)}" target="_blank" rel="noopener">${t("cap_xml")}</a></p>` : `<p>${t("no_alert")}</p>`);
  showDetail(name, html);
}

async function showReach(reachId) {
  state.selected = { kind: "reach", id: reachId };
  showDetail(`${t("reach")} ${reachId}`, `<p>${t("loading")}</p>`, true);
  const data = await api(`/runs/${state.runId}/reaches/${reachId}`);
  if (state.selected?.kind !== "reach" || state.selected.id !== reachId) return;
  const rp = data.return_period_class;
  $("detail-body").innerHTML = factsTable([
    [t("strahler"), number(data.strahler)], [t("area"), `${number(data.upstream_area_km2, 1)} km²`],
    [t("peak"), `${number(data.peak_m3s, 1)} m³/s`],
    [t("hours_to_peak"), hoursWithClock(data.hours_to_peak)
      + (state.timeline && data.hours_to_peak >= state.timeline.hours - 1e-6 ? ` — ${t("still_rising")}` : "")],
    [t("return_period"), rp ? t("rp_years")(rp) : t("rp_under2")],
  ]);
  drawHydrograph(data);
}

function drawHydrograph(data) {
  if (state.chart) state.chart.destroy();
  const labels = data.times.map((iso) => new Date(iso).toLocaleString(state.lang === "es" ? "es-SV" : "en-US", { timeZone: TIME_ZONE, day: "2-digit", hour: "2-digit" }));
  const datasets = [];
  if (data.spread) {
    datasets.push({ label: "p90", data: data.spread.p90, borderWidth: 0, pointRadius: 0, backgroundColor: "rgba(21,101,192,.18)", fill: "+1" });
    datasets.push({ label: t("members_spread"), data: data.spread.p10, borderWidth: 0, pointRadius: 0, fill: false });
    datasets.push({ label: t("median"), data: data.spread.median, borderColor: "#0d47a1", borderWidth: 2, pointRadius: 0 });
  } else {
    datasets.push({ label: t("discharge"), data: data.discharge_m3s[0], borderColor: "#0d47a1", borderWidth: 2, pointRadius: 0 });
  }
  for (const threshold of data.thresholds) {
    const colour = RETURN_PERIOD_COLOURS.find(([y]) => y === threshold.return_period_years)?.[1] ?? "#999";
    datasets.push({ label: `Q${threshold.return_period_years}`, data: labels.map(() => threshold.discharge_m3s),
      borderColor: colour, borderDash: [5, 4], borderWidth: 1.2, pointRadius: 0 });
  }
  state.chart = new Chart($("hydrograph-chart"), {
    type: "line", data: { labels, datasets },
    options: { animation: false, responsive: false, interaction: { mode: "index", intersect: false },
      plugins: { legend: { labels: { boxWidth: 12, font: { size: 10 }, filter: (item) => item.text !== "p90" } } },
      scales: { y: { title: { display: true, text: t("discharge") }, beginAtZero: true }, x: { ticks: { maxTicksLimit: 8 } } } },
  });
}

/* ---------- language, key, refresh ---------- */

function applyLanguage() {
  document.documentElement.lang = state.lang;
  for (const element of document.querySelectorAll("[data-text]")) {
    const value = t(element.dataset.text);
    if (typeof value === "string") element.textContent = value;
  }
  $("lang-button").textContent = state.lang === "es" ? "EN" : "ES";
  $("lang-button").title = state.lang === "es" ? "English" : "Español";
  $("key-button").textContent = state.key ? t("leave") : t("enter_key");
  $("who").textContent = state.me ? `${state.me.name} · ${t("role")[state.me.role] ?? state.me.role}${state.me.municipality ? " · " + state.me.municipality : ""}` : "";
  renderLayerList();
  renderAlerts();
  renderRunSelect();
  renderNotice();
  $("key-input").setAttribute("aria-label", t("key_label"));
  $("run-choice").hidden = !seesRuns();
  updateHour();
  Sites.render();
  if (state.selected) {
    const { kind, id } = state.selected;
    if (kind === "settlement") showSettlement(id); else if (kind === "centre") showCentre(id); else if (kind === "reach") showReach(id);
    else if (kind === "site") Sites.showSite(id, { popup: false });
  }
}

async function identify() {
  state.me = null;
  if (!state.key) return;
  try {
    state.me = await api("/map/me");
  } catch (error) {
    if (error.status === 401) { sessionStorage.removeItem(KEY_STORE); state.key = null; }
    throw error;
  }
}

async function refresh(prefetchedAlerts = null, prefetchedRuns = null) {
  const alerts = prefetchedAlerts ?? await api("/map/alerts", { keyed: false });
  const published = alerts.version !== state.alerts.version;
  state.alerts = alerts;
  if (published) renderAlerts();
  if (seesRuns()) {
    const newRun = await loadRuns(prefetchedRuns);
    if (newRun) { state.notice = "new_run"; renderNotice(); }
  }
}

async function start() {
  // On a phone the panel starts closed: the map first, the panel a tap away.
  if (window.matchMedia("(max-width: 800px)").matches) $("panel").classList.add("closed");
  // Ask for the key's role, the alerts and the legend while the map and its libraries start.
  const legend = api("/tiles/legend.json", { keyed: false }).catch(() => null);
  const boundaries = api("/map/boundaries/municipalities.geojson", { keyed: false }).catch(() => null);
  const identified = identify().catch(() => { /* a refused key leaves the public view */ });
  const alerts = api("/map/alerts", { keyed: false }).catch(() => null);
  // With a key, the newest finished run's layers are on their way before the map is ready.
  const runs = state.key ? api("/runs?limit=50").catch(() => null) : Promise.resolve(null);
  Promise.all([runs, identified]).then(([list]) => {
    const latest = list?.find((r) => r.status === "succeeded");
    if (latest && !state.runId && seesRuns()) state.prefetched = fetchRunData(latest.id);
  });
  await buildMap();
  performance.mark("floodwarn-style-loaded");
  addRunLayers();
  await identified;
  state.legend = await legend;
  state.boundaries = await boundaries;
  if (state.me?.role === "site_manager") Sites.startManager();
  applyLanguage();
  await refresh(await alerts, seesRuns() ? await runs : null);
  if (state.me?.role === "committee") fitMunicipality(state.me.municipality_id);
  if (state.me?.role === "site_manager") await Sites.ensureLoaded();
  performance.mark("floodwarn-data-loaded");
  applyLanguage();
  // Usable: the base map (boundaries, relief) and, with a key, the settlements are drawn.
  // Sources loaded and a frame drawn since: MapLibre 5's symbol query can throw while a
  // GeoJSON source's data is being replaced, so rendered symbols are not asked for here.
  const drawn = () => ["countries", "departments", "municipalities", "hillshade"].every((s) => map.isSourceLoaded(s))
    && (!state.runId || (state.settlements !== null && map.isSourceLoaded("settlements")));
  // Checked after every frame; every half second a frame is asked for, in case the sources
  // finished loading after the last one.
  const timer = setInterval(() => map.triggerRepaint(), 500);
  const check = () => {
    if (!drawn()) return;
    map.off("render", check);
    clearInterval(timer);
    performance.mark("floodwarn-usable");
    markUsable(performance.getEntriesByName("floodwarn-usable")[0].startTime);
  };
  map.on("render", check);
  map.triggerRepaint();
  setInterval(() => refresh().catch((e) => console.warn("refresh failed", e)), POLL_MS);
}

$("lang-button").addEventListener("click", () => {
  state.lang = state.lang === "es" ? "en" : "es";
  sessionStorage.setItem(LANG_STORE, state.lang);
  applyLanguage();
});
$("key-button").addEventListener("click", async () => {
  if (state.key) {
    sessionStorage.removeItem(KEY_STORE);
    location.reload();
    return;
  }
  $("key-error").textContent = "";
  $("key-dialog").showModal();
});
$("key-cancel").addEventListener("click", () => $("key-dialog").close());
$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  state.key = $("key-input").value.trim();
  try {
    await identify();
    sessionStorage.setItem(KEY_STORE, state.key);
    $("key-input").value = "";
    $("key-dialog").close();
    location.reload();
  } catch {
    state.key = null;
    $("key-error").textContent = t("key_refused");
  }
});
$("run-select").addEventListener("change", (event) => {
  const id = Number(event.target.value);
  state.followLatest = id === state.runs.find((r) => r.status === "succeeded")?.id;
  selectRun(id);
});
$("hour-slider").addEventListener("input", updateHour);
$("panel-button").addEventListener("click", () => { $("panel").classList.toggle("closed"); map.resize(); });

window.floodwarn = { state, usable, get map() { return map; } };
start().catch((error) => {
  console.error(error);
  const banner = $("synthetic-banner");
  banner.hidden = false;
  banner.textContent = String(error.message || error);
});
