// kpimon board: draws the screens the server pushes (server-sent events), rotates them, ages every tile.
// No framework, no build step. The server sends numbers already formatted; this file only lays them out.
"use strict";

const settings = JSON.parse(document.body.dataset.settings);
const query = new URLSearchParams(location.search);
const pinned = query.get("screen");
const rotateSeconds = query.has("rotate") ? Number(query.get("rotate")) : settings.rotate;
const NEW_SECONDS = 60;

let state = null; // the last message: {complete, problem, screens}
let clockOffset = 0; // server time - this machine's time, in seconds
let connected = false;
let current = pinned || settings.screens[0];

function serverNow() {
  return Date.now() / 1000 + clockOffset;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function ageText(seconds) {
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function timeText(epoch) {
  return new Intl.DateTimeFormat("en-GB", { timeZone: settings.timezone, hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(epoch * 1000));
}

function progressHtml(progress) {
  const fill = Math.min(Math.max(progress.ratio, 0), 1) * 100;
  const pace = progress.pace === null ? "" : `<span class="pace" style="left:calc(${Math.min(Math.max(progress.pace, 0), 1) * 100}% - 0.25vw)" title="pace"></span>`;
  return `<div class="progress-line"><div class="track"><span class="fill" style="width:${fill}%"></span>${pace}</div><span class="progress-text">${escapeHtml(progress.text)}</span></div>`;
}

function leaderboardHtml(tile) {
  const progress = tile.rows.some((row) => row.progress);
  const head = tile.columns.map((column) => `<th>${escapeHtml(column.label)}</th>`).join("");
  const rows = tile.rows.map((row) => {
    const cells = row.cells.map((cell, i) => `<td data-key="${escapeHtml(row.rep)}:${tile.columns[i].key}" data-value="${cell.value ?? ""}">${escapeHtml(cell.text)}</td>`).join("");
    const bar = progress ? `<td class="progress">${row.progress ? progressHtml(row.progress) : "no goal"}</td>` : "";
    return `<tr data-rep="${escapeHtml(row.rep)}"><td class="rank">${row.rank}</td><td class="name">${escapeHtml(row.name)}${settings.team ? "" : `<small>${escapeHtml(row.team)}</small>`}</td>${cells}${bar}</tr>`;
  }).join("");
  const barHead = progress ? `<th class="progress">${escapeHtml(tile.progress_label || "Goal")}</th>` : "";
  return `<table class="leaderboard"><thead><tr><th class="rank">#</th><th class="name">Rep</th>${head}${barHead}</tr></thead><tbody>${rows}</tbody></table>`;
}

function funnelHtml(tile) {
  const top = Math.max(...tile.stages.map((stage) => stage.value || 0), 1);
  const parts = [];
  tile.stages.forEach((stage, i) => {
    const width = Math.max(((stage.value || 0) / top) * 100, 1);
    parts.push(`<div class="stage" data-key="${stage.key}" data-value="${stage.value ?? ""}"><span class="label">${escapeHtml(stage.label)}</span><span class="shape-track"><span class="shape" style="width:${width}%"></span></span><span class="number">${escapeHtml(stage.text)}</span></div>`);
    const step = tile.steps[i];
    if (step) {
      parts.push(`<div class="step" data-key="${step.key}" data-value="${step.value ?? ""}"><span>↓ ${escapeHtml(step.label)}</span><span class="rate">${escapeHtml(step.text)}</span><span>${escapeHtml(step.change)}</span></div>`);
    }
  });
  return `<div class="funnel">${parts.join("")}</div>`;
}

function statsHtml(items, pair) {
  const cells = items.map((item) => `<div class="stat" data-key="${item.key}" data-value="${item.value ?? ""}"><div class="label">${escapeHtml(item.label)}</div><div class="value">${escapeHtml(item.text)}</div></div>`).join("");
  return `<div class="stats${pair ? " pair" : ""}">${cells}</div>`;
}

function goalHtml(tile) {
  const goal = tile.goal ? `${progressHtml(tile.goal)}<p class="goal-note">${escapeHtml(tile.goal.note)}</p>` : `<p class="goal-note">No goal set for this board.</p>`;
  return `<div class="stat" data-key="${tile.id}" data-value="${tile.value ?? ""}"><div class="big">${escapeHtml(tile.text)}</div></div>${goal}`;
}

function tickerHtml(tile) {
  const now = serverNow();
  const entries = tile.entries.length
    ? tile.entries.map((entry) => {
        const fresh = entry.at !== null && now - entry.at < NEW_SECONDS;
        const when = entry.at === null ? "earlier" : timeText(entry.at);
        return `<li class="${fresh ? "new" : ""}">${fresh ? '<span class="new-flag">NEW</span>' : ""}<span class="when">${when}</span>${escapeHtml(entry.text)}</li>`;
      }).join("")
    : '<li class="empty">No deal won yet today; new ones appear here as they close.</li>';
  return `${statsHtml(tile.items, true)}<ul class="ticker">${entries}</ul>`;
}

const BODIES = {
  leaderboard: leaderboardHtml,
  funnel: funnelHtml,
  stats: (tile) => statsHtml(tile.items, false),
  goal: goalHtml,
  ticker: tickerHtml,
};

function tileHtml(tile) {
  const wide = tile.kind === "leaderboard" || tile.kind === "funnel" || tile.kind === "ticker" || tile.kind === "goal";
  return `<section class="tile${wide ? " wide" : ""}" data-tile="${tile.id}" data-as-of="${tile.as_of ?? ""}">
    <header><h2>${escapeHtml(tile.title)}</h2><p class="meta"><span class="stale-flag">⚠ STALE · </span>${escapeHtml(tile.window)} · <span class="age">as of –</span></p></header>
    ${BODIES[tile.kind](tile)}</section>`;
}

function render() {
  const names = settings.screens.map((id) => {
    const screen = state && state.screens.find((s) => s.id === id);
    return `<li class="${id === current ? "current" : ""}">${escapeHtml(screen ? screen.title : id)}</li>`;
  });
  document.getElementById("screen-names").innerHTML = names.join("");
  const screen = state && state.screens.find((s) => s.id === current);
  document.getElementById("title").textContent = settings.title;
  const main = document.getElementById("screen");
  main.dataset.screen = current;
  if (screen) main.innerHTML = screen.tiles.map(tileHtml).join("");
  tick();
}

// Ages and staleness: every half second, from the server's clock. A tile is stale when its data is older than
// staleAfter, or at once while a worker is missing (the server then holds the last complete numbers).
function tick() {
  const now = serverNow();
  document.getElementById("clock").textContent = new Intl.DateTimeFormat("en-GB", {
    timeZone: settings.timezone, weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  }).format(new Date(now * 1000)) + ` · ${settings.timezone}`;
  for (const tile of document.querySelectorAll(".tile")) {
    const asOf = Number(tile.dataset.asOf);
    const age = asOf ? now - asOf : Infinity;
    tile.querySelector(".age").textContent = asOf ? `as of ${ageText(age)}` : "no data yet";
    const stale = age > settings.staleAfter || !state.complete;
    tile.classList.toggle("stale", stale);
    tile.dataset.stale = stale ? "yes" : "no";
  }
  const problem = document.getElementById("problem");
  const text = !connected ? "⚠ Connection to the board server lost: reconnecting…" : state && state.problem ? `⚠ ${state.problem}${state.screens.length ? ": showing the last complete numbers" : ""}` : "";
  problem.hidden = !text;
  problem.textContent = text;
}

function rotate() {
  if (pinned || !(rotateSeconds > 0)) return;
  const i = settings.screens.indexOf(current);
  current = settings.screens[(i + 1) % settings.screens.length];
  render();
}

function connect() {
  const params = new URLSearchParams();
  if (settings.team) params.set("team", settings.team);
  if (query.has("token")) params.set("token", query.get("token"));
  const source = new EventSource(`/board/api/events?${params}`);
  source.addEventListener("open", () => { connected = true; tick(); });
  source.addEventListener("clock", (event) => { clockOffset = Number(event.data) - Date.now() / 1000; });
  source.addEventListener("message", (event) => {
    state = JSON.parse(event.data);
    window.kpimonBoardUpdates = (window.kpimonBoardUpdates || 0) + 1;
    render();
  });
  // EventSource reconnects by itself (the server asks for 1 s); a closed source is opened again here.
  source.addEventListener("error", () => {
    connected = false;
    tick();
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 1000);
  });
}

window.kpimonBoardLoadedAt = Date.now();
setInterval(() => state && tick(), 500);
if (rotateSeconds > 0 && !pinned) setInterval(rotate, rotateSeconds * 1000);
connect();
