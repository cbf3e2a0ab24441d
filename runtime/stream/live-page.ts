/**
 * The live page: one canvas per source, fed by the /events Server-Sent Events stream with the frame
 * (JPEG, base64) and its detections in the same message, so boxes are drawn on exactly the frame they
 * were found in. No external assets: the page must work on a Jetson with no internet.
 */

/** Box stroke colour on the live page (tests look for it in screenshots). */
export const BOX_COLOUR = '#00ff00';

export function livePage(title: string, notice?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{margin:0;background:#111;color:#ddd;font:13px system-ui,sans-serif}
header{padding:6px 10px;background:#222}
#grid{display:flex;flex-wrap:wrap;gap:8px;padding:8px}
figure{margin:0}
canvas{display:block;background:#000;max-width:100%}
figcaption{padding:2px 0;color:#aaa}
</style></head>
<body><header><b>ssd stream</b> <span id="status">connecting...</span> &middot; <a href="metrics" id="metrics" style="color:#8cf">metrics</a>${notice ? ` &middot; <span style="color:#fc6">${escapeHtml(notice)}</span>` : ''}</header>
<div id="grid"></div>
<script>
"use strict";
const BOX = ${JSON.stringify(BOX_COLOUR)};
const token = new URLSearchParams(location.search).get("token");
const q = token ? "&token=" + encodeURIComponent(token) : "";
if (token) document.getElementById("metrics").href = "metrics?token=" + encodeURIComponent(token);
const views = new Map();
function view(rec) {
  let v = views.get(rec.source);
  if (v) return v;
  const fig = document.createElement("figure");
  const canvas = document.createElement("canvas");
  const cap = document.createElement("figcaption");
  fig.append(canvas, cap);
  document.getElementById("grid").append(fig);
  v = { canvas, cap, busy: false };
  views.set(rec.source, v);
  return v;
}
function draw(v, img, rec) {
  const scale = Math.min(1, 640 / rec.width);
  const w = Math.round(rec.width * scale), h = Math.round(rec.height * scale);
  if (v.canvas.width !== w || v.canvas.height !== h) { v.canvas.width = w; v.canvas.height = h; }
  const g = v.canvas.getContext("2d");
  if (img) g.drawImage(img, 0, 0, w, h); else { g.fillStyle = "#000"; g.fillRect(0, 0, w, h); }
  g.lineWidth = 3; g.strokeStyle = BOX; g.fillStyle = BOX; g.font = "14px sans-serif";
  for (const d of rec.detections) {
    const [x1, y1, x2, y2] = d.box.map((c) => c * scale);
    g.strokeRect(x1, y1, x2 - x1, y2 - y1);
    g.fillText(d.label + " " + d.score.toFixed(2), x1 + 3, Math.max(12, y1 - 3));
  }
  v.cap.textContent = rec.source + " " + rec.uri + " | " + rec.width + "x" + rec.height + " | frame " + rec.frame + " | " + rec.detections.length + " detections | " + rec.latency_ms + " ms";
}
const status = (text) => { document.getElementById("status").textContent = text; };
let seen = false;
const es = new EventSource("events?frames=1" + q);
es.onopen = () => { status(seen ? "live" : "waiting for the first frame"); };
es.onerror = () => { if (es.readyState !== EventSource.CLOSED) status("reconnecting..."); };
// Sent by the server when the run ends normally: no reconnecting after that.
es.addEventListener("end", () => { es.close(); status("stream ended"); });
es.onmessage = (ev) => {
  const rec = JSON.parse(ev.data);
  if (!seen) { seen = true; status("live"); }
  const v = view(rec);
  if (!rec.jpeg) { draw(v, null, rec); return; }
  if (v.busy) return;
  v.busy = true;
  const img = new Image();
  img.onload = () => { draw(v, img, rec); v.busy = false; };
  img.onerror = () => { v.busy = false; };
  img.src = "data:image/jpeg;base64," + rec.jpeg;
};
</script></body></html>
`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
