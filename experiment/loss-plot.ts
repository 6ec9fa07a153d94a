// Loss-vs-wall-clock figures for experiments: one panel per condition (e.g. failure rate), one
// curve per recovery strategy, written as a PNG a person can read without the data beside it.
//
// Layout and scales are computed by pure functions (`niceTicks`, `lossPlotSizePx`,
// `seriesColors`); `plotLossPanels` only draws what they decide and writes the file.
//
// Both axes are shared by all panels: the same loss range so curves compare across panels, and
// the same time range (from 0, or the earliest point if negative, to the latest point of any
// panel) so the slowdown caused by failures reads directly from one panel to the next.

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as PImage from 'pureimage';
import { OptionError } from '../domain/errors.ts';

export interface LossSeries {
  /** Strategy name, e.g. "checkfree". Series with the same label get the same colour in every panel. */
  readonly label: string;
  /** Wall-clock seconds since training start, in time order. Non-finite values are skipped. */
  readonly points: readonly { readonly seconds: number; readonly loss: number }[];
}

export interface LossPanel {
  /** E.g. "10% failures per hour". */
  readonly title: string;
  readonly series: readonly LossSeries[];
  /** Optional horizontal dashed line, e.g. the target loss. */
  readonly targetLoss?: number | null;
}

export interface LossPlotOptions {
  /** Figure title, drawn above all panels. */
  readonly title: string;
  /** Default "wall-clock time (s)". */
  readonly xLabel?: string;
  /** Default "training loss (nats/byte)". */
  readonly yLabel?: string;
  /** Width of one panel in pixels; default 560. */
  readonly panelWidth?: number;
  /** Height of one panel in pixels; default 380. */
  readonly panelHeight?: number;
  /** Panels per row; default min(panels, 2). */
  readonly columns?: number;
}

/** Thrown when the PNG cannot be written; no partial file is left at `path`. */
export class PlotWriteError extends Error {
  override readonly name = 'PlotWriteError';
  constructor(
    readonly path: string,
    options: { cause: unknown },
  ) {
    super(`could not write the plot to ${path}: check that the directory is writable`, options);
  }
}

/** Thrown when the DejaVu fonts of the `dejavu-fonts-ttf` package cannot be loaded. */
export class PlotFontError extends Error {
  override readonly name = 'PlotFontError';
  constructor(
    readonly fontDir: string,
    options: { cause: unknown },
  ) {
    super(`could not load the plot fonts from ${fontDir || 'dejavu-fonts-ttf'}: reinstall dependencies with npm ci`, options);
  }
}

const DEFAULT_X_LABEL = 'wall-clock time (s)';
const DEFAULT_Y_LABEL = 'training loss (nats/byte)';
const DEFAULT_PANEL_WIDTH_PX = 560;
const DEFAULT_PANEL_HEIGHT_PX = 380;
const DEFAULT_MAX_COLUMNS = 2;
const MIN_PANEL_WIDTH_PX = 280;
const MIN_PANEL_HEIGHT_PX = 200;
const MAX_PANEL_SIDE_PX = 4000;

const FIGURE_TITLE_HEIGHT_PX = 44;
const FIGURE_TITLE_FONT_PX = 18;
const PANEL_TITLE_FONT_PX = 14;
const AXIS_LABEL_FONT_PX = 12;
const TICK_FONT_PX = 11;
const LEGEND_FONT_PX = 12;
const NO_DATA_FONT_PX = 14;

const PANEL_PAD_PX = 10;
const PANEL_TITLE_HEIGHT_PX = 30;
const TICK_LENGTH_PX = 5;
const TICK_LABEL_GAP_PX = 4;
const AXIS_LABEL_GAP_PX = 8;
const PLOT_RIGHT_PAD_PX = 24;
const MIN_X_TICK_SPACING_PX = 55;
const MIN_Y_TICK_SPACING_PX = 40;
const TICK_LABEL_MIN_GAP_PX = 12;
/** Fraction of the loss range added above and below so no curve runs along the frame. */
const Y_RANGE_PAD_FRACTION = 0.015;

const LINE_WIDTH_PX = 2;
const LEGEND_ROW_HEIGHT_PX = 18;
const LEGEND_PAD_PX = 8;
const LEGEND_SWATCH_PX = 24;
const LEGEND_SWATCH_GAP_PX = 6;
const LEGEND_MARGIN_PX = 8;
const DASH_ON_PX = 7;
const DASH_OFF_PX = 5;

const COLOR_BACKGROUND = '#ffffff';
const COLOR_TEXT = '#222222';
const COLOR_MUTED_TEXT = '#888888';
const COLOR_FRAME = '#444444';
const COLOR_GRID = '#e8e8e8';
const COLOR_TARGET = '#555555';
const COLOR_LEGEND_FILL = '#ffffffe6';
const COLOR_LEGEND_BORDER = '#cccccc';

/**
 * Okabe–Ito colour-blind-safe palette, darkest and most distinct first. Yellow is left out: it
 * cannot be read on white. With more labels than colours the palette repeats.
 */
export const SERIES_PALETTE: readonly string[] = [
  '#0072B2', // blue
  '#D55E00', // vermillion
  '#009E73', // bluish green
  '#CC79A7', // reddish purple
  '#E69F00', // orange
  '#56B4E9', // sky blue
  '#000000', // black
];

const FONT_REGULAR = 'ftrain-plot-sans';
const FONT_BOLD = 'ftrain-plot-sans-bold';

interface CompiledLossPlotOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly panelWidthPx: number;
  readonly panelHeightPx: number;
  readonly columns: number;
  readonly rows: number;
}

function compileLossPlotOptions(options: LossPlotOptions, panelCount: number): CompiledLossPlotOptions {
  const side = (field: string, value: number | undefined, fallback: number, min: number): number => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < min || value > MAX_PANEL_SIDE_PX) {
      throw new OptionError(field, `must be a whole number of pixels from ${min} to ${MAX_PANEL_SIDE_PX}, got ${value}`);
    }
    return value;
  };
  const panels = Math.max(1, panelCount);
  let columns = Math.min(panels, DEFAULT_MAX_COLUMNS);
  if (options.columns !== undefined) {
    if (!Number.isInteger(options.columns) || options.columns < 1) {
      throw new OptionError('columns', `must be a whole number of at least 1, got ${options.columns}`);
    }
    columns = Math.min(options.columns, panels);
  }
  return {
    title: options.title,
    xLabel: options.xLabel ?? DEFAULT_X_LABEL,
    yLabel: options.yLabel ?? DEFAULT_Y_LABEL,
    panelWidthPx: side('panelWidth', options.panelWidth, DEFAULT_PANEL_WIDTH_PX, MIN_PANEL_WIDTH_PX),
    panelHeightPx: side('panelHeight', options.panelHeight, DEFAULT_PANEL_HEIGHT_PX, MIN_PANEL_HEIGHT_PX),
    columns,
    rows: Math.ceil(panels / columns),
  };
}

/**
 * The size of the PNG `plotLossPanels` writes: `columns × panelWidth` wide and a title band plus
 * `rows × panelHeight` high. No panels draws one empty panel. Throws `OptionError` on bad options.
 */
export function lossPlotSizePx(panelCount: number, options: LossPlotOptions): { readonly widthPx: number; readonly heightPx: number } {
  return figureSizePx(compileLossPlotOptions(options, panelCount));
}

function figureSizePx(o: CompiledLossPlotOptions): { readonly widthPx: number; readonly heightPx: number } {
  return { widthPx: o.columns * o.panelWidthPx, heightPx: FIGURE_TITLE_HEIGHT_PX + o.rows * o.panelHeightPx };
}

/** Colour per distinct label, in order of first appearance over all panels. */
export function seriesColors(panels: readonly LossPanel[]): ReadonlyMap<string, string> {
  const colors = new Map<string, string>();
  for (const panel of panels) {
    for (const s of panel.series) {
      if (!colors.has(s.label)) colors.set(s.label, SERIES_PALETTE[colors.size % SERIES_PALETTE.length]!);
    }
  }
  return colors;
}

export interface Ticks {
  /** Axis range, both ends on a tick. */
  readonly lo: number;
  readonly hi: number;
  /** 1, 2 or 5 × 10^n. */
  readonly step: number;
  readonly values: readonly number[];
}

/**
 * "Nice" ticks covering [min, max] with at most `maxIntervals` intervals (at least 1). A zero or
 * non-finite span is widened so the result always has a positive step.
 */
export function niceTicks(min: number, max: number, maxIntervals: number): Ticks {
  if (!Number.isFinite(min) || !Number.isFinite(max)) [min, max] = [0, 1];
  if (max < min) [min, max] = [max, min];
  if (max === min) {
    const half = min === 0 ? 0.5 : Math.abs(min) * 0.1;
    [min, max] = [min - half, max + half];
  }
  const intervals = Math.max(1, Math.floor(maxIntervals));
  let mag = 10 ** Math.floor(Math.log10((max - min) / intervals));
  for (;;) {
    for (const m of [1, 2, 5]) {
      const step = m * mag;
      const first = Math.floor(min / step + 1e-9);
      const last = Math.ceil(max / step - 1e-9);
      if (last - first <= intervals) {
        const values: number[] = [];
        // Multiply, never accumulate, so 0.1 + 0.2 drift cannot creep into labels.
        for (let i = first; i <= last; i++) values.push(i * step);
        return { lo: first * step, hi: last * step, step, values };
      }
    }
    mag *= 10;
  }
}

/** Tick label with just enough decimals for the step; exponent form for very large or small values. */
export function formatTick(value: number, step: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e6 || abs < 1e-4) {
    const digits = Math.max(0, Math.floor(Math.log10(abs)) - Math.floor(Math.log10(step)));
    return value.toExponential(Math.min(digits, 6)).replace('e+', 'e');
  }
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return value.toFixed(decimals);
}

interface Rect {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

interface Pt {
  readonly x: number;
  readonly y: number;
}

interface LegendEntry {
  readonly label: string;
  readonly color: string;
  readonly dashed: boolean;
  /** Position in the legend. */
  readonly rank: number;
}

type Context = ReturnType<PImage.Bitmap['getContext']>;

type HAlign = 'left' | 'center' | 'right';
/** `cap-top`: y is the top of capital letters; `middle`: y is the middle of capitals; `baseline`. */
type VAlign = 'cap-top' | 'middle' | 'baseline';

/** DejaVu Sans capital height as a fraction of the font size. */
const CAP_HEIGHT_EM = 0.73;

let fontsLoaded = false;

// Synchronous on purpose: pureimage's async loader throws from a callback on a bad file, which
// would crash the process instead of rejecting.
function loadFonts(): void {
  if (fontsLoaded) return;
  let ttf = '';
  try {
    ttf = join(dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');
    PImage.registerFont(join(ttf, 'DejaVuSans.ttf'), FONT_REGULAR).loadSync();
    PImage.registerFont(join(ttf, 'DejaVuSans-Bold.ttf'), FONT_BOLD).loadSync();
  } catch (cause) {
    throw new PlotFontError(ttf, { cause });
  }
  fontsLoaded = true;
}

// pureimage takes the whole text after the size as the family name, so no quotes here.
function setFont(ctx: Context, sizePx: number, bold = false): void {
  ctx.font = `${sizePx}px ${bold ? FONT_BOLD : FONT_REGULAR}`;
}

function textWidth(ctx: Context, text: string, sizePx: number, bold = false): number {
  setFont(ctx, sizePx, bold);
  return ctx.measureText(text).width;
}

/** `text`, cut short with an ellipsis if needed to fit `maxWidthPx`. */
function fitText(ctx: Context, text: string, sizePx: number, maxWidthPx: number, bold = false): string {
  if (textWidth(ctx, text, sizePx, bold) <= maxWidthPx) return text;
  let n = text.length - 1;
  while (n > 1 && textWidth(ctx, `${text.slice(0, n)}…`, sizePx, bold) > maxWidthPx) n--;
  return `${text.slice(0, n)}…`;
}

function drawText(
  ctx: Context,
  text: string,
  x: number,
  y: number,
  style: { sizePx: number; bold?: boolean; color?: string; align?: HAlign; vAlign?: VAlign },
): void {
  const width = textWidth(ctx, text, style.sizePx, style.bold);
  const align = style.align ?? 'left';
  const left = align === 'left' ? x : align === 'center' ? x - width / 2 : x - width;
  const cap = CAP_HEIGHT_EM * style.sizePx;
  const vAlign = style.vAlign ?? 'baseline';
  const baseline = vAlign === 'cap-top' ? y + cap : vAlign === 'middle' ? y + cap / 2 : y;
  ctx.fillStyle = style.color ?? COLOR_TEXT;
  ctx.fillText(text, Math.round(left), Math.round(baseline));
}

/** Text rotated a quarter turn anticlockwise, centred on (x, y) along its length. */
function drawVerticalText(ctx: Context, text: string, x: number, y: number, sizePx: number): void {
  const width = textWidth(ctx, text, sizePx);
  ctx.save();
  ctx.translate(x, y);
  ctx.rotate(-Math.PI / 2);
  ctx.fillStyle = COLOR_TEXT;
  ctx.fillText(text, -width / 2, (CAP_HEIGHT_EM * sizePx) / 2);
  ctx.restore();
}

function fillRect(ctx: Context, r: Rect, color: string): void {
  ctx.fillStyle = color;
  ctx.fillRect(Math.round(r.x), Math.round(r.y), Math.round(r.w), Math.round(r.h));
}

function strokeRect(ctx: Context, r: Rect, color: string): void {
  const x = Math.round(r.x);
  const y = Math.round(r.y);
  const w = Math.round(r.w);
  const h = Math.round(r.h);
  fillRect(ctx, { x, y, w, h: 1 }, color);
  fillRect(ctx, { x, y: y + h - 1, w, h: 1 }, color);
  fillRect(ctx, { x, y, w: 1, h }, color);
  fillRect(ctx, { x: x + w - 1, y, w: 1, h }, color);
}

// One stroke per segment: pureimage fills a stroked path even-odd, so a long polyline whose
// outline overlaps itself (every sharp turn) would get holes. Its caps are butt caps, which
// leave notches at the joins, so each segment is lengthened by half the width at both ends.
function strokePolyline(ctx: Context, pts: readonly Pt[], color: string, widthPx: number): void {
  ctx.strokeStyle = color;
  ctx.lineWidth = widthPx;
  if (pts.length === 1) {
    const p = pts[0]!;
    fillRect(ctx, { x: p.x - widthPx, y: p.y - widthPx, w: widthPx * 2, h: widthPx * 2 }, color);
    return;
  }
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1]!;
    const b = pts[i]!;
    const length = Math.hypot(b.x - a.x, b.y - a.y);
    const ex = ((b.x - a.x) / length) * (widthPx / 2);
    const ey = ((b.y - a.y) / length) * (widthPx / 2);
    ctx.beginPath();
    ctx.moveTo(a.x - ex, a.y - ey);
    ctx.lineTo(b.x + ex, b.y + ey);
    ctx.stroke();
  }
}

function dashedHorizontal(ctx: Context, x0: number, x1: number, y: number, color: string): void {
  for (let x = x0; x < x1; x += DASH_ON_PX + DASH_OFF_PX) {
    fillRect(ctx, { x, y: y - 1, w: Math.min(DASH_ON_PX, x1 - x), h: 2 }, color);
  }
}

function finitePoints(series: LossSeries): { seconds: number; loss: number }[] {
  return series.points.filter((p) => Number.isFinite(p.seconds) && Number.isFinite(p.loss));
}

/**
 * Pixel polyline for a series, in the given order, skipping non-finite points (the line joins
 * across them) and points within half a pixel of the last kept one, so long runs stay cheap to
 * draw while spikes survive.
 */
function toPixels(points: readonly { seconds: number; loss: number }[], px: (s: number) => number, py: (l: number) => number): Pt[] {
  const out: Pt[] = [];
  for (const p of points) {
    const q = { x: px(p.seconds), y: py(p.loss) };
    const last = out[out.length - 1];
    if (last && Math.abs(q.x - last.x) < 0.5 && Math.abs(q.y - last.y) < 0.5) continue;
    out.push(q);
  }
  return out;
}

/** Samples along a polyline every few pixels, to score how much of it a legend box would hide. */
function samplePolyline(pts: readonly Pt[]): Pt[] {
  const out: Pt[] = pts.length > 0 ? [pts[0]!] : [];
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1]!;
    const b = pts[i]!;
    const n = Math.ceil(Math.hypot(b.x - a.x, b.y - a.y) / 3);
    for (let k = 1; k <= n; k++) out.push({ x: a.x + ((b.x - a.x) * k) / n, y: a.y + ((b.y - a.y) * k) / n });
  }
  return out;
}

/**
 * The legend position inside `plot` that covers the fewest curve samples; ties go to the
 * earlier candidate (top right first: loss curves fall from the top left).
 */
function placeLegend(plot: Rect, size: { w: number; h: number }, samples: readonly Pt[]): Rect {
  const m = LEGEND_MARGIN_PX;
  const left = plot.x + m;
  const right = plot.x + plot.w - m - size.w;
  const top = plot.y + m;
  const bottom = plot.y + plot.h - m - size.h;
  const midX = plot.x + (plot.w - size.w) / 2;
  const midY = plot.y + (plot.h - size.h) / 2;
  const candidates: Pt[] = [
    { x: right, y: top },
    { x: left, y: bottom },
    { x: right, y: bottom },
    { x: left, y: top },
    { x: midX, y: top },
    { x: right, y: midY },
    { x: midX, y: bottom },
    { x: left, y: midY },
  ];
  let best: Rect | null = null;
  let bestScore = Infinity;
  for (const c of candidates) {
    const r = { x: c.x, y: c.y, w: size.w, h: size.h };
    let score = 0;
    for (const s of samples) {
      if (s.x >= r.x - 3 && s.x <= r.x + r.w + 3 && s.y >= r.y - 3 && s.y <= r.y + r.h + 3) score++;
    }
    if (score < bestScore) [best, bestScore] = [r, score];
  }
  return best!;
}

function drawLegend(ctx: Context, plot: Rect, allEntries: readonly LegendEntry[], samples: readonly Pt[]): void {
  if (allEntries.length === 0) return;
  const maxLabelWidth = plot.w - 2 * LEGEND_MARGIN_PX - 2 * LEGEND_PAD_PX - LEGEND_SWATCH_PX - LEGEND_SWATCH_GAP_PX;
  const entries = allEntries.map((e) => ({ ...e, label: fitText(ctx, e.label, LEGEND_FONT_PX, maxLabelWidth) }));
  const labelWidth = Math.max(...entries.map((e) => textWidth(ctx, e.label, LEGEND_FONT_PX)));
  const size = {
    w: Math.ceil(LEGEND_PAD_PX * 2 + LEGEND_SWATCH_PX + LEGEND_SWATCH_GAP_PX + labelWidth),
    h: LEGEND_PAD_PX * 2 + entries.length * LEGEND_ROW_HEIGHT_PX - (LEGEND_ROW_HEIGHT_PX - LEGEND_FONT_PX),
  };
  const box = placeLegend(plot, size, samples);
  fillRect(ctx, box, COLOR_LEGEND_FILL);
  strokeRect(ctx, box, COLOR_LEGEND_BORDER);
  entries.forEach((e, i) => {
    const midY = Math.round(box.y + LEGEND_PAD_PX + i * LEGEND_ROW_HEIGHT_PX + LEGEND_FONT_PX / 2);
    const x0 = Math.round(box.x + LEGEND_PAD_PX);
    if (e.dashed) dashedHorizontal(ctx, x0, x0 + LEGEND_SWATCH_PX, midY, e.color);
    else fillRect(ctx, { x: x0, y: midY - 1.5, w: LEGEND_SWATCH_PX, h: 3 }, e.color);
    drawText(ctx, e.label, x0 + LEGEND_SWATCH_PX + LEGEND_SWATCH_GAP_PX, midY, { sizePx: LEGEND_FONT_PX, vAlign: 'middle' });
  });
}

/**
 * Ticks with at most one interval per `minSpacingPx`, coarsened until the widest label plus a
 * gap fits between neighbours (`labelExtent` measures a label along the axis).
 */
function fittedTicks(min: number, max: number, lengthPx: number, minSpacingPx: number, labelExtent: (label: string) => number): Ticks {
  let intervals = Math.max(1, Math.floor(lengthPx / minSpacingPx));
  for (;;) {
    const t = niceTicks(min, max, intervals);
    const spacing = (lengthPx * t.step) / (t.hi - t.lo);
    const widest = Math.max(...t.values.map((v) => labelExtent(formatTick(v, t.step))));
    if (intervals === 1 || widest + TICK_LABEL_MIN_GAP_PX <= spacing) return t;
    intervals--;
  }
}

function dataRange(panels: readonly LossPanel[]): { sMin: number; sMax: number; lMin: number; lMax: number } | null {
  let sMin = Infinity;
  let sMax = -Infinity;
  let lMin = Infinity;
  let lMax = -Infinity;
  for (const panel of panels) {
    for (const s of panel.series) {
      for (const p of finitePoints(s)) {
        sMin = Math.min(sMin, p.seconds);
        sMax = Math.max(sMax, p.seconds);
        lMin = Math.min(lMin, p.loss);
        lMax = Math.max(lMax, p.loss);
      }
    }
  }
  if (sMin > sMax) return null;
  for (const panel of panels) {
    if (panel.targetLoss != null && Number.isFinite(panel.targetLoss)) {
      lMin = Math.min(lMin, panel.targetLoss);
      lMax = Math.max(lMax, panel.targetLoss);
    }
  }
  return { sMin, sMax, lMin, lMax };
}

/**
 * Draws `panels` as a grid (row by row, `columns` per row) under the figure title and writes a
 * PNG to `path`, creating its directory. The file appears whole or not at all: it is written to
 * `${path}.tmp` and renamed. Panels or series without finite points draw as empty axes with
 * "no data". Throws `OptionError` on bad options, `PlotFontError` if the fonts are missing and
 * `PlotWriteError` if the file cannot be written.
 */
export async function plotLossPanels(panels: readonly LossPanel[], path: string, options: LossPlotOptions): Promise<void> {
  const o = compileLossPlotOptions(options, panels.length);
  const { widthPx, heightPx } = figureSizePx(o);
  loadFonts();

  const img = PImage.make(widthPx, heightPx);
  const ctx = img.getContext('2d');
  fillRect(ctx, { x: 0, y: 0, w: widthPx, h: heightPx }, COLOR_BACKGROUND);
  drawText(ctx, fitText(ctx, o.title, FIGURE_TITLE_FONT_PX, widthPx - 2 * PANEL_PAD_PX, true), widthPx / 2, FIGURE_TITLE_HEIGHT_PX / 2, { sizePx: FIGURE_TITLE_FONT_PX, bold: true, align: 'center', vAlign: 'middle' });

  const range = dataRange(panels);
  const colors = seriesColors(panels);
  const labelOrder = [...colors.keys()];

  // Shared axes. The y ticks decide the left margin, which decides the x length, so y goes first.
  const plotTop = PANEL_TITLE_HEIGHT_PX;
  const plotBottomMargin = TICK_LENGTH_PX + TICK_LABEL_GAP_PX + TICK_FONT_PX + AXIS_LABEL_GAP_PX + AXIS_LABEL_FONT_PX + PANEL_PAD_PX;
  const plotHeight = o.panelHeightPx - plotTop - plotBottomMargin;
  const lossSpan = range ? range.lMax - range.lMin : 0;
  const yTicks = range
    ? fittedTicks(range.lMin - lossSpan * Y_RANGE_PAD_FRACTION, range.lMax + lossSpan * Y_RANGE_PAD_FRACTION, plotHeight, MIN_Y_TICK_SPACING_PX, () => TICK_FONT_PX)
    : niceTicks(0, 1, 5);
  const yLabels = yTicks.values.map((v) => formatTick(v, yTicks.step));
  const yLabelWidth = Math.max(...yLabels.map((l) => textWidth(ctx, l, TICK_FONT_PX)));
  const plotLeft = Math.ceil(PANEL_PAD_PX + AXIS_LABEL_FONT_PX + AXIS_LABEL_GAP_PX + yLabelWidth + TICK_LABEL_GAP_PX + TICK_LENGTH_PX);
  const plotWidth = o.panelWidthPx - plotLeft - PLOT_RIGHT_PAD_PX;
  const xTicks = range
    ? fittedTicks(Math.min(0, range.sMin), range.sMax, plotWidth, MIN_X_TICK_SPACING_PX, (l) => textWidth(ctx, l, TICK_FONT_PX))
    : niceTicks(0, 1, 5);

  const shown = panels.length > 0 ? panels : [{ title: '', series: [] }];
  shown.forEach((panel, index) => {
    const cellX = (index % o.columns) * o.panelWidthPx;
    const cellY = FIGURE_TITLE_HEIGHT_PX + Math.floor(index / o.columns) * o.panelHeightPx;
    const plot: Rect = { x: cellX + plotLeft, y: cellY + plotTop, w: plotWidth, h: plotHeight };
    const px = (s: number) => plot.x + ((s - xTicks.lo) / (xTicks.hi - xTicks.lo)) * plot.w;
    const py = (l: number) => plot.y + plot.h - ((l - yTicks.lo) / (yTicks.hi - yTicks.lo)) * plot.h;

    drawText(ctx, fitText(ctx, panel.title, PANEL_TITLE_FONT_PX, plot.w, true), plot.x + plot.w / 2, cellY + PANEL_TITLE_HEIGHT_PX / 2, { sizePx: PANEL_TITLE_FONT_PX, bold: true, align: 'center', vAlign: 'middle' });

    // Grid, then ticks and labels, under the curves.
    for (const v of yTicks.values) fillRect(ctx, { x: plot.x, y: Math.round(py(v)), w: plot.w, h: 1 }, COLOR_GRID);
    for (const v of xTicks.values) fillRect(ctx, { x: Math.round(px(v)), y: plot.y, w: 1, h: plot.h }, COLOR_GRID);
    yTicks.values.forEach((v, i) => {
      const y = Math.round(py(v));
      fillRect(ctx, { x: plot.x - TICK_LENGTH_PX, y, w: TICK_LENGTH_PX, h: 1 }, COLOR_FRAME);
      drawText(ctx, yLabels[i]!, plot.x - TICK_LENGTH_PX - TICK_LABEL_GAP_PX, y, { sizePx: TICK_FONT_PX, align: 'right', vAlign: 'middle' });
    });
    const bottom = Math.round(plot.y + plot.h);
    for (const v of xTicks.values) {
      const x = Math.round(px(v));
      fillRect(ctx, { x, y: bottom, w: 1, h: TICK_LENGTH_PX }, COLOR_FRAME);
      drawText(ctx, formatTick(v, xTicks.step), x, bottom + TICK_LENGTH_PX + TICK_LABEL_GAP_PX, { sizePx: TICK_FONT_PX, align: 'center', vAlign: 'cap-top' });
    }
    const xLabelTop = bottom + TICK_LENGTH_PX + TICK_LABEL_GAP_PX + TICK_FONT_PX + AXIS_LABEL_GAP_PX;
    drawText(ctx, fitText(ctx, o.xLabel, AXIS_LABEL_FONT_PX, plot.w), plot.x + plot.w / 2, xLabelTop, { sizePx: AXIS_LABEL_FONT_PX, align: 'center', vAlign: 'cap-top' });
    drawVerticalText(ctx, fitText(ctx, o.yLabel, AXIS_LABEL_FONT_PX, plot.h), cellX + PANEL_PAD_PX + AXIS_LABEL_FONT_PX / 2, plot.y + plot.h / 2, AXIS_LABEL_FONT_PX);

    // Legend: series in the figure-wide colour order (the same in every panel), then the target.
    // Samples mark what the legend should not hide.
    const legend: LegendEntry[] = [];
    const samples: Pt[] = [];
    const target = panel.targetLoss;
    const hasTarget = target != null && Number.isFinite(target);
    if (hasTarget) {
      const y = Math.round(py(target));
      dashedHorizontal(ctx, plot.x + 1, plot.x + plot.w - 1, y, COLOR_TARGET);
      samples.push(...samplePolyline([{ x: plot.x, y }, { x: plot.x + plot.w, y }]));
    }
    let anyData = false;
    for (const s of panel.series) {
      const color = colors.get(s.label)!;
      const pts = toPixels(finitePoints(s), px, py);
      if (pts.length > 0) anyData = true;
      strokePolyline(ctx, pts, color, LINE_WIDTH_PX);
      samples.push(...samplePolyline(pts));
      legend.push({ label: pts.length > 0 ? s.label : `${s.label} (no data)`, color, dashed: false, rank: labelOrder.indexOf(s.label) });
    }
    legend.sort((a, b) => a.rank - b.rank);
    if (hasTarget) legend.push({ label: `target loss ${Number(target.toPrecision(4))}`, color: COLOR_TARGET, dashed: true, rank: Infinity });

    strokeRect(ctx, { x: plot.x, y: plot.y, w: plot.w + 1, h: plot.h + 1 }, COLOR_FRAME);
    if (!anyData) {
      const cx = plot.x + plot.w / 2;
      const cy = plot.y + plot.h / 2;
      drawText(ctx, 'no data', cx, cy, { sizePx: NO_DATA_FONT_PX, color: COLOR_MUTED_TEXT, align: 'center', vAlign: 'middle' });
      const half = textWidth(ctx, 'no data', NO_DATA_FONT_PX) / 2;
      samples.push(...samplePolyline([{ x: cx - half, y: cy }, { x: cx + half, y: cy }]));
    }
    drawLegend(ctx, plot, legend, samples);
  });

  await writePngAtomically(img, path);
}

async function writePngAtomically(img: PImage.Bitmap, path: string): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true });
    const out = createWriteStream(tmp);
    const closed = once(out, 'close');
    closed.catch(() => undefined); // the encoder reports the same stream error
    // Resolves on 'finish'; rename only after 'close' so the descriptor is released first.
    await PImage.encodePNGToStream(img, out);
    await closed;
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new PlotWriteError(path, { cause });
  }
}
