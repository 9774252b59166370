// Geostratum miner page: one account's workers, hashrate (with 95 % ranges), best shares, earnings
// and payouts, from GET /api/v1/accounts/<account>. No build step, no dependencies.
// A read token (when the pool's account pages are not public) is given once as #token=... and kept
// in sessionStorage for this tab, as on the dashboard.
"use strict";

const REFRESH_SECONDS = 10;
const account = decodeURIComponent(window.location.pathname.replace(/^\/miner\//, ""));

// TOKEN_KEY, takeTokenFromFragment(), Unauthorized: common.js
class Missing extends Error {}

async function fetchAccount() {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch("/api/v1/accounts/" + encodeURIComponent(account) + "?history=6h",
    { headers, cache: "no-store" });
  if (response.status === 401 || response.status === 403) throw new Unauthorized();
  if (response.status === 404) throw new Missing();
  if (!response.ok) throw new Error(response.status + " " + response.statusText);
  return response.json();
}

// ---- formatting --------------------------------------------------------------------------------

const SI = ["", "k", "M", "G", "T", "P", "E", "Z"];
function scaled(value, unit) {
  if (value === null || value === undefined || !isFinite(value)) return "–";
  let i = 0;
  while (Math.abs(value) >= 1000 && i < SI.length - 1) { value /= 1000; i++; }
  // Below 1 (CPU miners, test networks) keep three significant digits instead of rounding to 0.
  if (i === 0 && value !== 0 && Math.abs(value) < 1) return Number(value.toPrecision(3)) + " " + unit;
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return value.toFixed(digits) + " " + SI[i] + unit;
}
const rate = (h) => scaled(h, "H/s");
const diff = (d) => (d === null || d === undefined ? "–" : scaled(d, "").trim());
function when(t) {
  if (!t) return "never";
  const s = Math.max(0, Date.now() / 1000 - t);
  if (s < 90) return Math.round(s) + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}
function duration(s) {
  if (s === null || !isFinite(s)) return "never at this hashrate";
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return Math.round(s / 3600) + " h";
  if (s < 2 * 365 * 86400) return Math.round(s / 86400) + " days";
  return (s / (365.25 * 86400)).toPrecision(3) + " years";
}
let coin = "BTC";
const sats = (x) => (x === null || x === undefined ? "–" : (x / 1e8).toFixed(8) + " " + coin);
function bigSats(x) {
  if (x === null || x === undefined || !isFinite(x)) return "–";
  const btcValue = x / 1e8;
  return (btcValue >= 1000 ? scaled(btcValue, "").trim() : btcValue.toFixed(btcValue >= 1 ? 4 : 8)) + " " + coin;
}
function chance(p) {
  if (p === null || p === undefined) return "–";
  if (p > 0.9999) return "≈ 100 %";
  if (p >= 0.01) return (p * 100).toFixed(2) + " %";
  return "1 in " + Math.round(1 / Math.max(p, 1e-300)).toLocaleString("en-US");
}

// A hashrate is a bare number or a figure {hashrate, low, high, shares, warming_up}.
function figure(value) {
  if (value === null || value === undefined) return { hashrate: 0, low: 0, high: null, shares: 0, known: false };
  if (typeof value === "number") return { hashrate: value, low: null, high: null, shares: null, known: false };
  return { hashrate: value.hashrate, low: value.low, high: value.high, shares: value.shares,
           warming: value.warming_up, known: true };
}
function rateText(value) {
  const f = figure(value);
  return f.warming ? "warming up (" + f.shares + " shares)" : rate(f.hashrate);
}
function rangeText(value) {
  const f = figure(value);
  if (!f.known) return "range: not known yet";
  const high = f.high === null ? "?" : rate(f.high);
  return "95 %: " + rate(f.low) + " – " + high + " (" + f.shares + " shares)";
}

function setText(id, text) { document.getElementById(id).textContent = text; }
function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}
function svg(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

// ---- charts ------------------------------------------------------------------------------------

// Each point is its step's average (only steps that were observed), the band its 95 % interval.
function chart(box, history, big) {
  box.replaceChildren();
  const points = ((history && history.points) || []).filter((p) => p.seconds === undefined || p.seconds > 0);
  const W = big ? 800 : 140, H = big ? 220 : 28, left = big ? 60 : 0, bottom = big ? 18 : 0;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  if (points.length < 2) {
    if (big) {
      const note = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
      note.textContent = "not enough history yet (one point per " + Math.round((history ? history.step_seconds : 0) / 60)
        + " min)";
      root.appendChild(note);
    }
    box.appendChild(root);
    return;
  }
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  const upperOf = (p) => (p.high === null || p.high === undefined ? p.hashrate : p.high);
  const top = Math.max(...points.map(upperOf), 1);
  const x = (t) => left + (W - left) * (t - t0) / Math.max(1, t1 - t0);
  const y = (v) => (H - bottom) - (H - bottom - 4) * v / top;
  if (big) {
    for (const v of [top / 2, top]) {
      root.appendChild(svg("line", { x1: left, x2: W, y1: y(v), y2: y(v), class: "grid" }));
      const label = svg("text", { x: 4, y: y(v) + 4 });
      label.textContent = rate(v);
      root.appendChild(label);
    }
    for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
      const label = svg("text", { x: x(t), y: H - 4, "text-anchor": anchor });
      label.textContent = new Date(t * 1000).toISOString().slice(5, 16).replace("T", " ") + " UTC";
      root.appendChild(label);
    }
  }
  const line = points.map((p) => `${x(p.t)},${y(p.hashrate)}`).join(" ");
  if (big && points[0].low !== undefined) {
    const upper = points.map((p) => `${x(p.t)},${y(upperOf(p))}`);
    const lower = points.slice().reverse().map((p) => `${x(p.t)},${y(p.low)}`);
    root.appendChild(svg("polygon", { points: upper.concat(lower).join(" "), class: "band" }));
  }
  root.appendChild(svg("polyline", { points: line, class: "line" }));
  box.appendChild(root);
}

// ---- rendering ---------------------------------------------------------------------------------

function renderBest(best) {
  if (!best || !best.ever) return "–";
  return diff(best.ever.difficulty);
}

function render(data) {
  const s = data.summary, extra = data.miner || {};
  setText("account", s.account);
  setText("user-hint", s.account);
  const hr = s.hashrate;
  setText("hr-main", rateText(hr["1h"]));
  setText("hr-range", rangeText(hr["1h"]));
  setText("hr-5m", rateText(hr["5m"]));
  setText("hr-24h", rateText(hr["24h"]));
  const online = data.workers.filter((w) => w.connections > 0).length;
  setText("workers-online", online + " online");
  setText("workers-offline", String(data.workers.length - online));
  setText("last-share", when(s.last_share_at));
  setText("accepted", s.accepted.toLocaleString("en-US"));
  setText("rejected", s.rejected.toLocaleString("en-US"));
  const best = extra.best;
  setText("best-ever", best ? renderBest(best.account) : "–");
  setText("accepted-note", "rejected on live connections");
  setText("best-round", best && best.account.round ? diff(best.account.round.difficulty) : "none yet");
  setText("best-who", best && best.account.ever ? "by " + best.account.ever.worker + ", " + when(best.account.ever.found_at) : "");
  const e = extra.earnings;
  coin = extra.chain && extra.chain !== "main" ? "test BTC" : "BTC";
  if (e) {
    const day = e.sat_per_day;
    setText("earn-day", e.warming_up ? "warming up (" + e.shares + " shares)" : bigSats(day.value) + " / day");
    setText("earn-range", (e.shares ? "95 %: " + bigSats(day.low) + " – " + (day.high === null ? "?" : bigSats(day.high))
      : "range: not known yet") + " · " + e.scheme.toUpperCase() + ", " + e.fee_percent + " % fee");
    setText("earn-basis", "at the " + Math.round(e.window_seconds / 60) + "-min hashrate"
      + (coin === "BTC" ? "" : " on " + extra.chain + " (test coins, trivial difficulty)"));
  } else {
    setText("earn-day", "–");
    setText("earn-range", "the node is not answering");
  }
  const solo = extra.solo;
  document.getElementById("solo-card").hidden = !solo;
  if (solo) {
    const c = solo.chance_per_day, wait = solo.expected_seconds_to_block;
    setText("solo-chance", e && e.warming_up ? "warming up (" + e.shares + " shares)" : chance(c.value) + " per day");
    setText("solo-wait", duration(wait.value) + (e && e.shares ? " (95 %: " + duration(wait.low) + " – "
      + duration(wait.high) + "; " + chance(c.low) + " – " + chance(c.high) + " a day)" : ""));
  }
  setText("balance", s.balance_sat === null || s.balance_sat === undefined ? "n/a (solo)" : sats(s.balance_sat));
  setText("paid", extra.paid_sat === null || extra.paid_sat === undefined ? "–" : sats(extra.paid_sat));
  chart(document.getElementById("chart"), data.history, true);
  setText("chart-basis", "each point: the average over " + Math.round(data.history.step_seconds / 60)
    + " min; band: 95 % interval from its share count");

  const body = document.getElementById("workers");
  body.replaceChildren();
  for (const w of data.workers) {
    const row = document.createElement("tr");
    const more = (extra.workers || {})[w.name] || {};
    const wb = best && best.workers ? best.workers[w.name] : null;
    cell(row, w.name.slice(w.account.length + 1) || w.name);
    cell(row, w.connections > 0 ? "online" : "offline", w.connections > 0 ? "online" : "offline");
    const hrCell = cell(row, rateText(w.hashrate["1h"]), "num");
    hrCell.title = rangeText(w.hashrate["1h"]);
    const spark = cell(row, "", "spark");
    chart(spark, more.history, false);
    // Share counts are those of the live connections: an offline worker has none to show.
    const live = w.connections > 0;
    cell(row, live ? w.accepted.toLocaleString("en-US") : "–", "num");
    const reasons = Object.entries(more.rejected_by_reason || {}).map(([k, v]) => k + " " + v).join(", ");
    cell(row, live ? w.rejected + (reasons ? " (" + reasons + ")" : "") : "–", "num");
    cell(row, wb ? [wb.ever, wb.round].map((b) => (b ? diff(b.difficulty) : "–")).join(" · ")
      + " · " + (wb.connection ? diff(wb.connection) : "–") : "–", "num");
    cell(row, when(w.last_share_at));
    cell(row, more.connected_since ? when(more.connected_since) : "–");
    cell(row, w.firmware);
    cell(row, w.country + (w.subdivision ? "-" + w.subdivision : ""));
    row.dataset.worker = w.name;
    row.dataset.status = w.connections > 0 ? "online" : "offline";
    body.appendChild(row);
  }

  const pays = document.getElementById("payouts");
  pays.replaceChildren();
  for (const p of extra.payouts || []) {
    const row = document.createElement("tr");
    cell(row, new Date(p.at * 1000).toISOString().slice(0, 16).replace("T", " "));
    cell(row, p.kind);
    cell(row, sats(p.amount_sat), "num");
    cell(row, p.ref.slice(0, 16));
    pays.appendChild(row);
  }
  if (!pays.children.length) {
    const row = document.createElement("tr");
    cell(row, "none yet").colSpan = 4;
    pays.appendChild(row);
  }
  const urls = document.getElementById("urls");
  urls.replaceChildren();
  for (const u of extra.stratum_urls || []) {
    const li = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = u;
    li.appendChild(code);
    urls.appendChild(li);
  }
}

// ---- polling -----------------------------------------------------------------------------------

async function poll() {
  const status = document.getElementById("status");
  try {
    const data = await fetchAccount();
    render(data);
    document.getElementById("main").hidden = false;
    document.getElementById("signin").hidden = true;
    status.textContent = "live";
    status.className = "pill ok";
    setText("updated", "updated " + new Date().toISOString().slice(11, 19) + " UTC");
    document.body.dataset.state = "ready";
  } catch (err) {
    if (err instanceof Unauthorized) {
      document.getElementById("signin").hidden = false;
      document.body.dataset.state = "signin";
      status.textContent = "token needed";
      return;
    }
    if (err instanceof Missing) {
      document.getElementById("missing").hidden = false;
      document.getElementById("main").hidden = true;
      setText("missing-name", account);
      status.textContent = "404";
      status.className = "pill bad";
      document.body.dataset.state = "missing";
      return;
    }
    status.textContent = "error: " + err.message;
    status.className = "pill bad";
  }
  document.body.dataset.polls = String(Number(document.body.dataset.polls) + 1);
  setTimeout(poll, REFRESH_SECONDS * 1000);
}

document.getElementById("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = document.getElementById("signin-token").value.trim();
  if (value) { sessionStorage.setItem(TOKEN_KEY, value); poll(); }
});
takeTokenFromFragment();
poll();
