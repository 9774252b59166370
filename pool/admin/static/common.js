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

async function fetchOk(path, accept) {
  const headers = { Accept: accept };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401 || response.status === 403) throw new Unauthorized(path);
  if (!response.ok) {
    let reason = response.statusText;
    try { reason = (await response.json()).reason; } catch (_) { /* not JSON */ }
    throw new Error(path + ": " + response.status + " " + reason);
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
