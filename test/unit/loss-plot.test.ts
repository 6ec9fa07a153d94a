import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as PImage from 'pureimage';
import { describe, expect, it } from 'vitest';
import { OptionError } from '../../domain/errors.ts';
import {
  formatTick,
  lossPlotSizePx,
  niceTicks,
  plotLossPanels,
  PlotWriteError,
  SERIES_PALETTE,
  seriesColors,
  type LossPanel,
  type LossPlotOptions,
  type LossSeries,
} from '../../experiment/loss-plot.ts';

/** Decay time per strategy, so the synthetic curves are told apart rather than drawn over each other. */
const TAU_SEC: Record<string, number> = { 'checkfree-plus': 200, checkfree: 280, 'disk-checkpoint': 420 };

/** A falling loss curve with a recovery spike every `spikeEverySec`, sampled every 5 s. */
function curve(label: string, endSec: number, floor: number, spikeEverySec: number, tauSec = TAU_SEC[label] ?? 300): LossSeries {
  const points: { seconds: number; loss: number }[] = [];
  for (let t = 0; t <= endSec; t += 5) {
    const spike = t >= spikeEverySec && t % spikeEverySec < 20 ? 0.4 * (1 - (t % spikeEverySec) / 20) : 0;
    points.push({ seconds: t, loss: floor + 4.2 * Math.exp(-t / tauSec) + spike });
  }
  return { label, points };
}

const SERIES = ['checkfree', 'checkfree-plus', 'disk-checkpoint'] as const;

function twoPanels(): LossPanel[] {
  return [
    {
      title: '5% failures per hour',
      series: [curve('checkfree', 1500, 1.45, 400), curve('checkfree-plus', 1400, 1.4, 400), curve('disk-checkpoint', 1700, 1.42, 500)],
      targetLoss: 1.6,
    },
    {
      title: '16% failures per hour',
      // A different order: colours must follow the label, not the position.
      series: [
        curve('disk-checkpoint', 2400, 1.5, 250),
        { label: 'checkfree', points: [...curve('checkfree', 1900, 1.55, 200).points, { seconds: 1905, loss: Number.NaN }, { seconds: 1910, loss: Infinity }] },
        curve('checkfree-plus', 1700, 1.45, 200),
      ],
      targetLoss: 1.6,
    },
  ];
}

async function decode(path: string): Promise<PImage.Bitmap> {
  return PImage.decodePNGFromStream(createReadStream(path));
}

function rgb(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

/** Pixels in the rectangle within a small distance of `hex` (line interiors are drawn exactly). */
function countColor(img: PImage.Bitmap, hex: string, x0: number, y0: number, w: number, h: number): number {
  const [r, g, b] = rgb(hex);
  let n = 0;
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) {
      const p = img.getPixelRGBA(x, y);
      const dr = ((p >>> 24) & 0xff) - r;
      const dg = ((p >>> 16) & 0xff) - g;
      const db = ((p >>> 8) & 0xff) - b;
      if (dr * dr + dg * dg + db * db <= 12 * 12) n++;
    }
  }
  return n;
}

function countNonWhite(img: PImage.Bitmap, x0: number, y0: number, w: number, h: number): number {
  return w * h - countColor(img, '#ffffff', x0, y0, w, h);
}

describe('loss plot', () => {
  const options: LossPlotOptions = { title: 'Training loss under node failures (synthetic)' };

  it('draws every strategy in its own colour in every panel, on a white figure of the implied size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ftrain-loss-plot-'));
    const path = join(dir, 'nested', 'churn.png');
    await plotLossPanels(twoPanels(), path, options);

    // The directory was created and no temporary file is left behind.
    expect(readdirSync(join(dir, 'nested'))).toEqual(['churn.png']);

    // PNG signature and IHDR, read from the bytes.
    const bytes = readFileSync(path);
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(bytes.subarray(12, 16).toString('latin1')).toBe('IHDR');
    // Two 560 × 380 panels side by side under a title band.
    const size = lossPlotSizePx(2, options);
    expect(size.widthPx).toBe(2 * 560);
    expect(size.heightPx - 380).toBeGreaterThan(20);
    expect(size.heightPx - 380).toBeLessThan(80);
    expect(bytes.readUInt32BE(16)).toBe(size.widthPx);
    expect(bytes.readUInt32BE(20)).toBe(size.heightPx);

    const img = await decode(path);
    expect([img.width, img.height]).toEqual([size.widthPx, size.heightPx]);
    const white = countColor(img, '#ffffff', 0, 0, img.width, img.height);
    expect(white / (img.width * img.height)).toBeGreaterThan(0.75);

    const colors = seriesColors(twoPanels());
    expect(new Set(colors.values()).size).toBe(SERIES.length);
    const titleBand = size.heightPx - 380;
    for (const [panel, x0] of [0, 560].entries()) {
      for (const label of SERIES) {
        // A 2 px curve across most of the panel; the legend swatch alone is 72 px.
        expect(countColor(img, colors.get(label)!, x0, titleBand, 560, 380), `${label} in panel ${panel}`).toBeGreaterThan(400);
      }
    }
    // The figure title band has text.
    expect(countNonWhite(img, 0, 0, size.widthPx, titleBand)).toBeGreaterThan(200);
  });

  it('draws axes and "no data" for empty panels and series without finite points, without throwing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ftrain-loss-plot-'));
    const path = join(dir, 'empty.png');
    const panels: LossPanel[] = [
      { title: 'with data', series: [curve('checkfree', 600, 1.5, 300)] },
      { title: 'nothing yet', series: [] },
      { title: 'diverged', series: [{ label: 'checkfree', points: [{ seconds: 1, loss: Number.NaN }] }, { label: 'disk-checkpoint', points: [] }] },
    ];
    const opts = { ...options, columns: 3, panelWidth: 400, panelHeight: 300 };
    await plotLossPanels(panels, path, opts);
    const img = await decode(path);
    const size = lossPlotSizePx(3, opts);
    expect([img.width, img.height]).toEqual([1200, size.heightPx]);
    const titleBand = size.heightPx - 300;
    const blue = seriesColors(panels).get('checkfree')!;
    expect(countColor(img, blue, 0, titleBand, 400, 300)).toBeGreaterThan(300);
    for (const x0 of [400, 800]) {
      // Frame, ticks, labels and "no data" are drawn, but no curve: at most the legend swatch.
      expect(countNonWhite(img, x0, titleBand, 400, 300)).toBeGreaterThan(2000);
      expect(countColor(img, blue, x0, titleBand, 400, 300)).toBeLessThanOrEqual(3 * 24);
      // "no data" sits in the middle of the plot area.
      expect(countNonWhite(img, x0 + 150, titleBand + 130, 140, 30)).toBeGreaterThan(30);
    }

    // No panels at all still writes a figure with one empty panel.
    await plotLossPanels([], join(dir, 'none.png'), options);
    expect(existsSync(join(dir, 'none.png'))).toBe(true);
  });

  it('rejects options it cannot draw, naming the field', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ftrain-loss-plot-')), 'x.png');
    await expect(plotLossPanels(twoPanels(), path, { ...options, panelWidth: 50 })).rejects.toThrow(OptionError);
    await expect(plotLossPanels(twoPanels(), path, { ...options, columns: 0 })).rejects.toThrow(/^columns:/);
    expect(existsSync(path)).toBe(false);
  });

  it('reports a path it cannot write as PlotWriteError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ftrain-loss-plot-'));
    writeFileSync(join(dir, 'file'), '');
    const err = await plotLossPanels(twoPanels(), join(dir, 'file', 'x.png'), options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlotWriteError);
    expect((err as PlotWriteError).path).toBe(join(dir, 'file', 'x.png'));
  });

  it('picks 1/2/5 × 10^n tick steps that cover the range', () => {
    expect(niceTicks(0, 2400, 7)).toEqual({ lo: 0, hi: 2500, step: 500, values: [0, 500, 1000, 1500, 2000, 2500] });
    expect(niceTicks(1.38, 5.8, 8)).toMatchObject({ lo: 1, hi: 6, step: 1 });
    expect(niceTicks(1.38, 5.8, 10).step).toBe(0.5);
    expect(niceTicks(2, 2, 5).lo).toBeLessThan(2);
    for (let i = 0; i < 200; i++) {
      const a = (i * 7.31) % 50;
      const b = a + 10 ** ((i % 9) - 3) * (1 + (i % 7));
      const t = niceTicks(a, b, 1 + (i % 8));
      const mantissa = t.step / 10 ** Math.floor(Math.log10(t.step) + 1e-9);
      expect([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6)).toBe(true);
      expect(t.lo).toBeLessThanOrEqual(a + 1e-9);
      expect(t.hi).toBeGreaterThanOrEqual(b - 1e-9);
      expect(t.values.length - 1).toBeLessThanOrEqual(1 + (i % 8));
    }
    expect(niceTicks(0, 0.3, 3).values.map((v) => formatTick(v, 0.1))).toEqual(['0', '0.1', '0.2', '0.3']);
    expect(formatTick(2_000_000, 1_000_000)).toBe('2e6');
  });
});
