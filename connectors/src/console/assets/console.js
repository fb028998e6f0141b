// Borderflow operator console. Plain JavaScript, no build step and nothing
// fetched from outside the post: the server embeds this file.
"use strict";

const $ = (selector) => document.querySelector(selector);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
};
const time = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

// What the page measured, for people and for tests: per camera the frames
// drawn, the most boxes seen in one frame, and decode→drawn latencies (ms).
const stats = { cameras: {}, reads: 0, flags: 0 };
window.borderflowStats = stats;

async function api(path, options = {}) {
  const answer = await fetch(path, { credentials: "same-origin", ...options });
  if (answer.status === 401) throw new Error("unauthorized");
  if (!answer.ok) {
    let message = answer.statusText;
    try { message = (await answer.json()).error || message; } catch (_) {}
    throw new Error(message);
  }
  return answer.headers.get("content-type")?.includes("json") ? answer.json() : answer;
}

async function boot() {
  try {
    start(await api("/api/me"));
  } catch (error) {
    $("#login").hidden = false;
    $("#console").hidden = true;
  }
}

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#login-error").textContent = "";
  try {
    await api("/api/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: $("#token").value }) });
    $("#token").value = "";
    start(await api("/api/me"));
  } catch (error) {
    $("#login-error").textContent = error.message === "unauthorized" ? "Unknown token." : error.message;
  }
});

$("#logout").addEventListener("click", async () => {
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
  location.reload();
});

function start(me) {
  $("#login").hidden = true;
  $("#console").hidden = false;
  $("#post").textContent = me.post;
  $("#who").textContent = `${me.user} (${me.role})`;
  if (me.may.reads) me.cameras.forEach(liveView);
  if (!me.cameras.length) $("#lanes").append(el("p", { text: "No live cameras: this post's reads come from its scenario or its feeds." }));
  [...me.reads].reverse().forEach(addRead);
  [...me.flags].reverse().forEach((flag) => addFlag(flag, me.clips));
  showHealth(me.health);
  const events = new EventSource("/api/events");
  events.addEventListener("read", (e) => addRead(JSON.parse(e.data)));
  events.addEventListener("flag", (e) => addFlag(JSON.parse(e.data), me.clips));
  events.addEventListener("health", (e) => showHealth(JSON.parse(e.data)));
  if (me.may.charts) {
    charts();
    setInterval(charts, 30000);
  }
}

// --- Live view: one WebSocket per camera, a frame at a time -------------
function liveView(camera) {
  const canvas = el("canvas", { width: 1280, height: 720, "data-camera": camera.id });
  const latency = el("span", { class: "latency", text: "connecting…" });
  const lane = el("div", { class: "lane", id: `lane-${camera.id}` },
    el("div", { class: "meta" }, el("strong", { text: `${camera.id} · lane ${camera.lane} · ${camera.direction} · ${camera.point}` }), latency),
    canvas);
  $("#lanes").append(lane);
  const seen = (stats.cameras[camera.id] = { frames: 0, max_boxes: 0, latencies_ms: [] });
  const context = canvas.getContext("2d");
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/api/live/${encodeURIComponent(camera.id)}`);
    socket.binaryType = "arraybuffer";
    socket.onmessage = async (message) => {
      const bytes = new Uint8Array(message.data);
      const length = new DataView(message.data).getUint32(0);
      const meta = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + length)));
      const picture = await createImageBitmap(new Blob([bytes.subarray(4 + length)], { type: "image/jpeg" }));
      if (canvas.width !== meta.width) { canvas.width = meta.width; canvas.height = meta.height; }
      context.drawImage(picture, 0, 0);
      picture.close();
      drawOverlay(context, meta);
      const late = Date.now() - meta.decoded_wall_ms;
      seen.frames += 1;
      seen.max_boxes = Math.max(seen.max_boxes, meta.tracks.length);
      seen.latencies_ms.push(late);
      if (seen.latencies_ms.length > 2000) seen.latencies_ms.shift();
      lane.dataset.frames = seen.frames;
      lane.dataset.maxBoxes = seen.max_boxes;
      latency.textContent = `frame ${meta.index} · ${late} ms behind`;
      socket.send("next");
    };
    socket.onclose = () => { latency.textContent = "reconnecting…"; setTimeout(connect, 1000); };
  };
  connect();
}

function drawOverlay(context, meta) {
  const [a, b] = meta.line;
  context.lineWidth = Math.max(3, meta.width / 250);
  context.strokeStyle = "#e3b341";
  context.setLineDash([12, 8]);
  context.beginPath();
  context.moveTo(a[0] * meta.width, a[1] * meta.height);
  context.lineTo(b[0] * meta.width, b[1] * meta.height);
  context.stroke();
  context.setLineDash([]);
  context.font = `${Math.round(meta.height / 28)}px ui-monospace, monospace`;
  for (const track of meta.tracks) {
    const [x, y, w, h] = track.bbox;
    context.strokeStyle = track.read ? "#79c0ff" : track.confirmed ? "#56d364" : "#8b949e";
    context.strokeRect(x, y, w, h);
    const label = track.text || `#${track.id}`;
    const width = context.measureText(label).width + 8;
    const size = Math.round(meta.height / 28) + 6;
    context.fillStyle = "rgba(0,0,0,0.7)";
    context.fillRect(x, Math.max(0, y - size), width, size);
    context.fillStyle = context.strokeStyle;
    context.fillText(label, x + 4, Math.max(size - 6, y - 6));
  }
}

// --- Reads, flags, health -------------------------------------------------
function addRead(read) {
  const crop = read.has_crop ? el("img", { src: `/api/crops/${read.read_id}`, alt: `plate ${read.plate_text}` }) : "";
  const row = el("tr", { "data-read-id": read.read_id },
    el("td", { text: time(read.captured_at_ms) }), el("td", { text: read.camera_id }), el("td", { text: read.lane }),
    el("td", { text: `${read.direction} (${read.point})` }), el("td", { class: "plate", text: read.plate_text }),
    el("td", { text: Number(read.confidence).toFixed(2) }), el("td", {}, crop));
  const body = $("#reads tbody");
  body.prepend(row);
  while (body.rows.length > 200) body.deleteRow(-1);
  stats.reads += 1;
}

function addFlag(flag, clips) {
  const row = flag.row;
  const links = el("span");
  if (clips) for (const id of flag.evidence) links.append(" ", el("a", { href: `/api/clips/${id}`, text: "evidence clip" }));
  const item = el("li", { "data-flag-id": flag.id },
    el("div", {}, el("span", { class: "rule", text: row.rule }), " · ", el("span", { class: "plate", text: row.plate_norm }), ` · severity ${row.severity}`),
    el("div", { text: row.detail || "" }),
    el("div", { text: `${row.post_id} · ${row.flagged_at}` }, links));
  $("#flags").prepend(item);
  stats.flags += 1;
}

let lastHealth = null;
function showHealth(health) {
  const now = Date.now();
  const body = $("#health tbody");
  body.replaceChildren();
  for (const camera of health) {
    const before = lastHealth?.cameras[camera.camera_id];
    const seconds = before ? (now - lastHealth.at) / 1000 : 0;
    const rate = (key) => (before && seconds > 0 ? ((camera[key] - before[key]) / seconds).toFixed(1) : "–");
    body.append(el("tr", { "data-camera": camera.camera_id },
      el("td", { text: camera.camera_id }), el("td", { class: `state-${camera.state}`, text: camera.state }),
      el("td", { text: rate("frames_in") }), el("td", { text: rate("frames_processed") }),
      el("td", { text: camera.frames_dropped }), el("td", { text: camera.reconnects }), el("td", { text: camera.last_error || "" })));
  }
  lastHealth = { at: now, cameras: Object.fromEntries(health.map((c) => [c.camera_id, c])) };
}

// --- Charts: p50 dwell and transit per hour, as SVG -----------------------
async function charts() {
  let data;
  try { data = await api("/api/charts"); } catch (_) { return; }
  const box = $("#charts");
  box.replaceChildren();
  const series = [];
  for (const row of data.dwell_percentiles || []) series.push({ name: `dwell ${row.post_id} ${row.direction}`, x: row.hour_ms, y: row.p50_s / 60 });
  for (const row of data.transit_percentiles || []) series.push({ name: `transit to ${row.entry_post_id}`, x: row.hour_ms, y: row.p50_s / 60 });
  const byName = new Map();
  for (const point of series) (byName.get(point.name) || byName.set(point.name, []).get(point.name)).push(point);
  if (!byName.size) { box.append(el("p", { text: "No dwell or transit times yet." })); return; }
  const [x0, x1] = [Math.min(...series.map((p) => p.x)), Math.max(...series.map((p) => p.x))];
  const y1 = Math.max(1, ...series.map((p) => p.y));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const W = Math.max(300, Math.round(box.clientWidth || 600));
  svg.setAttribute("viewBox", `0 0 ${W} 160`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "p50 dwell and transit times per hour");
  const text = (x, y, content, anchor = "start") => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", String(x)); t.setAttribute("y", String(y)); t.setAttribute("text-anchor", anchor);
    t.setAttribute("fill", "#9fb3c8"); t.setAttribute("font-size", "10");
    t.textContent = content;
    return t;
  };
  const hour = (ms) => new Date(ms).toISOString().slice(5, 16).replace("T", " ");
  svg.append(text(30, 158, hour(x0)), text(W - 10, 158, `${hour(x1)} UTC`, "end"));
  const colours = ["#79c0ff", "#56d364", "#e3b341", "#ff7b72", "#d2a8ff", "#ffa657"];
  let i = 0;
  for (const [name, points] of byName) {
    const line = document.createElementNS(ns, "polyline");
    const sx = (x) => 30 + (x1 > x0 ? ((x - x0) / (x1 - x0)) * (W - 40) : (W - 40) / 2);
    const sy = (y) => 145 - (y / y1) * 125;
    line.setAttribute("points", points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", colours[i % colours.length]);
    line.setAttribute("stroke-width", "2");
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", "70"); label.setAttribute("y", String(14 + 12 * i));
    label.setAttribute("fill", colours[i % colours.length]); label.setAttribute("font-size", "11");
    label.textContent = name;
    svg.append(line, label);
    i += 1;
  }
  svg.append(text(2, 24, `${y1.toFixed(0)} min`), text(2, 145, "0"));
  box.append(svg);
}

// --- Search by plate (audited by the server) -----------------------------
$("#search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const plate = $("#search").value.trim();
  if (!plate) return;
  const section = $("#search-results");
  const body = section.querySelector("tbody");
  body.replaceChildren();
  section.hidden = false;
  try {
    const found = await api(`/api/search?plate=${encodeURIComponent(plate)}`);
    $("#search-plate").textContent = found.plate;
    for (const read of found.reads) {
      body.append(el("tr", {}, el("td", { text: read.captured_at }), el("td", { text: read.post_id }), el("td", { text: read.camera_id }),
        el("td", { text: read.direction }), el("td", { class: "plate", text: read.plate_text }), el("td", { text: Number(read.confidence).toFixed(2) })));
    }
    if (!found.reads.length) body.append(el("tr", {}, el("td", { colspan: "6", text: "No reads." })));
  } catch (error) {
    body.append(el("tr", {}, el("td", { colspan: "6", class: "error", text: error.message })));
  }
});

boot();
