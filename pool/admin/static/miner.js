// Geostratum miner page: one account's workers, hashrate (with 95 % ranges), best shares, earnings
// and payouts, from GET /api/v1/accounts/<account>. No build step, no dependencies.
// A read token (when the pool's account pages are not public) is given once as #token=... and kept
// in sessionStorage for this tab, as on the dashboard.
"use strict";

const REFRESH_SECONDS = 10;
const account = decodeURIComponent(window.location.pathname.replace(/^\/miner\//, ""));

// TOKEN_KEY, takeTokenFromFragment(), api(), Unauthorized, NotFound: common.js
const fetchAccount = () => api("/api/v1/accounts/" + encodeURIComponent(account) + "?history=6h");

// ---- formatting (integer, plural, compact, ago, figureText, coinAmount, setText, cell, svg: common.js) ----

const diff = (d) => compact(d);
function duration(s) {
  if (s === null || !isFinite(s)) return "never at this hashrate";
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return Math.round(s / 3600) + " h";
  if (s < 2 * 365 * 86400) return Math.round(s / 86400) + " days";
  return (s / (365.25 * 86400)).toPrecision(3) + " years";
}
let coin = "BTC";
function chance(p) {
  if (p === null || p === undefined) return "–";
  if (p > 0.9999) return "≈ 100 %";
  if (p >= 0.01) return (p * 100).toFixed(2) + " %";
  return "1 in " + integer(Math.round(1 / Math.max(p, 1e-300)));
}
// An estimate {value, low, high} of satoshis per day, every figure in the value's format.
function perDay(e) {
  const d = coinDecimals(e.value || e.high || 0);
  const amount = (x) => coinAmount(x, coin, d).replace(" " + coin, "");
  return {
    value: coinAmount(e.value, coin, d) + "/day",
    range: amount(e.low) + " – " + (e.high === null ? "?" : amount(e.high)) + " " + coin + "/day",
  };
}

// A hashrate is a figure {hashrate, low, high, shares, warming_up}, or a bare number (no interval).
function figure(value) {
  if (value === null || value === undefined) return { hashrate: 0, low: 0, high: null, shares: 0, known: false };
  if (typeof value === "number") return { hashrate: value, low: null, high: null, shares: null, known: false };
  return { hashrate: value.hashrate, low: value.low, high: value.high, shares: value.shares,
           warming_up: value.warming_up, known: true };
}
const rateText = (value) => figureText(figure(value));
function rangeText(value) {
  const f = figure(value);
  if (!f.known) return "range: not known yet";
  const high = f.high === null ? "?" : hashrate(f.high);
  return "95 %: " + hashrate(f.low) + " – " + high + " (" + plural(f.shares, "share") + ")";
}

// ---- charts ------------------------------------------------------------------------------------

// Each point is its step's average (only steps that were observed), the band its 95 % interval.
function chart(box, history, big) {
  box.replaceChildren();
  const all = (history && history.points) || [];
  const points = all.filter((p) => p.seconds === undefined || p.seconds > 0);
  const W = big ? 800 : 140, H = big ? 220 : 28, left = big ? 60 : 0, bottom = big ? 18 : 0;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  if (!points.length) {
    if (big) {
      const note = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
      note.textContent = "no shares in this period";
      root.appendChild(note);
    }
    box.appendChild(root);
    return;
  }
  // The axis spans the whole period asked for (its steps, observed or not), so a young account's first
  // step is a dot at the right end rather than an empty chart.
  const t0 = all[0].t, t1 = Math.max(all[all.length - 1].t, t0 + 1);
  const upperOf = (p) => (p.high === null || p.high === undefined ? p.hashrate : p.high);
  const top = Math.max(...points.map(upperOf), 1);
  const x = (t) => left + (W - left) * (t - t0) / Math.max(1, t1 - t0);
  const y = (v) => (H - bottom) - (H - bottom - 4) * v / top;
  if (big) {
    for (const v of [top / 2, top]) {
      root.appendChild(svg("line", { x1: left, x2: W, y1: y(v), y2: y(v), class: "grid" }));
      const label = svg("text", { x: 4, y: y(v) + 4 });
      label.textContent = hashrate(v);
      root.appendChild(label);
    }
    for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
      const label = svg("text", { x: x(t), y: H - 4, "text-anchor": anchor });
      label.textContent = new Date(t * 1000).toISOString().slice(5, 16).replace("T", " ") + " UTC";
      root.appendChild(label);
    }
  }
  // Steps nobody observed (the pool was down) break the line: no figure is drawn across them.
  const step = (history && history.step_seconds) || 0;
  const runs = [[]];
  for (const p of points) {
    const run = runs[runs.length - 1];
    if (run.length && step && p.t - run[run.length - 1].t > step) runs.push([p]); else run.push(p);
  }
  for (const run of runs) {
    if (big && run.length > 1 && run[0].low !== undefined) {
      const upper = run.map((p) => `${x(p.t)},${y(upperOf(p))}`);
      const lower = run.slice().reverse().map((p) => `${x(p.t)},${y(p.low)}`);
      root.appendChild(svg("polygon", { points: upper.concat(lower).join(" "), class: "band" }));
    }
    if (big && run.length === 1 && run[0].low !== undefined) {   // a lone step: its interval as a whisker
      root.appendChild(svg("line", { x1: x(run[0].t), x2: x(run[0].t), y1: y(run[0].low), y2: y(upperOf(run[0])),
                                     class: "whisker" }));
    }
    const line = run.map((p) => `${x(p.t)},${y(p.hashrate)}`).join(" ");
    root.appendChild(svg(run.length > 1 ? "polyline" : "circle", run.length > 1 ? { points: line, class: "line" }
      : { cx: x(run[0].t), cy: y(run[0].hashrate), r: big ? 2.5 : 1.5, class: "dot" }));
  }
  box.appendChild(root);
}

// ---- rendering ---------------------------------------------------------------------------------

const bestText = (b) => (b ? diff(b.difficulty) : "–");
const day = (t) => new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
// Back to the operator dashboard for a viewer holding a read token, else to the pool's home page.
function backLink(home) {
  const back = document.getElementById("back");
  const operator = Boolean(sessionStorage.getItem(TOKEN_KEY));
  back.href = operator ? "/" : home || "/";
  back.textContent = operator ? "← operator dashboard" : "← pool home";
  back.dataset.kind = operator ? "dashboard" : "home";
}
const PAYOUT_ROWS = 10;             // the newest lines shown until the miner asks for the rest
let showAllPayouts = false;
// The books' journal kinds (pool/money/migrations), in words.
const PAYOUT_KINDS = { block_credit: "block credit", orphan_reversal: "orphaned block taken back",
                       pps_credit: "share credit", payout: "payout", payout_sent: "payout sent",
                       payout_cancel: "payout cancelled", opening_balance: "opening balance" };

function render(data) {
  const s = data.summary, extra = data.miner || {};
  coin = extra.chain && extra.chain !== "main" ? "test BTC" : "BTC";
  backLink(extra.home_url);
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
  setText("last-share", ago(s.last_share_at));
  setText("accepted", integer(s.accepted));
  setText("rejected", integer(s.rejected));
  setText("accepted-note", s.rejected_since ? "rejected since " + day(s.rejected_since) : "rejected on live connections");
  const best = extra.best;
  setText("best-ever", best ? bestText(best.account.ever) : "–");
  setText("best-round", best && best.account.round ? bestText(best.account.round) : "none yet");
  setText("best-who", best && best.account.ever ? "by " + best.account.ever.worker + ", " + ago(best.account.ever.found_at) : "");
  const e = extra.earnings;
  if (e) {
    const day = perDay(e.sat_per_day);
    const warming = e.warming_up ? "warming up (" + plural(e.shares, "share") + ")" : "";
    setText("earn-day", warming || day.value);
    setText("earn-range", (e.shares ? "95 %: " + day.range : "range: not known yet") + " · "
      + e.scheme.toUpperCase() + ", " + e.fee_percent + " % fee");
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
    setText("solo-chance", e && e.warming_up ? "warming up (" + plural(e.shares, "share") + ")" : chance(c.value) + " per day");
    setText("solo-wait", duration(wait.value) + (e && e.shares ? " (95 %: " + duration(wait.low) + " – "
      + duration(wait.high) + "; " + chance(c.low) + " – " + chance(c.high) + " a day)" : ""));
  }
  // null: this pool keeps no payout books (chain.mode = "solo": the coinbase pays the finder), or
  // they are not answering; 0 is 0.
  const noBooks = extra.earnings && extra.earnings.scheme === "solo" ? "n/a (solo: blocks pay you directly)"
    : "unknown (payout books not answering)";
  setText("balance", s.balance_sat === null || s.balance_sat === undefined ? noBooks : coinAmount(s.balance_sat, coin));
  setText("paid", s.paid_sat === null || s.paid_sat === undefined ? "–" : coinAmount(s.paid_sat, coin));
  chart(document.getElementById("chart"), data.history, true);
  setText("chart-basis", "each point: the average over " + Math.round(data.history.step_seconds / 60)
    + " min; band: 95 % interval from its share count");

  const body = document.getElementById("workers");
  body.replaceChildren();
  for (const w of data.workers) {
    const row = document.createElement("tr");
    const more = (extra.workers || {})[w.name] || {};
    const wb = w.best;
    cell(row, w.name.slice(w.account.length + 1) || w.name);
    cell(row, w.connections > 0 ? "online" : "offline", w.connections > 0 ? "online" : "offline");
    const hrCell = cell(row, rateText(w.hashrate["1h"]), "num");
    hrCell.title = rangeText(w.hashrate["1h"]);
    const spark = cell(row, "", "spark");
    chart(spark, more.history, false);
    // The books' counts since counting began (online or offline); without them, the live connections'.
    const counted = w.counted_since ? "since " + day(w.counted_since) : w.connections > 0 ? "live connections" : "";
    const shown = counted ? null : "–";
    cell(row, shown || integer(w.accepted), "num").title = counted;
    const reasons = Object.entries(more.rejected_by_reason || {}).map(([k, v]) => k + " " + v).join(", ");
    cell(row, shown || integer(w.rejected) + (reasons ? " (" + reasons + ")" : ""), "num").title = counted;
    row.dataset.counted = counted;
    cell(row, wb ? [bestText(wb.ever), bestText(wb.round), wb.connection ? diff(wb.connection) : "–"].join(" · ")
      : "–", "num");
    cell(row, ago(w.last_share_at));
    cell(row, more.connected_since ? ago(more.connected_since) : "–");
    cell(row, w.firmware);
    cell(row, w.country + (w.subdivision ? "-" + w.subdivision : ""));
    row.dataset.worker = w.name;
    row.dataset.status = w.connections > 0 ? "online" : "offline";
    body.appendChild(row);
  }

  const pays = document.getElementById("payouts");
  pays.replaceChildren();
  const lines = extra.payouts || [];
  for (const p of showAllPayouts ? lines : lines.slice(0, PAYOUT_ROWS)) {
    const row = document.createElement("tr");
    cell(row, day(p.at));
    cell(row, PAYOUT_KINDS[p.kind] || p.kind);
    cell(row, msatAmount(p.amount_msat, coin), "num");
    cell(row, p.ref.slice(0, 16)).title = p.ref;
    pays.appendChild(row);
  }
  if (lines.length > PAYOUT_ROWS && !showAllPayouts) {
    const row = document.createElement("tr");
    const more = cell(row, "");
    more.colSpan = 4;
    const button = document.createElement("button");
    button.id = "more-payouts";
    button.textContent = "show " + plural(lines.length - PAYOUT_ROWS, "older line");
    button.addEventListener("click", () => { showAllPayouts = true; render(data); });
    more.appendChild(button);
    pays.appendChild(row);
  }
  if (!pays.children.length) {
    const row = document.createElement("tr");
    cell(row, s.balance_sat === null || s.balance_sat === undefined ? noBooks : "none yet").colSpan = 4;
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
    if (err instanceof NotFound) {
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
backLink(null);
poll();
