/* floodwarn: collective centres (shelters) on the map, and the site managers' screens (issue 15):
 * a site's profile, latest reported state, GBV risk flags, the people the forecast sends and
 * its Sphere needs; the occupancy report form; the report history.
 *
 * Every label reads Spanish first, then English ("Mi albergue / My site"): the people who use
 * these screens in a shelter work in Spanish, the partners who read them over their shoulder
 * often in English. A value the profile does not know is shown as "sin dato / unknown", never
 * left blank and never replaced by a guess.
 *
 * Loaded before map.js, whose globals (state, api, map, when, number, escapeHtml, showDetail,
 * openPopup, applyVisibility) are used only when a function here is called. */
"use strict";

const Sites = (() => {
  const STATUS_COLOURS = { open: "#2e7d32", full: "#ef6c00", closed: "#37474f", none: "#ffffff" };
  const STATUS_LABELS = { open: "abierto / open", full: "lleno / full", closed: "cerrado / closed",
    none: "sin informe / no report" };
  const UNKNOWN = "sin dato / unknown";
  const BANDS = ["0_5", "6_17", "18_59", "60_plus"];
  const BAND_LABELS = { "0_5": "0–5", "6_17": "6–17", "18_59": "18–59", "60_plus": "60+" };
  const SEXES = [["female", "Mujeres / Women"], ["male", "Hombres / Men"]];
  const BAND_FIELDS = SEXES.flatMap(([sex]) => BANDS.map((band) => `${sex}_${band}`));
  const NEED_LABELS = {
    water: "agua / water", food: "alimentos / food", hygiene: "higiene / hygiene",
    menstrual_hygiene: "higiene menstrual / menstrual hygiene",
    nfi: "artículos no alimentarios / non-food items", shelter: "albergue / shelter",
    health: "salud / health", protection: "protección / protection",
    lighting: "iluminación / lighting", sanitation: "saneamiento / sanitation",
  };
  const KIND_LABELS = { school: "escuela / school", church: "iglesia / church",
    hall: "salón comunal / community hall", health_unit: "unidad de salud / health unit",
    hospital: "hospital / hospital", other: "otro edificio / other building" };
  const CONDITION_LABELS = { good: "buena / good", fair: "regular / fair", poor: "mala / poor" };
  const SOURCE_LABELS = { census: "lista oficial / official list", estimate: "estimación / estimate" };
  /* GBV risk factors (IASC 2015 GBV Guidelines, CCCM; Sphere 2018 shelter standard 3 for
   * overcrowding), computed by the service from the profile and the latest report. */
  const GBV_LABELS = {
    gbv_no_lighting: "Sin iluminación / No lighting",
    gbv_no_lockable_doors: "Sin puertas con llave / No lockable doors",
    gbv_mixed_toilets: "Sanitarios no separados por sexo / Toilets not separated by sex",
    gbv_no_private_space: "Sin espacio privado / No private space",
    gbv_overcrowded: "Hacinamiento (espacio cubierto bajo la norma Esfera) / Overcrowded (covered space below the Sphere standard)",
  };
  const SERVICE_LABELS = {
    water: "Agua / Water", electricity: "Electricidad / Electricity",
    lighting: "Iluminación / Lighting", lockable_doors: "Puertas con llave / Lockable doors",
    private_space: "Espacio privado / Private space",
    accessible_toilet: "Sanitario accesible / Accessible toilet", kitchen: "Cocina / Kitchen",
  };
  const COUNT_LABELS = {
    toilets_female: "Sanitarios de mujeres / Women's toilets",
    toilets_male: "Sanitarios de hombres / Men's toilets",
    showers_female: "Duchas de mujeres / Women's showers",
    showers_male: "Duchas de hombres / Men's showers",
  };
  /* Sphere needs the service computes per site (floodwarn.sites.needs.site_needs): [label, unit]. */
  const NEEDS_SHOWN = [
    ["people_total", "Personas (presentes + por llegar) / People (present + arriving)", ""],
    ["households_total", "Hogares / Households", ""],
    ["water_l_per_day", "Agua necesaria / Water needed", " l/día / l/day"],
    ["water_l_planning", "Agua a preposicionar / Water to pre-position", " l"],
    ["covered_space_needed_m2", "Espacio cubierto necesario / Covered space needed", " m²"],
    ["covered_space_gap_m2", "Falta de espacio cubierto / Covered space short", " m²"],
    ["toilets_needed", "Sanitarios necesarios / Toilets needed", ""],
    ["toilets_gap", "Sanitarios que faltan / Toilets short", ""],
    ["hygiene_kits", "Kits de higiene (al mes) / Hygiene kits (a month)", ""],
    ["menstrual_hygiene_kits", "Kits de higiene menstrual (al mes) / Menstrual hygiene kits (a month)", ""],
    ["nfi_kits", "Kits de artículos no alimentarios / Non-food item kits", ""],
  ];
  const ESTIMATE_LABELS = { people_present: "personas presentes (sin informe) / people present (no report)",
    households: "hogares / households", women_girls_12_49: "mujeres y niñas de 12–49 / women and girls 12–49" };
  const POLL_MS = 60000;

  let loading = null;
  let polling = null;

  /* ---------- small helpers ---------- */

  const $ = (id) => document.getElementById(id);
  const known = (value) => value !== null && value !== undefined && !Number.isNaN(value);
  const unknownHtml = () => `<span class="unknown">${UNKNOWN}</span>`;
  const count = (value, unit = "") => (known(value) ? `${number(value)}${escapeHtml(unit)}` : unknownHtml());
  const yesNo = (value) => (value === true ? "sí / yes" : value === false ? "no" : unknownHtml());
  const labelled = (labels, value) => (known(value) && value !== "" ? escapeHtml(labels[value] ?? value) : unknownHtml());
  const statusOf = (p) => (p.site_status in STATUS_COLOURS ? p.site_status : "none");
  const siteUrl = (id) => `/sites/${encodeURIComponent(id)}`;
  function statusBadge(status) {
    const key = status in STATUS_COLOURS ? status : "none";
    return `<span class="site-status status-${key}">${escapeHtml(STATUS_LABELS[key])}</span>`;
  }
  function factRows(rows) {
    return "<table class=facts>" + rows.map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th><td>${v}</td></tr>`).join("") + "</table>";
  }
  function feature(id) {
    return state.sites?.features.find((f) => String(f.properties.site_id) === String(id)) ?? null;
  }
  function occupancy(p) {
    if (!known(p.people_present)) return unknownHtml();
    const capacity = known(p.capacity_people) ? p.capacity_people : null;
    const share = capacity ? ` (${number(100 * p.people_present / capacity)} %)` : "";
    return `${number(p.people_present)} / ${capacity === null ? UNKNOWN : number(capacity)}${share}`
      + (capacity !== null && p.capacity_source === "estimate" ? ` <span class="estimate">capacidad estimada / estimated capacity</span>` : "");
  }

  /* ---------- the sites layer (every role with a key) ---------- */

  function addLayer() {
    map.addSource("sites", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    // Circles, not symbols: thousands of sites redraw cheaply on software WebGL.
    map.addLayer({ id: "sites", type: "circle", source: "sites",
      layout: { visibility: state.visible.sites ? "visible" : "none" },
      paint: {
        "circle-color": ["match", ["coalesce", ["get", "site_status"], "none"],
          "open", STATUS_COLOURS.open, "full", STATUS_COLOURS.full, "closed", STATUS_COLOURS.closed, STATUS_COLOURS.none],
        "circle-radius": ["interpolate", ["linear"], ["zoom"], 7, 3, 11, 6, 15, 9],
        "circle-stroke-color": ["match", ["coalesce", ["get", "site_status"], "none"], "none", "#37474f", "#ffffff"],
        "circle-stroke-width": 1.5,
      } });
  }

  function legend() {
    return Object.entries(STATUS_COLOURS).map(([status, colour]) =>
      `<span><i class="swatch round" style="background:${colour}"></i>${escapeHtml(STATUS_LABELS[status])}</span>`).join("");
  }

  /* The sites the key may see (GET /sites), drawn and, for a site manager, shown in the panel. */
  async function load() {
    const sites = await api("/sites");
    state.sites = sites;
    // The map gets only what it draws by: the renderer's worker then tiles two properties a
    // site, not eighty (the popup and the panel read the full feature from state.sites).
    if (map.getSource("sites")) {
      map.getSource("sites").setData({ type: "FeatureCollection", features: sites.features.map((f) => ({
        type: "Feature", geometry: f.geometry,
        properties: { site_id: f.properties.site_id, site_status: f.properties.site_status ?? "none" } })) });
    }
    if (state.me?.role === "site_manager") {
      const ids = sites.features.map((f) => String(f.properties.site_id));
      const first = !ids.includes(state.siteId);
      if (first) state.siteId = ids[0] ?? null;
      renderSelector();
      if (first) { fitSites(); loadHistory(); }
    }
    render();
    if (state.selected?.kind === "site" && state.me?.role !== "site_manager") showSite(state.selected.id, { popup: false });
    return sites;
  }

  function ensureLoaded() {
    if (!loading) {
      loading = load().catch((error) => {
        loading = null;
        showLoadError(error);
      });
      polling ??= setInterval(() => {
        if (state.visible.sites || state.me?.role === "site_manager") {
          load().then(() => { if (state.me?.role === "site_manager") loadHistory(); })
            .catch((e) => console.warn("sites refresh failed", e));
        }
      }, POLL_MS);
    }
    return loading;
  }

  function showLoadError(error) {
    console.warn("sites failed", error);
    if (state.me?.role !== "site_manager") return;
    $("site-body").innerHTML = `<p class="error" role="alert">No se pudo leer el albergue / The site could not be read: ${escapeHtml(error.message)}</p>`;
  }

  /* ---------- analysts: a click on a site ---------- */

  function popupHtml(p) {
    const flagged = Object.keys(GBV_LABELS).filter((k) => p[k] === true);
    const unknownFlags = Object.keys(GBV_LABELS).filter((k) => !known(p[k]));
    const needs = [["water_l_per_day", "agua / water", " l/día"], ["hygiene_kits", "kits de higiene / hygiene kits", ""],
      ["menstrual_hygiene_kits", "higiene menstrual / menstrual hygiene", ""], ["nfi_kits", "kits NFI / NFI kits", ""]]
      .filter(([k]) => known(p[k]) && p[k] > 0).map(([k, label, unit]) => `${escapeHtml(label)}: ${number(p[k])}${unit}`);
    return `<strong>${escapeHtml(p.name)}</strong> ${statusBadge(p.site_status)}`
      + `<br>Ocupación / Occupancy: ${occupancy(p)}`
      + (known(p.people_arriving) && p.people_arriving > 0 ? `<br>Llegan según el pronóstico / Forecast to arrive: ${number(p.people_arriving)}` : "")
      + `<br>Riesgos VBG / GBV risks: ` + (flagged.length
        ? flagged.map((k) => `<span class="gbv-flag on">${escapeHtml(GBV_LABELS[k])}</span>`).join(" ")
        : "ninguno señalado / none flagged")
      + (unknownFlags.length ? ` <span class="unknown">(${unknownFlags.length} sin dato / unknown)</span>` : "")
      + (needs.length ? `<br>Necesidades / Needs: ${needs.join(" · ")}` : "");
  }

  function showSite(id, { popup = true } = {}) {
    const found = feature(id);
    if (!found) return;
    const p = found.properties;
    if (state.me?.role === "site_manager") {
      select(String(p.site_id));
      return;
    }
    state.selected = { kind: "site", id: String(p.site_id) };
    showDetail(p.name, siteHtml(p) + `<h3>Historial / History</h3><div class="site-history" id="detail-history">${escapeHtml(t("loading"))}</div>`);
    if (popup) openPopup(found.geometry.coordinates, popupHtml(p));
    api(`${siteUrl(p.site_id)}/reports?limit=50`).then((reports) => {
      const box = $("detail-history");
      if (box && state.selected?.kind === "site" && state.selected.id === String(p.site_id)) box.innerHTML = historyHtml(reports);
    }).catch((error) => {
      const box = $("detail-history");
      if (box) box.innerHTML = `<p class="error">${escapeHtml(error.message)}</p>`;
    });
  }

  /* ---------- a site's facts (panel and detail) ---------- */

  function profileHtml(p) {
    const capacity = known(p.capacity_people)
      ? `${number(p.capacity_people)} personas / people` + (p.capacity_source === "estimate"
        ? ` <span class="estimate">capacidad estimada / estimated capacity</span>` : "")
      : unknownHtml();
    return factRows([
      ["Código / Site id", escapeHtml(p.site_id)],
      ["Municipio / Municipality", known(p.municipality) ? escapeHtml(`${p.municipality}, ${p.department ?? ""}`) : unknownHtml()],
      ["Tipo / Kind", labelled(KIND_LABELS, p.kind)],
      ["Capacidad / Capacity", capacity],
      ["Área cubierta / Covered area", count(p.covered_area_m2, " m²")],
      ["Condición / Condition", labelled(CONDITION_LABELS, p.condition)],
      ["Habilitado como albergue / May be used", yesNo(p.usable)],
      ...Object.entries(SERVICE_LABELS).map(([k, label]) => [label, yesNo(p[k])]),
      ...Object.entries(COUNT_LABELS).map(([k, label]) => [label, count(p[k])]),
      ["Fuente del perfil / Profile source", labelled(SOURCE_LABELS, p.capacity_source)],
    ]);
  }

  function bandsHtml(values, caption) {
    if (BAND_FIELDS.every((f) => !known(values[f]))) {
      return `<p class="note">${caption}: ${unknownHtml()} (sin desglose informado / no breakdown reported)</p>`;
    }
    const head = BANDS.map((b) => `<th scope="col">${BAND_LABELS[b]}</th>`).join("");
    const rows = SEXES.map(([sex, label]) => `<tr><th scope="row">${label}</th>`
      + BANDS.map((b) => `<td>${count(values[`${sex}_${b}`])}</td>`).join("") + "</tr>").join("");
    return `<table class="bands"><caption>${caption}</caption><thead><tr><td></td>${head}</tr></thead><tbody>${rows}</tbody></table>`;
  }

  function stateHtml(p) {
    const bands = Object.fromEntries(BAND_FIELDS.map((f) => [f, p[f]]));
    const reportedNeeds = String(p.reported_needs ?? "").split(/\s+/).filter(Boolean);
    return factRows([
      ["Estado / Status", statusBadge(p.site_status)],
      ["Último informe / Last report", p.last_report_at ? escapeHtml(when(p.last_report_at)) : `<span class="unknown">${STATUS_LABELS.none}</span>`],
      ["Personas presentes / People present", occupancy(p)],
      ["Hogares / Households", count(p.households_present)],
      ["Personas con discapacidad / People with disabilities", count(p.disabled_present)],
      ["Necesidades informadas / Reported needs", reportedNeeds.length ? escapeHtml(reportedNeeds.map((c) => NEED_LABELS[c] ?? c).join(", ")) : (p.last_report_at ? "ninguna / none" : unknownHtml())],
    ]) + bandsHtml(bands, "Personas presentes por sexo y edad / People present by sex and age");
  }

  function gbvHtml(p) {
    const items = Object.entries(GBV_LABELS).map(([k, label]) => {
      const value = p[k];
      if (value === true) return `<li class="gbv-flag on"><strong>${escapeHtml(label)}</strong></li>`;
      if (value === false) return `<li class="gbv-flag off">${escapeHtml(label)}: no</li>`;
      return `<li class="gbv-flag unknown">${escapeHtml(label)}: ${UNKNOWN}</li>`;
    });
    return `<ul class="gbv-flags">${items.join("")}</ul>`;
  }

  function needsHtml(p) {
    const rows = NEEDS_SHOWN.filter(([k]) => k in p).map(([k, label, unit]) => {
      let value = count(p[k], unit);
      if (k === "toilets_needed" && known(p[k]) && known(p.toilets_female_needed)) {
        value += ` (mujeres / women ${number(p.toilets_female_needed)}, hombres / men ${number(p.toilets_male_needed)})`;
      }
      return [label, value];
    });
    const estimated = String(p.estimates_used ?? "").split(/;\s*/).filter(Boolean);
    return factRows([["Llegan según el pronóstico / Forecast to arrive", count(p.people_arriving)], ...rows])
      + (estimated.length ? `<p class="note">Estimado por falta de dato informado / Estimated for want of a reported figure: ${escapeHtml(estimated.map((e) => ESTIMATE_LABELS[e] ?? e).join(", "))}</p>` : "")
      + `<p class="note">Según las normas mínimas Esfera 2018 / From the Sphere minimum standards 2018.</p>`;
  }

  function currentHtml(p) {
    return `<h3>Estado actual / Current state</h3>${stateHtml(p)}`
      + `<h3>Riesgos de violencia de género / Gender-based violence risks</h3>${gbvHtml(p)}`
      + `<h3>Pronóstico y necesidades / Forecast and needs</h3>${needsHtml(p)}`;
  }

  function siteHtml(p) {
    return `<h3>Perfil / Profile</h3>${profileHtml(p)}${currentHtml(p)}`;
  }

  function historyHtml(reports) {
    if (!reports.length) return `<p class="note">Sin informes todavía / No reports yet.</p>`;
    const rows = reports.map((r) => `<tr data-report-id="${escapeHtml(r.id)}">`
      + `<td>${escapeHtml(when(r.reported_at))}</td><td>${escapeHtml(r.author ?? "")}</td>`
      + `<td>${statusBadge(r.status)}</td><td>${count(r.people)}</td><td>${count(r.households)}</td>`
      + `<td>${count(r.disabled)}</td><td>${escapeHtml((r.needs ?? []).map((c) => NEED_LABELS[c] ?? c).join(", "))}</td></tr>`).join("");
    return `<table class="history"><thead><tr><th scope="col">Fecha y hora / Date and time</th><th scope="col">Autor / Author</th>`
      + `<th scope="col">Estado / Status</th><th scope="col">Personas / People</th><th scope="col">Hogares / Households</th>`
      + `<th scope="col">Con discapacidad / Disabled</th><th scope="col">Necesidades / Needs</th></tr></thead><tbody>${rows}</tbody></table>`;
  }

  /* ---------- site managers: "Mi albergue / My site" ---------- */

  function startManager() {
    state.visible.sites = true;
    $("site-section").hidden = false;
    document.body.classList.add("site-manager");
    // On a phone the form is what a site manager came for: the panel starts open.
    $("panel").classList.remove("closed");
    applyVisibility();
  }

  function fitSites() {
    const points = state.sites.features.map((f) => f.geometry?.coordinates).filter(Boolean);
    if (!points.length) return;
    if (points.length === 1) { map.jumpTo({ center: points[0], zoom: 13 }); return; }
    const bounds = new maplibregl.LngLatBounds();
    for (const point of points) bounds.extend(point);
    map.fitBounds(bounds, { padding: 60, maxZoom: 13, duration: 0 });
  }

  function renderSelector() {
    const ids = state.sites.features.map((f) => f.properties);
    const select = $("site-select");
    $("site-choice").hidden = ids.length < 2;
    select.innerHTML = ids.map((p) => `<option value="${escapeHtml(p.site_id)}">${escapeHtml(p.name)} (${escapeHtml(p.site_id)})</option>`).join("");
    select.value = state.siteId ?? "";
  }

  function select(id) {
    const changed = id !== state.siteId;
    state.siteId = id;
    $("site-select").value = id;
    render();
    if (changed) { clearForm(); loadHistory(); }
    const found = feature(id);
    if (found) map.easeTo({ center: found.geometry.coordinates, zoom: Math.max(map.getZoom(), 12), duration: 0 });
  }

  function render() {
    if (state.me?.role !== "site_manager" || !state.sites) return;
    const found = feature(state.siteId);
    for (const id of ["report-form", "site-links", "profile-heading"]) $(id).hidden = !found;
    if (!found) {
      $("site-title").textContent = "";
      $("site-body").innerHTML = `<p class="note">Esta clave no tiene albergues activos / This key has no active sites.</p>`;
      $("site-profile").innerHTML = "";
      return;
    }
    const p = found.properties;
    $("site-title").textContent = p.name;
    // What changes with each report first, then the form; the profile, which changes only
    // with a new official list, last.
    $("site-body").innerHTML = currentHtml(p);
    $("site-profile").innerHTML = profileHtml(p);
  }

  async function loadHistory() {
    const id = state.siteId;
    if (!id) return;
    const box = $("site-history");
    try {
      const reports = await api(`${siteUrl(id)}/reports?limit=50`);
      if (state.siteId === id) box.innerHTML = historyHtml(reports);
    } catch (error) {
      box.innerHTML = `<p class="error">No se pudo leer el historial / The history could not be read: ${escapeHtml(error.message)}</p>`;
    }
  }

  /* ---------- the report form ---------- */

  const field = (name) => $("report-form").elements.namedItem(name);

  /* A count typed in a field: null when empty, NaN when not a whole number ≥ 0. */
  function countIn(input) {
    const text = input.value.trim();
    if (input.validity.badInput) return Number.NaN;
    if (text === "") return null;
    return /^\d+$/.test(text) ? Number(text) : Number.NaN;
  }

  /* The band counts' sum fills "people" (read-only while any band is typed). */
  function updateTotal() {
    const values = BAND_FIELDS.map((name) => countIn(field(name)));
    const people = field("people");
    const anyBand = values.some((v) => v !== null);
    people.readOnly = anyBand;
    if (anyBand) people.value = values.every((v) => Number.isInteger(v)) ? String(values.reduce((a, b) => a + b, 0)) : "";
  }

  function clearForm() {
    $("report-form").reset();
    field("people").readOnly = false;
    showProblems([]);
    $("report-done").textContent = "";
  }

  function showProblems(problems, lead = "") {
    const form = $("report-form");
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    const box = $("report-problems");
    if (!problems.length && !lead) { box.hidden = true; box.innerHTML = ""; return; }
    for (const problem of problems) {
      const name = String(problem.loc ?? "").split(".").pop();
      const input = name && form.elements.namedItem(name);
      if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
    }
    box.hidden = false;
    box.innerHTML = (lead ? `<p><strong>${escapeHtml(lead)}</strong></p>` : "")
      + (problems.length ? `<ul>${problems.map((p) => `<li>${p.loc ? `<code>${escapeHtml(p.loc)}</code>: ` : ""}${escapeHtml(p.msg)}</li>`).join("")}</ul>` : "");
  }

  /* The form as the API's report body, or the problems found before sending anything. */
  function reportBody() {
    const problems = [];
    const notCount = "debe ser un número entero mayor o igual a 0 / must be a whole number, 0 or more";
    const body = { status: field("status").value, needs: [] };
    if (!["open", "full", "closed"].includes(body.status)) problems.push({ loc: "status", msg: "elija el estado del albergue / choose the site's status" });
    const households = countIn(field("households"));
    if (households === null) problems.push({ loc: "households", msg: "escriba el número de hogares / type the number of households" });
    else if (Number.isNaN(households)) problems.push({ loc: "households", msg: notCount });
    else body.households = households;
    const bands = BAND_FIELDS.map((name) => [name, countIn(field(name))]);
    for (const [name, value] of bands) if (Number.isNaN(value)) problems.push({ loc: name, msg: notCount });
    const typed = bands.filter(([, value]) => value !== null);
    if (typed.length === BAND_FIELDS.length) {
      for (const [name, value] of bands) if (!Number.isNaN(value)) body[name] = value;
    } else if (typed.length) {
      for (const [name, value] of bands) if (value === null) problems.push({ loc: name, msg: "complete los ocho grupos de sexo y edad, o deje todos vacíos y escriba el total de personas / fill all eight sex and age groups, or leave them all empty and type the total people" });
    } else {
      const people = countIn(field("people"));
      if (people === null) problems.push({ loc: "people", msg: "escriba el total de personas o los grupos por sexo y edad / type the total people or the sex and age groups" });
      else if (Number.isNaN(people)) problems.push({ loc: "people", msg: notCount });
      else body.people = people;
    }
    const disabled = countIn(field("disabled"));
    if (Number.isNaN(disabled)) problems.push({ loc: "disabled", msg: notCount });
    else if (disabled !== null) body.disabled = disabled;
    body.needs = [...$("report-form").querySelectorAll("input[name=needs]:checked")].map((box) => box.value);
    const note = field("note").value.trim();
    if (note) body.note = note;
    return { body, problems };
  }

  async function submit(event) {
    event.preventDefault();
    const id = state.siteId;
    $("report-done").textContent = "";
    const { body, problems } = reportBody();
    if (problems.length) {
      showProblems(problems, "Revise el formulario / Check the form:");
      field(problems[0].loc)?.focus?.();
      return;
    }
    showProblems([]);
    const button = $("report-submit");
    button.disabled = true;
    try {
      const response = await fetch(`${siteUrl(id)}/reports`, {
        method: "POST", cache: "no-store",
        headers: { "X-API-Key": state.key, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        // The service explains in English; the lead-in says in Spanish what happened.
        const lead = response.status === 422 ? "El servicio rechazó el informe / The service refused the report:"
          : `No se guardó el informe (error ${response.status}) / The report was not saved (error ${response.status}):`;
        const listed = answer.problems?.length ? answer.problems : [{ loc: "", msg: answer.detail ?? response.statusText }];
        showProblems(listed, lead);
        if (answer.problems?.length && answer.detail) $("report-problems").insertAdjacentHTML("beforeend", `<p class="note">${escapeHtml(answer.detail)}</p>`);
        return;
      }
      clearForm();
      $("report-done").textContent = `Informe guardado / Report saved (n.º ${answer.id}, ${when(answer.received_at)}).`;
      await Promise.all([load(), loadHistory()]);
    } catch (error) {
      showProblems([], `Sin conexión con el servicio; el informe no se guardó / No connection to the service; the report was not saved (${error.message}).`);
    } finally {
      button.disabled = false;
    }
  }

  $("report-form").addEventListener("submit", submit);
  $("report-form").addEventListener("input", (event) => { if (BAND_FIELDS.includes(event.target.name)) updateTotal(); });
  $("site-select").addEventListener("change", (event) => select(event.target.value));

  return { addLayer, legend, ensureLoaded, load, showSite, startManager, render, loadHistory };
})();
