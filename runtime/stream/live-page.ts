/**
 * The live page: one canvas per source at the camera's resolution, fed by the /events Server-Sent
 * Events stream with the picture (JPEG, base64) and its detections in the same message, so boxes are
 * drawn on the frame they were found in. Boxes come in source pixels and are scaled to the picture;
 * each class has its colour (runtime/draw.ts classColour, the palette of the MJPEG and HLS outputs and
 * of `ssd detect --annotated`), with "label score" on a filled tag. The caption has the resolution,
 * the detection fps and the latency of each source; the header says "waiting for the first frame",
 * "live", "reconnecting..." (only while a source really reconnects: the feed's `state` events),
 * "stream ended" (the feed's `end` event) or that the page lost its server. No external assets: the
 * page must work on a Jetson with no internet.
 */
import { classColour } from '../draw.js';

/** Class ids with a colour on the page; beyond these (rare) the page cycles through them. */
export const PAGE_PALETTE_SIZE = 256;

export function livePage(title: string, notice?: string): string {
  const palette = Array.from({ length: PAGE_PALETTE_SIZE }, (_, i) => classColour(i));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{margin:0;background:#111;color:#ddd;font:13px system-ui,sans-serif}
header{padding:6px 10px;background:#222}
#grid{display:flex;flex-wrap:wrap;gap:8px;padding:8px}
figure{margin:0;max-width:100%}
canvas{display:block;background:#000;max-width:100%}
figcaption{padding:2px 0;color:#aaa}
</style></head>
<body><header><b>ssd stream</b> <span id="status">connecting...</span> &middot; <a href="metrics" id="metrics" style="color:#8cf">metrics</a>${notice ? ` &middot; <span style="color:#fc6">${escapeHtml(notice)}</span>` : ''}</header>
<div id="grid"></div>
<script>
"use strict";
const PALETTE = ${JSON.stringify(palette)};
const colour = (id) => PALETTE[id % PALETTE.length];
const token = new URLSearchParams(location.search).get("token");
const q = token ? "&token=" + encodeURIComponent(token) : "";
if (token) document.getElementById("metrics").href = "metrics?token=" + encodeURIComponent(token);
const views = new Map();
let seen = false;
let ended = false;
let lost = false;
function view(id, uri) {
  let v = views.get(id);
  if (v) return v;
  const fig = document.createElement("figure");
  const canvas = document.createElement("canvas");
  const cap = document.createElement("figcaption");
  fig.append(canvas, cap);
  document.getElementById("grid").append(fig);
  v = { id, uri, canvas, cap, busy: false, state: "connecting", rec: null, hist: [], frames: 0 };
  views.set(id, v);
  placeholder(v, "waiting for the first frame");
  caption(v);
  return v;
}
function placeholder(v, text) {
  if (v.frames > 0) return;
  v.canvas.width = 320; v.canvas.height = 180;
  const g = v.canvas.getContext("2d");
  g.fillStyle = "#000"; g.fillRect(0, 0, 320, 180);
  g.fillStyle = "#aaa"; g.font = "14px sans-serif"; g.textAlign = "center";
  g.fillText(text, 160, 95); g.textAlign = "start";
}
function caption(v) {
  const r = v.rec;
  const h = v.hist;
  let fps = "";
  if (h.length > 1 && h[h.length - 1][0] > h[0][0]) fps = ((h[h.length - 1][1] - h[0][1]) * 1000 / (h[h.length - 1][0] - h[0][0])).toFixed(1) + " fps | ";
  const state = v.state === "playing" ? "" : " | " + (v.state === "reconnecting" ? "reconnecting..." : v.state);
  v.cap.textContent = v.id + " " + v.uri + (r ? " | " + v.canvas.width + "x" + v.canvas.height + " | " + fps + "latency " + Math.round(r.latency_ms) + " ms | frame " + r.frame + " | " + r.detections.length + " detections" : "") + state;
}
function header() {
  let text = "live";
  if (ended) text = "stream ended";
  else if (lost) text = "connection to the server lost, retrying...";
  else if ([...views.values()].some((v) => v.state === "reconnecting")) text = "reconnecting...";
  else if (!seen) text = "waiting for the first frame";
  document.getElementById("status").textContent = text;
}
function draw(v, img, rec) {
  const w = img ? img.width : rec.width, h = img ? img.height : rec.height;
  if (v.canvas.width !== w || v.canvas.height !== h) { v.canvas.width = w; v.canvas.height = h; }
  const g = v.canvas.getContext("2d");
  if (img) g.drawImage(img, 0, 0); else { g.fillStyle = "#000"; g.fillRect(0, 0, w, h); }
  const sx = w / rec.width, sy = h / rec.height;
  const stroke = Math.max(2, Math.round(Math.min(w, h) / 200));
  const font = Math.max(11, Math.round(Math.min(w, h) / 40));
  g.lineWidth = stroke; g.font = font + "px sans-serif"; g.textBaseline = "top";
  // Lowest score first: the strongest detection's tag ends up on top.
  for (const d of [...rec.detections].sort((a, b) => a.score - b.score)) {
    const x1 = d.box[0] * sx, y1 = d.box[1] * sy, x2 = d.box[2] * sx, y2 = d.box[3] * sy;
    const c = colour(d.class_id);
    g.strokeStyle = c; g.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = d.label + " " + d.score.toFixed(2);
    const tw = g.measureText(text).width + 6, th = font + 6;
    const ty = y1 - th >= 0 ? y1 - th : y1;
    g.fillStyle = c; g.fillRect(x1, ty, tw, th);
    g.fillStyle = "#fff"; g.fillText(text, x1 + 3, ty + 3);
  }
  v.frames++;
  v.rec = rec;
  caption(v);
}
const es = new EventSource("events?frames=1" + q);
es.onopen = () => { lost = false; header(); };
es.onerror = () => { if (es.readyState !== EventSource.CLOSED && !ended) { lost = true; header(); } };
// Sent by the server when the run ends normally: no reconnecting after that.
es.addEventListener("end", () => { es.close(); ended = true; header(); });
// Every source's state, at connection and whenever one changes.
es.addEventListener("state", (ev) => {
  for (const s of JSON.parse(ev.data)) {
    const v = view(s.id, s.uri);
    v.state = s.state;
    if (s.state === "reconnecting" || s.state === "failed") placeholder(v, s.state === "failed" ? "failed" : "reconnecting...");
    caption(v);
  }
  header();
});
es.onmessage = (ev) => {
  const rec = JSON.parse(ev.data);
  if (!seen) seen = true;
  const v = view(rec.source, rec.uri);
  if (v.state === "connecting") v.state = "playing";
  // Detection fps over the last 2 s of records (frame numbers count every detected frame).
  v.hist.push([rec.ts, rec.frame]);
  while (v.hist.length > 2 && rec.ts - v.hist[0][0] > 2000) v.hist.shift();
  header();
  if (!rec.jpeg) { draw(v, null, rec); return; }
  if (v.busy) return;
  v.busy = true;
  // Decoded into an ImageBitmap that is closed once drawn: a new data: URL per frame on an <img> kept
  // every frame in Chromium's memory cache (its renderer grew to 2.7 GB over a 2-hour soak at 30 fps).
  const bin = atob(rec.jpeg), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  createImageBitmap(new Blob([bytes], { type: "image/jpeg" })).then(
    (bmp) => { draw(v, bmp, rec); bmp.close(); v.busy = false; },
    () => { v.busy = false; });
};
</script></body></html>
`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
