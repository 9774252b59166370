// Formatting every page shares (loaded before the page's own script).
"use strict";

const UNITS = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "ZH/s"];
function hashrate(value) {
  if (!isFinite(value) || value <= 0) return "0 H/s";
  let i = 0;
  while (value >= 1000 && i < UNITS.length - 1) { value /= 1000; i++; }
  return value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2) + " " + UNITS[i];
}
