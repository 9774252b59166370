// What every page shares (loaded before the page's own script): the read token, given once as
// #token=... and kept in sessionStorage for this tab (sent as a bearer header, never in a URL), fetching
// the admin API with it, and formatting.
"use strict";

const TOKEN_KEY = "geostratum.readToken";
const SVG_NS = "http://www.w3.org/2000/svg";

function takeTokenFromFragment() {
  const match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

class Unauthorized extends Error {}
class NotFound extends Error {}

async function fetchOk(path, accept) {
  const headers = { Accept: accept };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401 || response.status === 403) throw new Unauthorized(path);
  if (!response.ok) {
    let reason = response.statusText;
    try { reason = (await response.json()).reason; } catch (_) { /* not JSON */ }
    const message = path + ": " + response.status + " " + reason;
    throw response.status === 404 ? new NotFound(message) : new Error(message);
  }
  return response;
}
const api = async (path) => (await fetchOk(path, "application/json")).json();

// The API refused the token: forget it and show the page's sign-in form instead of its content.
function askForToken(status) {
  sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById("signin").hidden = false;
  document.getElementById("main").hidden = true;
  status.textContent = "token needed";
  document.body.dataset.state = "unauthorized";
}

const UNITS = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "ZH/s"];
function hashrate(value) {
  if (!isFinite(value) || value <= 0) return "0 H/s";
  let i = 0;
  while (value >= 1000 && i < UNITS.length - 1) { value /= 1000; i++; }
  return value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2) + " " + UNITS[i];
}

// ---- formatting (every page) -------------------------------------------------------------------

const integer = (x) => Number(x).toLocaleString("en-US");
// "1 share", "2 shares", "1,204 shares".
const plural = (n, one, many) => integer(n) + " " + (Number(n) === 1 ? one : many || one + "s");

// A bare number with an SI suffix (difficulty): 0.0000525, 12.5, 3.21k, 1.05M.
const SI = ["", "k", "M", "G", "T", "P", "E", "Z"];
function compact(value) {
  if (value === null || value === undefined || !isFinite(value)) return "–";
  let i = 0;
  while (Math.abs(value) >= 1000 && i < SI.length - 1) { value /= 1000; i++; }
  // Below 1 (CPU miners, test networks) keep three significant digits instead of rounding to 0.
  if (i === 0 && value !== 0 && Math.abs(value) < 1) return Number(value.toPrecision(3)).toString();
  return (i === 0 ? String(Math.round(value * 100) / 100) : value.toFixed(2)) + SI[i];
}

function ago(unixSeconds) {
  if (!unixSeconds) return "never";
  const s = Math.max(0, Date.now() / 1000 - unixSeconds);
  if (s < 90) return Math.round(s) + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

// A hashrate figure {hashrate, low, high, shares, warming_up}: the value, or "warming up (N shares)"
// when it rests on fewer shares than the pool's minimum.
function figureText(f) {
  if (!f) return "–";
  if (f.warming_up) return f.shares ? "warming up (" + plural(f.shares, "share") + ")" : "no shares yet";
  return hashrate(f.hashrate);
}

// Amounts in the chain's coin ("BTC", or "test BTC" off mainnet). Exact amounts (balances, payouts)
// to the satoshi; an estimate and its range in one format, both ends to the decimals of its central
// value: 2 from one coin up, else five significant digits ("913.57 – 2,310.00 test BTC/day").
function coinDecimals(sat) {
  const coins = Math.abs(sat) / 1e8;
  if (!(coins > 0) || !isFinite(coins)) return 8;
  return coins >= 1 ? 2 : Math.min(8, 4 - Math.floor(Math.log10(coins)));
}
function coinAmount(sat, coin, decimals = 8) {
  if (sat === null || sat === undefined || !isFinite(sat)) return "–";
  return (sat / 1e8).toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals })
    + " " + coin;
}
const msatAmount = (msat, coin) => coinAmount(Math.trunc(msat / 1000), coin);

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
// A history's points as a chart is given them: one per step, null for a step nobody observed (the pool
// was down or not started yet: its seconds observed are 0, no bucket holds a figure for it).
function chartSeries(history) {
  return ((history && history.points) || []).map((p) => (p.seconds === undefined || p.seconds > 0 ? p : null));
}
// The unbroken runs of a series: a line is drawn along each, never across the nulls between them.
function seriesRuns(series) {
  const runs = [[]];
  for (const p of series) {
    if (p !== null) runs[runs.length - 1].push(p);
    else if (runs[runs.length - 1].length) runs.push([]);
  }
  return runs.filter((run) => run.length);
}
// A link to an account's own page (the worker or account name as its text).
function minerLink(account, text) {
  const a = document.createElement("a");
  a.href = "/miner/" + encodeURIComponent(account);
  a.textContent = text;
  return a;
}
