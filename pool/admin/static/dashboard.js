// Geostratum dashboard: polls the admin JSON API and renders it. No build step, no dependencies.
// Authentication: a read token given once in the URL fragment (#token=...) never reaches the server
// in a URL; it is kept in sessionStorage for this tab and sent as a bearer header. When the pool
// allows anonymous dashboard reads, no token is needed and the worker table stays hidden.
"use strict";

let refreshSeconds = 5;
let anonymousAllowed = false;
let timer = null;

// takeTokenFromFragment(), Unauthorized, api(): common.js

// ---- formatting ----------------------------------------------------------------------------

// hashrate(), compact(), integer(), plural(), ago(), figureText(), setText(), cell(), svg(): common.js
function duration(seconds) {
  if (seconds < 90) return Math.round(seconds) + " s";
  if (seconds < 5400) return Math.round(seconds / 60) + " min";
  return (seconds / 3600).toFixed(seconds < 36000 ? 1 : 0) + " h";
}
// A hashrate figure (value, 95 % bounds from the share count, seconds observed) shows its value or
// "warming up" (figureText); the interval and the window go in the hover text.
function figureHover(f) {
  if (!f) return "";
  const bounds = f.high === null ? "below " + hashrate(0) : hashrate(f.low) + " – " + hashrate(f.high);
  return "95 % interval " + bounds + " · " + plural(f.shares, "share") + " over " + duration(f.covered_seconds) +
    " observed of a " + duration(f.window_seconds) + " window";
}
function figureSpread(f) {
  if (!f || f.warming_up || f.high === null || !(f.hashrate > 0)) return "";
  return "±" + Math.round((50 * (f.high - f.low)) / f.hashrate) + " %";
}
function showFigure(id, f) {
  const el = document.getElementById(id);
  el.textContent = figureText(f);
  el.title = figureHover(f);
  el.dataset.warmingUp = f && f.warming_up ? "1" : "0";
}
const percent = (x, digits = 2) => (x * 100).toFixed(digits) + "%";
function until(unixSeconds) {
  const s = unixSeconds - Date.now() / 1000;
  if (s <= 0) return "any time now";
  if (s < 5400) return "in about " + Math.round(s / 60) + " min";
  if (s < 172800) return "in about " + Math.round(s / 3600) + " h";
  return "in about " + (s / 86400).toFixed(1) + " days";
}
let coin = "BTC";                 // "test BTC" off mainnet (renderOverview)

// ---- renderers -------------------------------------------------------------------------------

function renderOverview(o) {
  const hr = o.pool.hashrate;
  showFigure("hr-5m", hr["5m"]);
  showFigure("hr-1h", hr["1h"]);
  showFigure("hr-24h", hr["24h"]);
  const spread = figureSpread(hr["5m"]);
  setText("hr-5m-basis", (spread ? spread + " (95 %) · " : "") + duration(hr["5m"].covered_seconds) + " observed");
  setText("workers", integer(o.pool.workers));
  setText("connections", integer(o.pool.connections));
  setText("accounts", integer(o.pool.accounts));
  setText("share-window", Math.round(o.shares.window_seconds / 60) + " min");
  setText("accepted", integer(o.shares.accepted) + " accepted");
  setText("shares-basis", duration(o.shares.observed_seconds) + " observed");
  setText("rejected", integer(o.shares.rejected_total) + " in the last " + duration(o.shares.rejected_seconds));
  setText("stale-rate", percent(o.shares.stale_rate));
  setText("blocks-found", integer(o.blocks.found));
  const best = o.best_share || {};
  setText("best-ever", best.ever ? compact(best.ever.difficulty) : "none yet");
  setText("best-round", best.round ? compact(best.round.difficulty) : "none yet");
  setText("best-who", best.ever ? "by " + best.ever.worker + ", " + ago(best.ever.found_at) : "");
  setText("recent-window", plural(o.pool_share.recent_blocks_window, "block"));
  setText("block-share", percent(o.pool_share.of_recent_blocks));
  setText("round-effort", o.round.effort === null ? "–" : percent(o.round.effort, o.round.effort < 0.01 ? 4 : 1));
  document.getElementById("round-effort").title = plural(o.round.shares, "share") + " since " +
    (o.round.opened_at ? new Date(o.round.opened_at * 1000).toLocaleString() : "the start") +
    "; 100 % is one block's expected work";
  // Difficulty means nothing as a price or a hashrate where anyone may mine at minimum difficulty.
  const testNet = o.network.chain !== "main";
  coin = testNet ? "test BTC" : "BTC";
  const net = o.network;
  setText("net-hashrate", net.hashrate === null ? "not meaningful on " + net.chain : hashrate(net.hashrate));
  document.getElementById("net-hashrate").title = net.note ||
    "difficulty x 2^32 / 600 s" + (net.hashrate_from_blocks === null ? "" : "; from the times of the last " +
    plural(net.blocks_counted, "block") + ": " + hashrate(net.hashrate_from_blocks));
  setText("net-height", integer(net.height));
  setText("net-difficulty", compact(net.difficulty));
  setText("pool-share", o.pool_share.of_network_hashrate === null ? "n/a" : percent(o.pool_share.of_network_hashrate, 4));
  const adj = o.next_adjustment;
  if (adj) {
    const sign = adj.projected_change_percent >= 0 ? "+" : "";
    setText("adj-change", sign + adj.projected_change_percent.toFixed(2) + "%");
    setText("adj-detail", plural(adj.blocks_left, "block") + " left · " + until(adj.estimated_at));
  } else {
    setText("adj-change", "none");
    setText("adj-detail", "this chain does not retarget");
  }
  const rev = o.revenue;
  const hashprice = rev.hashprice_btc_per_ph_day;
  if (testNet) {
    setText("hashprice-btc", "n/a on test networks");
    setText("hashprice-usd", "test coins have no price");
    return;
  }
  // BTC per PH/s per day x 1e8 sats / 1000 TH = sats per TH/s per day.
  const satsPerTh = (hashprice * 1e5).toFixed(1) + " sats per TH/s per day; ";
  setText("hashprice-btc", hashprice.toFixed(8) + " BTC");
  setText("hashprice-usd", satsPerTh + (rev.hashprice_usd_per_ph_day === null ? "no USD price"
    : "$" + rev.hashprice_usd_per_ph_day.toFixed(2) + " at $" + integer(Math.round(rev.btc_usd_price)) + "/BTC"));
}

// Tick steps for a time axis, seconds; the first giving at most ~7 ticks is used.
const TIME_STEPS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

function timeTicks(t0, t1) {
  const span = Math.max(1, t1 - t0);
  const step = TIME_STEPS.find((s) => span / s <= 7) || TIME_STEPS[TIME_STEPS.length - 1];
  // Align ticks to local midnight-based multiples so labels read 12:00, 13:00, ...
  const offset = new Date(t0 * 1000).getTimezoneOffset() * 60;
  const first = Math.ceil((t0 - offset) / step) * step + offset;
  const ticks = [];
  for (let t = first; t <= t1; t += step) ticks.push(t);
  return { ticks, step };
}

function timeLabel(t, withDate) {
  const d = new Date(t * 1000);
  // 24-hour times (midnight reads 00:00, not 12:00 AM) in the viewer's zone, named under the chart.
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return withDate ? d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time : time;
}

function renderChart(history) {
  const box = document.getElementById("chart");
  box.replaceChildren();
  const points = history.points;
  const W = 1000, H = 240, left = 70, bottom = 30, top = 8;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  const max = Math.max(1, ...points.map((p) => (p.high === null ? p.hashrate : p.high))) * 1.1;
  const t0 = points.length ? points[0].t : 0;
  const t1 = points.length ? points[points.length - 1].t + history.step_seconds : 1;
  const x = (t) => left + ((t - t0) / Math.max(1, t1 - t0)) * (W - left - 5);
  const y = (h) => top + (1 - h / max) * (H - top - bottom);
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    root.appendChild(svg("line", { x1: left, x2: W, y1: y(v), y2: y(v), class: "grid" }));
    const label = svg("text", { x: 4, y: y(v) + 4 });
    label.textContent = hashrate(v);
    root.appendChild(label);
  }
  // Time axis: ticks at round times, with the date where the range crosses a day.
  const crossesDay = new Date(t0 * 1000).toDateString() !== new Date(t1 * 1000).toDateString();
  const { ticks, step } = timeTicks(t0, t1);
  for (const t of ticks) {
    root.appendChild(svg("line", { x1: x(t), x2: x(t), y1: top, y2: H - bottom, class: "grid" }));
    const dayStart = new Date(t * 1000).getHours() === 0 && new Date(t * 1000).getMinutes() === 0;
    const label = svg("text", { x: x(t), y: H - 10, "text-anchor": "middle", class: "tick" });
    label.textContent = timeLabel(t, crossesDay && (dayStart || t === ticks[0] || step >= 86400));
    root.appendChild(label);
  }
  // Each point is its step's average, drawn at the middle of the step; the band is its 95 % interval.
  // A step nobody observed (the pool down, or not started yet) is null in the series: the line and the
  // band break there (a lone observed step between gaps is a dot with its interval as a whisker).
  const series = chartSeries(history);
  const runs = seriesRuns(series);
  box.series = series;               // what the chart was given (the browser test reads it)
  const mid = (p) => p.t + history.step_seconds / 2;
  const upperOf = (p) => (p.high === null ? p.hashrate : p.high);
  const at = (p, v) => `${x(mid(p)).toFixed(1)},${y(v).toFixed(1)}`;
  for (const run of runs) {
    if (run.length === 1) {
      const p = run[0];
      root.appendChild(svg("line", { x1: x(mid(p)), x2: x(mid(p)), y1: y(p.low), y2: y(upperOf(p)), class: "whisker" }));
      root.appendChild(svg("circle", { cx: x(mid(p)), cy: y(p.hashrate), r: 3, class: "dot" }));
      continue;
    }
    const upper = run.map((p) => at(p, upperOf(p)));
    const lower = run.slice().reverse().map((p) => at(p, p.low));
    root.appendChild(svg("polygon", { points: upper.concat(lower).join(" "), class: "band" }));
    root.appendChild(svg("polyline", { points: run.map((p) => at(p, p.hashrate)).join(" "), class: "line" }));
  }
  box.appendChild(root);
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  setText("chart-basis", "each point: the average over " + duration(history.step_seconds) +
    "; band: 95 % interval from its share count; gaps: the pool was not observed; times in " + zone);
}

function renderCountries(regions) {
  const box = document.getElementById("countries");
  box.replaceChildren();
  const top = regions.items.slice(0, 12);
  const max = Math.max(1e-9, ...top.map((r) => r.hashrate));
  for (const r of top) {
    const row = document.createElement("div");
    row.className = "bar-row";
    row.dataset.country = r.country;
    const label = document.createElement("span");
    label.className = "bar-label";
    label.textContent = r.country_name + (r.subdivision ? " – " + r.subdivision : "");
    const track = document.createElement("div");
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = ((100 * r.hashrate) / max).toFixed(1) + "%";
    track.appendChild(bar);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = (r.warming_up ? "warming up" : hashrate(r.hashrate)) + " · " + percent(r.share, 1);
    value.title = figureHover({ hashrate: r.hashrate, low: r.low, high: r.high, shares: r.shares,
      covered_seconds: r.covered_seconds, window_seconds: regions.window_seconds });
    row.append(label, track, value);
    box.appendChild(row);
  }
  if (!top.length) box.textContent = "No hashrate in the last hour.";
  const age = regions.database_age_days;
  setText("geo-database", "Geolocation: " + (regions.database || "none") + (regions.database_build
    ? " built " + regions.database_build + (age === null || age === undefined ? "" : ", " + plural(Math.floor(age), "day") + " ago")
    : ""));
  const stale = document.getElementById("geo-stale");
  stale.hidden = !regions.database_stale;
  stale.textContent = regions.database_stale ? `Stale geolocation: ${regions.database} is ${plural(Math.floor(age), "day")} old `
    + `(more than geo.max_database_age_days = ${regions.max_database_age_days}); IP blocks move between countries: `
    + "refresh it with geostratum geo update." : "";
  const attribution = document.getElementById("geo-attribution");
  attribution.textContent = (regions.attribution || "") +
    (regions.folded_regions ? " · " + regions.folded_regions + " small regions shown as Other" : "");
}

function renderBlocks(blocks) {
  const body = document.getElementById("blocks");
  body.replaceChildren();
  for (const b of blocks) {
    const row = document.createElement("tr");
    cell(row, integer(b.height)).title = b.hash;
    cell(row, ago(b.found_at));
    cell(row, b.worker);
    cell(row, coinAmount(b.reward_sat, coin));
    cell(row, b.reason ? b.status + ": " + b.reason : b.status);
    body.appendChild(row);
  }
  if (!blocks.length) { const row = document.createElement("tr"); cell(row, "No blocks yet.").colSpan = 5; body.appendChild(row); }
}

function renderWorkers(page) {
  const body = document.getElementById("worker-rows");
  body.replaceChildren();
  for (const w of page.items) {
    const row = document.createElement("tr");
    cell(row, "").appendChild(minerLink(w.account, w.name));
    for (const name of ["5m", "1h"]) cell(row, figureText(w.hashrate[name])).title = figureHover(w.hashrate[name]);
    cell(row, compact(w.difficulty));
    const counted = w.counted_since ? "counted since " + new Date(w.counted_since * 1000).toLocaleString()
      : "on its live connections";
    cell(row, integer(w.accepted)).title = counted;
    cell(row, integer(w.rejected)).title = counted;
    const best = w.best || {};
    const bestCell = cell(row, best.ever ? compact(best.ever.difficulty) : "–");
    bestCell.title = "this round: " + (best.round ? compact(best.round.difficulty) : "none yet");
    bestCell.dataset.round = best.round ? String(best.round.difficulty) : "";
    cell(row, ago(w.last_share_at));
    cell(row, w.country + (w.subdivision ? "-" + w.subdivision : ""));
    body.appendChild(row);
  }
}

// The account search: an exact account (or ACCOUNT.WORKER) opens its miner page; otherwise the
// accounts whose name holds the text are offered (with a read token), or a clean "no such account".
async function findAccount(event) {
  event.preventDefault();
  const text = document.getElementById("account-query").value.trim();
  const note = document.getElementById("account-result");
  note.replaceChildren();
  if (!text) return;
  const name = text.split(".", 1)[0];
  try {
    await api("/api/v1/accounts/" + encodeURIComponent(name) + "?history=1h");
    window.location.assign("/miner/" + encodeURIComponent(name));
    return;
  } catch (err) {
    if (!(err instanceof NotFound)) {
      note.textContent = err instanceof Unauthorized ? "Account pages need a read token." : "Search failed: " + err.message;
      return;
    }
  }
  let similar = [];
  if (sessionStorage.getItem(TOKEN_KEY)) {
    try {
      similar = (await api("/api/v1/accounts?limit=10&sort=name&order=asc&search=" + encodeURIComponent(name))).items;
    } catch (_) { /* the message below stands alone */ }
  }
  note.append("No account named “" + name + "” (none with a share in the last 24 h)" + (similar.length ? "; similar: " : "."));
  similar.forEach((a, i) => {
    if (i) note.append(", ");
    note.appendChild(minerLink(a.account, a.account));
  });
  document.body.dataset.search = similar.length ? "similar" : "missing";
}

// ---- polling ---------------------------------------------------------------------------------

async function poll() {
  const status = document.getElementById("status");
  try {
    const [overview, history, regions, blocks] = await Promise.all([
      api("/api/v1/overview"), api("/api/v1/history?window=24h"),
      api("/api/v1/regions?level=country&window=1h"), api("/api/v1/blocks?limit=10"),
    ]);
    renderOverview(overview);
    renderChart(history);
    renderCountries(regions);
    renderBlocks(blocks);
    const tokenGiven = Boolean(sessionStorage.getItem(TOKEN_KEY));
    document.getElementById("workers-note").hidden = tokenGiven;
    if (tokenGiven) renderWorkers(await api("/api/v1/workers?limit=15&sort=hashrate"));
    document.getElementById("signin").hidden = true;
    document.getElementById("main").hidden = false;
    status.textContent = "live";
    status.className = "pill ok";
    setText("updated", "updated " + new Date().toLocaleTimeString());
    document.body.dataset.state = "live";
    document.body.dataset.polls = String(Number(document.body.dataset.polls) + 1);
  } catch (err) {
    if (err instanceof Unauthorized) {
      askForToken(status);
      return; // polling resumes when a token is entered
    }
    status.textContent = "error: " + err.message;
    status.className = "pill bad";
    document.body.dataset.state = "error";
  }
  timer = setTimeout(poll, refreshSeconds * 1000);
}

async function boot() {
  takeTokenFromFragment();
  try {
    const settings = await api("/api/v1/dashboard");
    refreshSeconds = settings.refresh_seconds;
    anonymousAllowed = settings.anonymous;
  } catch (_) { /* keep defaults */ }
  setText("refresh", String(refreshSeconds));
  document.getElementById("account-form").addEventListener("submit", findAccount);
  document.getElementById("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = document.getElementById("signin-token").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    clearTimeout(timer);
    poll();
  });
  if (!sessionStorage.getItem(TOKEN_KEY) && !anonymousAllowed) {
    document.getElementById("signin").hidden = false;
    document.getElementById("main").hidden = true;
    document.body.dataset.state = "unauthorized";
    return;
  }
  poll();
}

document.addEventListener("DOMContentLoaded", boot);
