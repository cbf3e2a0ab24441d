/**
 * The training curve as a self-contained SVG: loss parts (total, loc, conf) against iteration in the
 * upper panel, validation mAP in the lower one. Written beside the checkpoints after each validation
 * and checkpoint, so a browser shows how a run is going without any tool.
 */
export interface CurveData {
  iterations: number[];
  loss: number[];
  loc: number[];
  conf: number[];
  map: { iteration: number; map: number }[];
  title?: string;
}

const W = 760, PANEL_H = 220, PAD_L = 56, PAD_R = 150, PAD_T = 30, GAP = 50;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Means over windows so that a 100k-point history draws as at most `max` points. */
export function downsample(xs: number[], ys: number[], max = 600): [number[], number[]] {
  if (xs.length <= max) return [xs, ys];
  const step = Math.ceil(xs.length / max);
  const ox: number[] = [], oy: number[] = [];
  for (let i = 0; i < xs.length; i += step) {
    let sy = 0, n = 0;
    for (let j = i; j < Math.min(xs.length, i + step); j++) { if (Number.isFinite(ys[j]!)) { sy += ys[j]!; n++; } }
    if (n) { ox.push(xs[Math.min(xs.length - 1, i + Math.floor(step / 2))]!); oy.push(sy / n); }
  }
  return [ox, oy];
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function renderCurveSvg(d: CurveData): string {
  const xMax = Math.max(1, d.iterations[d.iterations.length - 1] ?? 1, ...d.map.map((m) => m.iteration));
  const plotW = W - PAD_L - PAD_R;
  const x = (it: number) => PAD_L + (it / xMax) * plotW;
  const out: string[] = [];
  const H = PAD_T + PANEL_H * 2 + GAP + 40;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="${PAD_L}" y="18" font-size="13" font-weight="bold">${esc(d.title ?? 'training curve')}</text>`);

  const panel = (top: number, yMax: number, label: string, series: { name: string; colour: string; xs: number[]; ys: number[]; dots?: boolean }[]) => {
    const y = (v: number) => top + PANEL_H - (Math.min(Math.max(v, 0), yMax) / yMax) * PANEL_H;
    out.push(`<rect x="${PAD_L}" y="${top}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#888"/>`);
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4;
      out.push(`<line x1="${PAD_L}" x2="${PAD_L + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`);
      out.push(`<text x="${PAD_L - 4}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${+v.toPrecision(3)}</text>`);
    }
    for (let i = 0; i <= 5; i++) {
      const it = Math.round((xMax * i) / 5);
      out.push(`<text x="${x(it).toFixed(1)}" y="${top + PANEL_H + 14}" text-anchor="middle">${it}</text>`);
    }
    out.push(`<text x="14" y="${top + PANEL_H / 2}" transform="rotate(-90 14 ${top + PANEL_H / 2})" text-anchor="middle">${esc(label)}</text>`);
    series.forEach((s, k) => {
      if (s.xs.length) {
        const pts = s.xs.map((it, i) => `${x(it).toFixed(1)},${y(s.ys[i]!).toFixed(1)}`).join(' ');
        out.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="1.5" points="${pts}"/>`);
        if (s.dots) for (let i = 0; i < s.xs.length; i++) out.push(`<circle cx="${x(s.xs[i]!).toFixed(1)}" cy="${y(s.ys[i]!).toFixed(1)}" r="2.5" fill="${s.colour}"/>`);
      }
      const ly = top + 12 + k * 16;
      out.push(`<line x1="${W - PAD_R + 10}" x2="${W - PAD_R + 28}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.colour}" stroke-width="2"/>`);
      out.push(`<text x="${W - PAD_R + 32}" y="${ly}">${esc(s.name)}</text>`);
    });
  };

  const [xs, loss] = downsample(d.iterations, d.loss);
  const [, loc] = downsample(d.iterations, d.loc);
  const [, conf] = downsample(d.iterations, d.conf);
  // Scale to the bulk of the curve, not the first iterations' spike.
  const sorted = [...loss].filter(Number.isFinite).sort((a, b) => a - b);
  const yMax = niceMax(sorted.length ? sorted[Math.floor(sorted.length * 0.98)]! * 1.1 : 1);
  panel(PAD_T, yMax, 'loss', [
    { name: 'total', colour: '#222', xs, ys: loss },
    { name: 'loc', colour: '#1f77b4', xs, ys: loc },
    { name: 'conf', colour: '#d62728', xs, ys: conf },
  ]);
  const mapLast = d.map.length ? ` (last ${d.map[d.map.length - 1]!.map.toFixed(3)})` : '';
  panel(PAD_T + PANEL_H + GAP, 1, 'VOC07 mAP', [
    { name: `mAP${mapLast}`, colour: '#2ca02c', xs: d.map.map((m) => m.iteration), ys: d.map.map((m) => m.map), dots: true },
  ]);
  out.push(`<text x="${PAD_L + plotW / 2}" y="${H - 6}" text-anchor="middle">iteration</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
