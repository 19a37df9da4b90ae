/**
 * A small hand-written SVG line chart (tok/s against concurrency, one line per server) for the
 * bench's results folder, so a reader sees the comparison without reading tables. No dependency:
 * a few axes, polylines and labels are simpler than a charting library.
 */

export interface Series {
  name: string;
  color: string;
  /** [x, y] points; x are the concurrency levels (drawn evenly spaced, in the given order). */
  points: readonly (readonly [number, number])[];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A round axis maximum at or above `v` (1, 2 or 5 times a power of ten). */
export function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function lineChartSvg(o: { title: string; subtitle?: string; xLabel: string; yLabel: string; xs: readonly number[]; series: readonly Series[] }): string {
  const W = 640;
  const H = 400;
  const m = { l: 64, r: 24, t: o.subtitle ? 62 : 44, b: 56 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const ys = o.series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const yMax = niceCeil(Math.max(1, ...ys) * 1.05);
  const xPos = (x: number): number => {
    const i = o.xs.indexOf(x);
    return m.l + (o.xs.length <= 1 ? pw / 2 : (i / (o.xs.length - 1)) * pw);
  };
  const yPos = (y: number): number => m.t + ph - (y / yMax) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`);
  if (o.subtitle) out.push(`<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">${esc(o.subtitle)}</text>`);
  for (let k = 0; k <= 5; k++) {
    const v = (yMax * k) / 5;
    const y = yPos(v);
    out.push(`<line x1="${m.l}" y1="${y.toFixed(1)}" x2="${m.l + pw}" y2="${y.toFixed(1)}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${m.l - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${Number(v.toPrecision(3))}</text>`);
  }
  out.push(`<line x1="${m.l}" y1="${m.t + ph}" x2="${m.l + pw}" y2="${m.t + ph}" stroke="#333"/>`);
  out.push(`<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${m.t + ph}" stroke="#333"/>`);
  for (const x of o.xs) out.push(`<text x="${xPos(x).toFixed(1)}" y="${m.t + ph + 18}" text-anchor="middle">${x}</text>`);
  out.push(`<text x="${m.l + pw / 2}" y="${H - 14}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  out.push(`<text x="16" y="${m.t + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${m.t + ph / 2})">${esc(o.yLabel)}</text>`);
  o.series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p[1]) && o.xs.includes(p[0]));
    out.push(`<polyline fill="none" stroke="${esc(s.color)}" stroke-width="2.5" points="${pts.map((p) => `${xPos(p[0]).toFixed(1)},${yPos(p[1]).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) {
      out.push(`<circle cx="${xPos(p[0]).toFixed(1)}" cy="${yPos(p[1]).toFixed(1)}" r="4" fill="${esc(s.color)}"><title>${esc(`${s.name}: c=${p[0]}, ${p[1].toFixed(1)}`)}</title></circle>`);
    }
    const ly = m.t + 8 + i * 18;
    out.push(`<line x1="${m.l + 12}" y1="${ly}" x2="${m.l + 36}" y2="${ly}" stroke="${esc(s.color)}" stroke-width="2.5"/>`);
    out.push(`<text x="${m.l + 42}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
