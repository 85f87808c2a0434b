/**
 * Two small chart kinds as standalone SVG text, for run-all's plots: horizontal bars (each with its target as a
 * tick), and points on a logarithmic x axis with a limit line. No dependencies: the page that shows them is just
 * the SVG.
 */
import { formatNumber } from './format.ts';
import type { Verdict } from './verdict.ts';

export interface Bar {
  readonly label: string;
  readonly value: number | null;
  readonly target?: number | null;
  readonly verdict?: Verdict;
}

const WIDTH = 960;
const FONT = 'font-family="DejaVu Sans, Arial, sans-serif"';
const COLOURS: Partial<Record<Verdict, string>> = { met: '#2e7d32', 'not met': '#c62828' };
const NEUTRAL = '#4a6fa5';
const TARGET = '#111';

const escapeXml = (text: string) =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

function frame(height: number, title: string, body: string[], footnote: string | undefined): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="16" y="28" font-size="18" font-weight="bold">${escapeXml(title)}</text>`,
    ...body,
    footnote ? `<text x="16" y="${height - 12}" font-size="12" fill="#555">${escapeXml(footnote)}</text>` : '',
    '</svg>',
  ].join('\n');
}

/**
 * Horizontal bars, on a linear scale from 0 or a log10 scale (for figures orders of magnitude apart); a bar's
 * target is a black tick across it, labelled.
 */
export function barChartSvg(options: {
  readonly title: string;
  readonly unit: string;
  readonly bars: readonly Bar[];
  readonly scale?: 'linear' | 'log';
  readonly footnote?: string;
}): string {
  const left = 360;
  const right = 150;
  const top = 48;
  const row = 34;
  const plotWidth = WIDTH - left - right;
  const values = options.bars.flatMap((b) => [b.value ?? 0, b.target ?? 0]).filter((v) => v > 0);
  const max = Math.max(1e-9, ...values) * 1.08;
  const log = options.scale === 'log';
  const low = log ? 10 ** Math.floor(Math.log10(Math.min(max, ...values) / 2)) : 0;
  const x = log
    ? (value: number) => left + (Math.log10(Math.max(low, value) / low) / Math.log10(max / low)) * plotWidth
    : (value: number) => left + (value / max) * plotWidth;
  const body: string[] = [];
  options.bars.forEach((bar, i) => {
    const y = top + i * row;
    body.push(`<text x="${left - 10}" y="${y + 21}" font-size="13" text-anchor="end">${escapeXml(bar.label)}</text>`);
    if (bar.value === null) {
      body.push(`<text x="${left + 6}" y="${y + 21}" font-size="13" fill="#999">missing</text>`);
    } else {
      const colour = (bar.verdict && COLOURS[bar.verdict]) ?? NEUTRAL;
      const width = Math.max(1, x(bar.value) - left);
      // The value right after the bar, or past its target tick when the tick would cross the text.
      const tick = bar.target ? x(bar.target) : Number.NEGATIVE_INFINITY;
      const labelAt = (tick >= left + width && tick < left + width + 100 ? tick : left + width) + 6;
      body.push(
        `<rect x="${left}" y="${y + 6}" width="${width.toFixed(1)}" height="${row - 12}" fill="${colour}"/>`,
        `<text x="${labelAt.toFixed(1)}" y="${y + 21}" font-size="13">${escapeXml(`${formatNumber(bar.value)} ${options.unit}`)}</text>`,
      );
    }
    if (bar.target !== undefined && bar.target !== null) {
      const tx = x(bar.target).toFixed(1);
      body.push(
        `<line x1="${tx}" y1="${y + 2}" x2="${tx}" y2="${y + row - 2}" stroke="${TARGET}" stroke-width="3"/>`,
        `<text x="${tx}" y="${y + 2}" font-size="10" text-anchor="middle" fill="${TARGET}">target ${escapeXml(formatNumber(bar.target))}</text>`,
      );
    }
  });
  const height = top + options.bars.length * row + 58;
  const axisY = top + options.bars.length * row;
  body.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${axisY}" stroke="#333"/>`);
  const ticks = log ? Array.from({ length: Math.floor(Math.log10(max / low)) + 1 }, (_, i) => low * 10 ** i) : [0, max];
  for (const tick of ticks) {
    body.push(
      `<text x="${x(tick).toFixed(1)}" y="${axisY + 16}" font-size="11" fill="#555" text-anchor="middle">${escapeXml(formatNumber(tick))}</text>`,
    );
  }
  body.push(
    `<text x="${left + plotWidth}" y="${axisY + 30}" font-size="11" fill="#555" text-anchor="end">${escapeXml(`${options.unit}${log ? ', log scale' : ''}`)}</text>`,
  );
  return frame(height, options.title, body, options.footnote);
}

export interface Point {
  readonly x: number;
  readonly y: number | null;
}

/** Points joined by a line over a log10 x axis (y linear from 0), with an optional horizontal limit. */
export function logLineChartSvg(options: {
  readonly title: string;
  readonly xLabel: string;
  readonly unit: string;
  readonly points: readonly Point[];
  readonly limit?: { readonly value: number; readonly label: string };
  readonly footnote?: string;
}): string {
  const left = 90;
  const right = 40;
  const top = 56;
  const plotHeight = 300;
  const plotWidth = WIDTH - left - right;
  const present = options.points.filter((p): p is { x: number; y: number } => p.y !== null && p.x > 0);
  const xs = options.points.map((p) => Math.log10(Math.max(1, p.x)));
  const [xMin, xMax] = [Math.min(...xs) - 0.3, Math.max(...xs) + 0.3];
  const yMax = Math.max(1e-9, ...present.map((p) => p.y), options.limit?.value ?? 0) * 1.15;
  const x = (value: number) => left + ((Math.log10(value) - xMin) / (xMax - xMin)) * plotWidth;
  const y = (value: number) => top + plotHeight - (value / yMax) * plotHeight;
  const body = [
    `<line x1="${left}" y1="${top + plotHeight}" x2="${left + plotWidth}" y2="${top + plotHeight}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotHeight}" stroke="#333"/>`,
    `<text x="${left - 8}" y="${top + plotHeight}" font-size="11" text-anchor="end">0</text>`,
    `<text x="${left - 8}" y="${top + 10}" font-size="11" text-anchor="end">${escapeXml(`${formatNumber(yMax)} ${options.unit}`)}</text>`,
    `<text x="${left + plotWidth / 2}" y="${top + plotHeight + 40}" font-size="13" text-anchor="middle">${escapeXml(options.xLabel)} (log scale)</text>`,
  ];
  for (const p of options.points) {
    body.push(
      `<text x="${x(p.x).toFixed(1)}" y="${top + plotHeight + 18}" font-size="12" text-anchor="middle">${escapeXml(p.x.toLocaleString('en'))}</text>`,
    );
  }
  if (options.limit) {
    const ly = y(options.limit.value).toFixed(1);
    body.push(
      `<line x1="${left}" y1="${ly}" x2="${left + plotWidth}" y2="${ly}" stroke="#c62828" stroke-dasharray="6 4" stroke-width="2"/>`,
      `<text x="${left + plotWidth - 4}" y="${Number(ly) - 6}" font-size="12" text-anchor="end" fill="#c62828">${escapeXml(options.limit.label)}</text>`,
    );
  }
  if (present.length > 1) {
    const path = present.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ');
    body.push(`<polyline points="${path}" fill="none" stroke="${NEUTRAL}" stroke-width="2"/>`);
  }
  for (const p of present) {
    body.push(
      `<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="5" fill="${NEUTRAL}"/>`,
      `<text x="${x(p.x).toFixed(1)}" y="${(y(p.y) - 10).toFixed(1)}" font-size="12" text-anchor="middle">${escapeXml(`${formatNumber(p.y)} ${options.unit}`)}</text>`,
    );
  }
  return frame(top + plotHeight + 80, options.title, body, options.footnote);
}
