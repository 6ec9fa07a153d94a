// The ftrain dashboard page. Plain browser script (no build step, no modules).
// Data: a DashboardData JSON (see observability/dashboard-data.ts), either embedded in the page as
// <script type="application/json" id="ftrain-data"> (static report of a finished run) or streamed
// from `api/events` (live: one `state` event, then `update` events).
'use strict';

(function () {
  const RENDER_INTERVAL_MS = 500;
  const MAX_POINTS = 50000; // MAX_DASHBOARD_POINTS
  const ENDED_PHASES = ['finished', 'failed', 'stopped'];
  const RATE_WINDOW_S = 60;
  const RATE_MIN_WINDOW_S = 5;

  // One fixed colour per recovery method, used in every chart and table.
  const METHOD_COLORS = {
    'local-snapshot': '#2a7ab8',
    'erasure-rebuild': '#8e44ad',
    'replica-copy': '#c0392b',
    'replica-out': '#7f8c8d',
    'checkfree': '#e67e22',
    'checkfree-plus': '#16a085',
    'disk-checkpoint': '#8b5a2b',
  };
  const OTHER_METHOD_COLOR = '#7a7a7a';
  const STAGE_COLORS = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#c9a000', '#a6761d', '#1f78b4', '#666666', '#b2182b'];
  const LOSS_COLOR = '#2a5db0';
  const FAILURE_COLOR = '#d62728';
  const RECOVERY_BINS = [
    { lo: 0, hi: 0.5, label: '0–0.5' },
    { lo: 0.5, hi: 1, label: '0.5–1' },
    { lo: 1, hi: 2, label: '1–2' },
    { lo: 2, hi: 5, label: '2–5' },
    { lo: 5, hi: 10, label: '5–10' },
    { lo: 10, hi: 30, label: '10–30' },
    { lo: 30, hi: Infinity, label: '≥30' },
  ];
  const TIME_AXIS = 'time since training started (s)';

  // Contract for browser tests: the current data and how many renders were done.
  const dash = { data: null, renders: 0 };
  window.ftrainDashboard = dash;

  let connection = 'connecting'; // connecting | live | reconnecting | closed | static
  const charts = {};
  const chartKeys = {}; // per chart: the inputs it was last drawn from, to skip unchanged redraws

  // ---------- small helpers ----------

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, props, children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null) continue;
        if (k === 'text') node.textContent = String(v);
        else if (k === 'class') node.className = v;
        else node.setAttribute(k, String(v));
      }
    }
    for (const c of children || []) node.append(c);
    return node;
  }

  function fmtNum(x, digits) {
    return Number.isFinite(x) ? x.toFixed(digits) : '—';
  }

  function fmtElapsed(s) {
    if (!Number.isFinite(s)) return '—';
    if (s < 60) return s.toFixed(1) + ' s';
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = Math.floor(s % 60);
    const clock = (h ? h + ':' + String(m).padStart(2, '0') : String(m)) + ':' + String(sec).padStart(2, '0');
    return Math.round(s) + ' s (' + clock + ')';
  }

  function fmtBytes(n) {
    if (n === null || n === undefined || !Number.isFinite(n)) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[i];
  }

  function fmtCommitStep(step) {
    return step < 0 ? 'none yet' : String(step);
  }

  function methodColor(method) {
    return METHOD_COLORS[method] || OTHER_METHOD_COLOR;
  }

  function stageColor(stage) {
    return STAGE_COLORS[((stage % STAGE_COLORS.length) + STAGE_COLORS.length) % STAGE_COLORS.length];
  }

  function isEnded(data) {
    return ENDED_PHASES.includes(data.status.phase);
  }

  function compareIds(a, b) {
    return a.localeCompare(b, undefined, { numeric: true });
  }

  /** k and m of "RS(k,m)", or null. */
  function parseCode(code) {
    const m = /^RS\((\d+),\s*(\d+)\)$/.exec(code || '');
    return m ? { k: Number(m[1]), m: Number(m[2]) } : null;
  }

  /** Index of the loss point nearest in time to `seconds` (loss is in time order). */
  function nearestLossIndex(loss, seconds) {
    let lo = 0;
    let hi = loss.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (loss[mid].seconds < seconds) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0 && Math.abs(loss[lo - 1].seconds - seconds) <= Math.abs(loss[lo].seconds - seconds)) return lo - 1;
    return lo;
  }

  /**
   * The x range shared by the charts over time, so they line up: from 0 (or the oldest point kept,
   * once old points were dropped) to the status time.
   */
  function timeRange(data) {
    const { loss, snapshots } = data;
    const lastLoss = loss.length ? loss[loss.length - 1].seconds : 0;
    const lastSnap = snapshots.length ? snapshots[snapshots.length - 1].seconds : 0;
    const max = Math.max(data.status.seconds, lastLoss, lastSnap, ...data.failures.map((f) => f.seconds), 1);
    let min = 0;
    if (loss.length >= MAX_POINTS || snapshots.length >= MAX_POINTS) {
      min = Math.min(loss.length ? loss[0].seconds : max, snapshots.length ? snapshots[0].seconds : max);
    }
    return { min: Math.floor(min), max: Math.ceil(max) };
  }

  function setTimeAxis(chart, range) {
    const x = chart.options.scales.x;
    x.min = range.min;
    x.max = range.max;
    x.ticks.includeBounds = false;
    return range.min + '-' + range.max;
  }

  // ---------- derived series ----------

  /** Loss by step: after a rollback the re-trained steps replace the abandoned ones, so x only grows. */
  function lossByStep(loss) {
    const out = [];
    for (const p of loss) {
      while (out.length && out[out.length - 1].x >= p.step) out.pop();
      out.push({ x: p.step, y: p.loss, s: p.seconds });
    }
    return out;
  }

  function snapshotsByStage(snapshots) {
    const byStage = new Map();
    for (const s of snapshots) {
      if (!byStage.has(s.stage)) byStage.set(s.stage, []);
      byStage.get(s.stage).push(s);
    }
    return new Map([...byStage].sort((a, b) => a[0] - b[0]));
  }

  /**
   * Snapshots per minute of one stage at sample times t: the commits in (t−60 s, t] divided by
   * the window length, min(60 s, t − first commit); samples with a window under 5 s are skipped.
   * Sampled at each commit and on a regular grid up to `end`, so a stall shows as a falling rate.
   */
  function stageRate(times, end) {
    const first = times[0];
    const stop = Math.max(end, times[times.length - 1]);
    const gridStep = Math.max(2, (stop - first) / 2000);
    const samples = times.slice();
    for (let t = first + RATE_MIN_WINDOW_S; t <= stop; t += gridStep) samples.push(t);
    samples.push(stop);
    samples.sort((a, b) => a - b);
    const points = [];
    let i = 0;
    let j = 0;
    let last = -Infinity;
    for (const t of samples) {
      if (t === last) continue;
      last = t;
      while (i < times.length && times[i] <= t) i++;
      while (j < i && times[j] <= t - RATE_WINDOW_S) j++;
      const windowS = Math.min(RATE_WINDOW_S, t - first);
      if (windowS < RATE_MIN_WINDOW_S) continue;
      points.push({ x: t, y: (i - j) / (windowS / 60) });
    }
    return points;
  }

  function recoveryHistogram(failures) {
    const methods = Object.keys(METHOD_COLORS).filter((m) => failures.some((f) => f.method === m));
    for (const f of failures) if (!methods.includes(f.method)) methods.push(f.method);
    return methods.map((method) => {
      const counts = RECOVERY_BINS.map(() => 0);
      for (const f of failures) {
        if (f.method !== method) continue;
        const s = f.recoverMs / 1000;
        const bin = RECOVERY_BINS.findIndex((b) => s >= b.lo && s < b.hi);
        counts[bin < 0 ? 0 : bin]++;
      }
      return { method, counts };
    });
  }

  // ---------- charts ----------

  function axis(title, extra) {
    return Object.assign({ type: 'linear', title: { display: true, text: title }, ticks: { maxTicksLimit: 8 } }, extra);
  }

  function lineOptions(xTitle, yTitle, extra) {
    return Object.assign(
      {
        animation: false,
        parsing: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        elements: { line: { borderWidth: 1.5, tension: 0 }, point: { hitRadius: 4 } },
        scales: { x: axis(xTitle), y: axis(yTitle) },
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 14, boxHeight: 8 } },
          decimation: { enabled: true, algorithm: 'lttb', samples: 1000 },
        },
      },
      extra,
    );
  }

  function createCharts() {
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.font.size = 11;
    Chart.defaults.color = '#4a5160';
    Chart.defaults.borderColor = '#e6e8ec';

    const lossTooltip = {
      callbacks: {
        title: () => '',
        label: (c) => {
          const p = c.raw;
          if (p.f) return failureLines(p.f);
          const step = p.step !== undefined ? p.step : p.x;
          const secs = p.s !== undefined ? p.s : p.x;
          return 'step ' + step + ' · loss ' + p.y.toFixed(4) + ' nats/byte · ' + secs.toFixed(1) + ' s';
        },
      },
    };

    charts.lossStep = new Chart($('chart-loss-step'), {
      type: 'line',
      data: { datasets: [] },
      options: lineOptions('step', 'loss (nats/byte)', {
        plugins: { legend: { display: false }, tooltip: lossTooltip, decimation: { enabled: true, algorithm: 'lttb', samples: 1000 } },
      }),
    });
    charts.lossTime = new Chart($('chart-loss-time'), {
      type: 'line',
      data: { datasets: [] },
      options: lineOptions(TIME_AXIS, 'loss (nats/byte)', {
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 14, boxHeight: 8, usePointStyle: true } },
          tooltip: lossTooltip,
          decimation: { enabled: true, algorithm: 'lttb', samples: 1000 },
        },
      }),
    });
    charts.snapshotRate = new Chart($('chart-snapshot-rate'), {
      type: 'line',
      data: { datasets: [] },
      options: lineOptions(TIME_AXIS, 'snapshots per minute', {
        scales: { x: axis(TIME_AXIS), y: axis('snapshots per minute', { beginAtZero: true }) },
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 14, boxHeight: 8 } },
          decimation: { enabled: true, algorithm: 'lttb', samples: 1000 },
          tooltip: { callbacks: { title: () => '', label: (c) => c.dataset.label + ': ' + c.raw.y.toFixed(1) + ' /min at ' + c.raw.x.toFixed(1) + ' s' } },
        },
      }),
    });
    charts.snapshotLatency = msPerSlotChart('chart-snapshot-latency', 'latency (ms)');
    charts.allReduce = msPerSlotChart('chart-all-reduce', 'all-reduce (ms)');
    charts.failures = new Chart($('chart-failures'), {
      type: 'scatter',
      data: { datasets: [] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: axis(TIME_AXIS), y: axis('recovery time (s)', { beginAtZero: true }) },
        plugins: {
          legend: { position: 'bottom', labels: { usePointStyle: true, boxWidth: 8 } },
          tooltip: { callbacks: { title: () => '', label: (c) => failureLines(c.raw.f) } },
        },
      },
    });
    charts.recoveryHist = new Chart($('chart-recovery-hist'), {
      type: 'bar',
      data: { labels: RECOVERY_BINS.map((b) => b.label), datasets: [] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true, title: { display: true, text: 'recovery time (s)' } },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: 'failures' }, ticks: { precision: 0 } },
        },
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12, boxHeight: 8 } } },
      },
    });
  }

  /** A line per stage slot of milliseconds over the run's time (snapshot latency, all-reduce time). */
  function msPerSlotChart(id, label) {
    return new Chart($(id), {
      type: 'line',
      data: { datasets: [] },
      options: lineOptions(TIME_AXIS, label, {
        scales: { x: axis(TIME_AXIS), y: axis(label, { beginAtZero: true }) },
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 18, boxHeight: 2 } },
          decimation: { enabled: true, algorithm: 'lttb', samples: 1000 },
          tooltip: { callbacks: { title: () => '', label: (c) => c.dataset.label + ': ' + c.raw.y.toFixed(1) + ' ms at ' + c.raw.x.toFixed(1) + ' s (step ' + c.raw.step + ')' } },
        },
      }),
    });
  }

  function failureLines(f) {
    const lines = [
      f.kind + ' · stage ' + f.stage + ' · ' + f.nodeId,
      'method ' + f.method + ' · recovery ' + (f.recoverMs / 1000).toFixed(2) + ' s',
      'at ' + f.seconds.toFixed(1) + ' s, step ' + f.step + ' · steps lost ' + f.lostSteps,
    ];
    if (f.trainedOn) lines.push(trainedOnText(f.trainedOn));
    return lines;
  }

  /** A replica the others trained on without: what they did meanwhile, and its join. */
  function trainedOnText(t) {
    const host = t.host === null ? 'their own micro-batches only' : 'replica ' + t.host + ' took its micro-batches';
    const joined = t.joinedAtStep === null ? 'the run ended before it joined' : 'joined at step ' + t.joinedAtStep + ' after ' + (t.rejoinMs / 1000).toFixed(2) + ' s';
    return 'replica ' + t.replica + ' out: ' + t.steps + ' step(s) trained meanwhile (' + host + '), ' + joined;
  }

  /** Draws `datasets` (or the empty-state text) and records how many points are drawn. */
  function setChart(chart, key, datasets, emptyText) {
    const canvas = chart.canvas;
    const box = canvas.parentElement;
    const points = emptyText ? 0 : datasets.reduce((n, d) => n + (d.pointCount !== undefined ? d.pointCount : d.data.length), 0);
    box.classList.toggle('is-empty', Boolean(emptyText));
    box.querySelector('.empty').textContent = emptyText || '';
    canvas.setAttribute('data-points', String(points));
    if (chartKeys[canvas.id] === key) return;
    chartKeys[canvas.id] = key;
    chart.data.datasets = emptyText ? [] : datasets;
    chart.update('none');
  }

  function lineDataset(label, color, data, extra) {
    const dense = data.length > 400;
    return Object.assign(
      {
        label,
        data,
        borderColor: color,
        backgroundColor: color,
        pointRadius: dense ? 0 : 2,
        pointHoverRadius: 4,
        indexAxis: 'x',
      },
      extra,
    );
  }

  function renderLossCharts(data, range) {
    const loss = data.loss;
    const lastLoss = loss[loss.length - 1];
    let key = loss.length + ':' + (lastLoss ? lastLoss.seconds : '') + ':' + data.failures.length;
    const empty = loss.length ? '' : 'no loss reported yet';

    setChart(charts.lossStep, key, empty ? [] : [lineDataset('loss', LOSS_COLOR, lossByStep(loss))], empty);

    if (empty) return setChart(charts.lossTime, key, [], empty);
    key += ':' + setTimeAxis(charts.lossTime, range);
    const byTime = loss.map((p) => ({ x: p.seconds, y: p.loss, step: p.step }));
    const markers = data.failures.map((f) => ({ x: f.seconds, y: loss[nearestLossIndex(loss, f.seconds)].loss, f }));
    const datasets = [lineDataset('loss', LOSS_COLOR, byTime, { pointStyle: 'line' })];
    if (markers.length) {
      datasets.push({
        label: 'failure',
        data: markers,
        showLine: false,
        pointStyle: 'triangle',
        pointRadius: 7,
        pointHoverRadius: 9,
        borderColor: FAILURE_COLOR,
        backgroundColor: FAILURE_COLOR,
      });
    }
    setChart(charts.lossTime, key, datasets, '');
  }

  function renderSnapshotCharts(data, range) {
    // The interval in force (under --snapshot-every auto, as the coordinator last chose it).
    const interval = data.status.snapshotInterval || { mode: 'fixed', every: data.job.snapshotEvery };
    const every = interval.every;
    $('snapshot-every').textContent =
      every > 0 ? 'every ' + (every === 1 ? 'step' : every + ' steps') + (interval.mode === 'auto' ? ' (auto)' : '') : 'snapshots off';
    const snaps = data.snapshots;
    const lastSnap = snaps[snaps.length - 1];
    const key = snaps.length + ':' + (lastSnap ? lastSnap.seconds : '') + ':' + data.status.seconds + ':' + range.min + '-' + range.max;
    let empty = '';
    if (every === 0) empty = 'snapshots off (the job takes no snapshots)';
    else if (snaps.length === 0) empty = 'no snapshot commits yet';

    const stages = snapshotsByStage(snaps);
    setTimeAxis(charts.snapshotRate, range);
    setTimeAxis(charts.snapshotLatency, range);
    renderSnapshotRate(data, stages, key, empty);
    renderSnapshotLatency(stages, key, empty);
  }

  function renderSnapshotRate(data, stages, key, empty) {
    const rates = $('snapshot-rates');
    rates.replaceChildren();
    if (empty) return setChart(charts.snapshotRate, key, [], empty);
    const datasets = [];
    for (const [stage, list] of stages) {
      const times = list.map((s) => s.seconds).sort((a, b) => a - b);
      const points = stageRate(times, data.status.seconds);
      const current = points.length ? points[points.length - 1].y : null;
      rates.append(
        el('span', { class: 'rate', 'data-stage': stage }, [
          el('span', { class: 'swatch', style: 'background:' + stageColor(stage) }),
          'stage ' + stage + ': ',
          el('b', { text: current === null ? '—' : current.toFixed(1) }),
          ' /min',
        ]),
      );
      datasets.push(lineDataset('stage ' + stage, stageColor(stage), points, { pointRadius: 0 }));
    }
    const any = datasets.some((d) => d.data.length);
    setChart(charts.snapshotRate, key, datasets, any ? '' : 'rates appear after 5 s of snapshot commits');
  }

  function renderSnapshotLatency(stages, key, empty) {
    if (empty) return setChart(charts.snapshotLatency, key, [], empty);
    const datasets = [];
    for (const [stage, list] of stages) {
      const color = stageColor(stage);
      datasets.push(lineDataset('stage ' + stage + ' commit', color, list.map((s) => ({ x: s.seconds, y: s.copyMs, step: s.step }))));
      datasets.push(
        lineDataset('stage ' + stage + ' stall', color, list.map((s) => ({ x: s.seconds, y: s.stallMs, step: s.step })), {
          borderDash: [4, 3],
          borderWidth: 1.2,
          pointStyle: 'rect',
        }),
      );
    }
    setChart(charts.snapshotLatency, key, datasets, '');
  }

  /** With replicas: each slot's all-reduce time per step; the card is hidden with one replica. */
  function renderAllReduceChart(data, range) {
    const replicas = data.job.replicas || 1;
    $('all-reduce-card').hidden = replicas <= 1;
    if (replicas <= 1) return;
    const points = data.allReduce || [];
    const last = points[points.length - 1];
    const key = points.length + ':' + (last ? last.seconds : '') + ':' + setTimeAxis(charts.allReduce, range);
    if (!points.length) return setChart(charts.allReduce, key, [], data.live ? 'times appear once the replicas train' : 'per-step times are not kept in the report');
    const bySlot = new Map();
    for (const p of points) {
      if (!bySlot.has(p.stage)) bySlot.set(p.stage, []);
      bySlot.get(p.stage).push({ x: p.seconds, y: p.ms, step: p.step });
    }
    const datasets = [...bySlot].sort((a, b) => a[0] - b[0]).map(([slot, list]) => lineDataset('stage ' + slotLabel(slot, data.job), stageColor(slot), list));
    setChart(charts.allReduce, key, datasets, '');
  }

  function renderFailureCharts(data, range) {
    const failures = data.failures;
    const key = JSON.stringify(failures.map((f) => [f.seconds, f.recoverMs, f.method])) + ':' + setTimeAxis(charts.failures, { min: 0, max: range.max });
    const empty = failures.length ? '' : data.status.recovering ? 'first recovery under way…' : 'no failures';

    const hist = recoveryHistogram(failures);
    const byMethod = hist.map(({ method }) => ({
      label: method,
      data: failures.filter((f) => f.method === method).map((f) => ({ x: f.seconds, y: f.recoverMs / 1000, f })),
      backgroundColor: methodColor(method),
      borderColor: methodColor(method),
      pointRadius: 6,
      pointHoverRadius: 8,
    }));
    setChart(charts.failures, key, byMethod, empty);

    const bars = hist.map(({ method, counts }) => ({
      label: method,
      data: counts,
      backgroundColor: methodColor(method),
      pointCount: counts.reduce((a, b) => a + b, 0), // data-points here: the failures counted
    }));
    setChart(charts.recoveryHist, key, bars, empty);
  }

  // ---------- header, banners, tables ----------

  function renderHeader(data) {
    const st = data.status;
    const phase = $('phase');
    phase.textContent = st.phase + (isEnded(data) ? ' · ended' : '');
    phase.className = 'badge phase-' + st.phase;
    phase.setAttribute('data-phase', st.phase);

    renderConnection(data);

    const job = data.job;
    const replicas = job.replicas || 1;
    $('job').textContent =
      (replicas > 1 ? replicas + ' replicas × ' : '') + job.stages + ' stage' + (job.stages === 1 ? '' : 's') + (job.spares ? ' + ' + job.spares + ' spare' + (job.spares === 1 ? '' : 's') : '') +
      ' · recovery ' + job.recovery + ' · backend ' + job.backend + ' · seed ' + job.seed;

    // With a store: which coordinator leads, and its term (absent on a single coordinator's page).
    const role = $('coordinator-role');
    const coord = st.coordinator || null;
    role.hidden = !coord;
    role.textContent = coord ? 'coordinator ' + coord.id + ' · leader · term ' + coord.term : '';
    role.setAttribute('data-role', coord ? 'leader' : '');

    $('steps').textContent = st.completedSteps + ' / ' + (job.steps === null ? '∞' : job.steps);
    const frac = job.steps ? Math.min(1, st.completedSteps / job.steps) : 0;
    $('steps-bar').style.width = (frac * 100).toFixed(1) + '%';
    $('elapsed').textContent = fmtElapsed(st.seconds);
    $('global-commit').textContent = fmtCommitStep(st.globalCommitStep);
    $('protected-commit').textContent = fmtCommitStep(st.protectedCommitStep);
    renderErasure(st.erasure);

    const last = data.loss[data.loss.length - 1];
    $('latest-loss').textContent = last ? last.loss.toFixed(3) + ' @ step ' + last.step : '—';
    const lost = data.failures.reduce((n, f) => n + f.lostSteps, 0);
    $('failure-count').textContent = data.failures.length + (data.failures.length ? ' · ' + lost + ' step' + (lost === 1 ? '' : 's') + ' lost' : '');
  }

  function renderConnection(data) {
    const conn = $('connection');
    conn.textContent = {
      connecting: 'connecting…',
      live: data && isEnded(data) ? 'live · run ended' : 'live',
      reconnecting: 'reconnecting…',
      closed: 'coordinator closed',
      static: 'finished run',
    }[connection];
    conn.className = 'conn conn-' + connection;
    conn.setAttribute('data-connection', connection);
  }

  function renderErasure(er) {
    const box = $('erasure');
    box.replaceChildren();
    box.className = '';
    if (er.code) {
      box.append(er.code);
      if (er.degraded) {
        box.append(' ', el('span', { class: 'warn', id: 'erasure-degraded', title: 'too few nodes: some node holds more than one shard of a stage', text: '⚠ degraded' }));
      }
    } else {
      box.className = 'off';
      box.textContent = 'erasure coding off' + (er.disabledReason ? ': ' + er.disabledReason : '');
    }
  }

  function renderBanners(data) {
    const st = data.status;
    const rec = $('recovering-banner');
    rec.hidden = !st.recovering;
    if (st.recovering) {
      const r = st.recovering;
      const sofar = Math.max(0, st.seconds - r.sinceSeconds);
      const label = 'stage ' + slotLabel(r.stage, data.job);
      rec.textContent =
        'recovering ' + label + ' (node ' + r.nodeId + '): ' + r.detail + ', since ' + r.sinceSeconds.toFixed(1) + ' s (' + sofar.toFixed(1) + ' s so far)' +
        (r.othersTrainOn ? '; the other replicas train on meanwhile' : '');
    }
    // With a store: the leader cannot reach it; nodes train on, nothing new is decided meanwhile.
    const coord = st.coordinator || null;
    const store = $('store-banner');
    store.hidden = !(coord && coord.storeUnreachable);
    if (coord && coord.storeUnreachable) {
      store.textContent = 'store unreachable: training goes on, no new decision (a recovery waits) until it answers — ' + coord.storeUnreachable;
    }
    const fatal = $('fatal-banner');
    fatal.hidden = !st.fatal;
    if (st.fatal) {
      const f = st.fatal;
      fatal.textContent = 'run failed' + (f.stage === null ? '' : ' at stage ' + f.stage) + ' (node ' + f.nodeId + '): ' + f.detail;
    }
  }

  function methodCell(method) {
    return el('td', null, [el('span', { class: 'dot', style: 'background:' + methodColor(method) }), method]);
  }

  function renderFailureTable(data) {
    const tbody = $('failures').tBodies[0];
    const rows = [];
    const r = data.status.recovering;
    if (r) {
      const sofar = Math.max(0, data.status.seconds - r.sinceSeconds);
      rows.push(
        el('tr', { class: 'in-progress', 'data-stage': r.stage, 'data-node-id': r.nodeId, title: r.detail }, [
          el('td', { class: 'num', text: r.sinceSeconds.toFixed(1) }),
          el('td', { class: 'num', text: '—' }),
          el('td', { text: r.detail }),
          el('td', { class: 'num', text: r.stage }),
          el('td', { text: r.nodeId }),
          el('td', { text: 'recovering…' }),
          el('td', { class: 'num', text: '—' }),
          el('td', { class: 'num', text: sofar.toFixed(2) + '…' }),
          el('td', { class: 'num', text: '—' }),
        ]),
      );
    }
    const failures = data.failures.slice().sort((a, b) => b.seconds - a.seconds);
    for (const f of failures) {
      rows.push(
        el('tr', { 'data-kind': f.kind, 'data-stage': f.stage, 'data-method': f.method, 'data-recover-ms': f.recoverMs, 'data-node-id': f.nodeId, title: f.trainedOn ? f.detail + '; ' + trainedOnText(f.trainedOn) : f.detail }, [
          el('td', { class: 'num', text: f.seconds.toFixed(1) }),
          el('td', { class: 'num', text: f.step }),
          el('td', { text: f.kind }),
          el('td', { class: 'num', text: slotLabel(f.stage, data.job) }),
          el('td', { text: f.nodeId }),
          methodCell(f.method),
          el('td', { class: 'num', text: f.detectMs === null ? '—' : Math.round(f.detectMs) }),
          el('td', { class: 'num', text: (f.recoverMs / 1000).toFixed(2) }),
          el('td', { class: 'num' + (f.lostSteps > 0 ? ' bad' : ''), text: f.lostSteps }),
        ]),
      );
    }
    if (!rows.length) rows.push(el('tr', { class: 'none' }, [el('td', { colspan: 9, text: 'no failures' })]));
    tbody.replaceChildren(...rows);
  }

  /** Stages in order first, then nodes without a stage (spares), then lost nodes. */
  function nodeOrder(a, b) {
    const group = (n) => (n.state === 'lost' ? 2 : n.stage === null ? 1 : 0);
    return group(a) - group(b) || (a.stage ?? Infinity) - (b.stage ?? Infinity) || compareIds(a.nodeId, b.nodeId);
  }

  /** A stage slot as people read it: the stage, or STAGE@REPLICA with replicas. */
  function slotLabel(slot, job) {
    const replicas = job.replicas || 1;
    return replicas > 1 ? (slot % job.stages) + '@' + Math.floor(slot / job.stages) : String(slot);
  }

  function stageLabel(n, job) {
    if (n.stage !== null) return slotLabel(n.stage, job);
    return n.state === 'spare' ? 'spare' : '—';
  }

  /** With replicas: a replica × stage grid, each cell the node that holds the slot, its state and zone. */
  function renderReplicaGrid(data) {
    const box = $('replica-grid-box');
    const job = data.job;
    const replicas = job.replicas || 1;
    box.hidden = replicas <= 1;
    if (replicas <= 1) return;
    const bySlot = new Map(data.nodes.filter((n) => n.stage !== null && n.state !== 'lost' && n.state !== 'stopped').map((n) => [n.stage, n]));
    const ended = data.nodes.filter((n) => n.stage !== null);
    for (const n of ended) if (!bySlot.has(n.stage)) bySlot.set(n.stage, n);
    const table = $('replica-grid');
    const head = el('tr', null, [el('th', { text: 'replica' }), ...Array.from({ length: job.stages }, (_, s) => el('th', { text: 'stage ' + s }))]);
    table.tHead.replaceChildren(head);
    const rows = Array.from({ length: replicas }, (_, r) =>
      el('tr', { 'data-replica': r }, [
        el('th', { text: String(r) }),
        ...Array.from({ length: job.stages }, (_, s) => {
          const n = bySlot.get(r * job.stages + s);
          if (!n) return el('td', { class: 'none', 'data-slot': r * job.stages + s, text: '—' });
          return el('td', { 'data-slot': r * job.stages + s, 'data-node-id': n.nodeId, 'data-state': n.state }, [
            el('span', { class: 'mono', text: n.nodeId }),
            ' ',
            el('span', { class: 'chip chip-' + n.state, text: n.state }),
            n.zone ? el('span', { class: 'sub', text: ' ' + n.zone }) : '',
          ]);
        }),
      ]),
    );
    table.tBodies[0].replaceChildren(...rows);
  }

  function renderNodes(data) {
    const tbody = $('nodes').tBodies[0];
    const nodes = data.nodes.slice().sort(nodeOrder);
    const rows = nodes.map((n) =>
      el('tr', { 'data-node-id': n.nodeId, 'data-state': n.state, 'data-stage': n.stage === null ? (n.state === 'spare' ? 'spare' : 'none') : n.stage, 'data-pid': n.pid, class: 'state-' + n.state }, [
        el('td', { class: 'mono', text: n.nodeId }),
        el('td', { text: n.hostname }),
        el('td', { class: 'mono', text: n.address }),
        el('td', { text: stageLabel(n, data.job) }),
        el('td', null, [el('span', { class: 'chip chip-' + n.state, text: n.state })]),
        el('td', { class: 'num mono', text: n.pid ? n.pid : '—' }),
        el('td', { class: 'num', text: n.shards }),
        el('td', { class: 'num', text: fmtBytes(n.heldBytes) }),
      ]),
    );
    if (!rows.length) rows.push(el('tr', { class: 'none' }, [el('td', { colspan: 8, text: 'no nodes registered yet' })]));
    tbody.replaceChildren(...rows);
  }

  /** A byte count now, and its peak of the run beneath it. */
  function memoryCell(now, peak, attr) {
    const props = { class: 'num' };
    props[attr] = now === null ? '' : now;
    return el('td', props, [
      el('span', { text: fmtBytes(now) }),
      el('span', { class: 'peak', text: 'peak ' + fmtBytes(peak) }),
    ]);
  }

  /** `memory` is absent from the pages of reports written before nodes reported their memory. */
  function renderMemory(data) {
    const memory = data.memory || [];
    const states = new Map(data.nodes.map((n) => [n.nodeId, n.state]));
    const peaks = memory.filter((m) => m.peakTotalBytes !== null);
    const top = peaks.reduce((a, m) => (a === null || m.peakTotalBytes > a.peakTotalBytes ? m : a), null);
    $('peak-ram').textContent = top ? fmtBytes(top.peakTotalBytes) + ' · ' + top.nodeId : '—';
    const tbody = $('memory').tBodies[0];
    const rows = memory
      .map((m) => Object.assign({}, m, { state: states.get(m.nodeId) || 'lost' }))
      .sort(nodeOrder)
      .map((m) => {
        // A lost node's processes are gone: only its peaks still mean something.
        const now = (v) => (m.state === 'lost' ? null : v);
        return el('tr', { 'data-node-id': m.nodeId, 'data-stage': m.stage === null ? 'none' : m.stage, 'data-peak-total': m.peakTotalBytes === null ? '' : m.peakTotalBytes, class: 'state-' + m.state }, [
          el('td', { class: 'mono', text: m.nodeId }),
          el('td', { text: stageLabel(m, data.job) }),
          memoryCell(now(m.workerRssBytes), m.workerPeakRssBytes, 'data-worker-rss'),
          memoryCell(now(m.smpRssBytes), m.smpPeakRssBytes, 'data-smp-rss'),
          memoryCell(now(m.slotBytes), m.peakSlotBytes, 'data-slot-bytes'),
          memoryCell(now(m.shardBytes), m.peakShardBytes, 'data-shard-bytes'),
          memoryCell(now(m.totalBytes), m.peakTotalBytes, 'data-total'),
        ]);
      });
    if (!rows.length) rows.push(el('tr', { class: 'none' }, [el('td', { colspan: 7, text: 'no memory reported yet' })]));
    tbody.replaceChildren(...rows);
  }

  function shardLabel(i, code) {
    if (!code) return 's' + i;
    if (i < code.k) return 'd' + i;
    if (i < code.k + code.m) return 'p' + (i - code.k);
    return 's' + i;
  }

  function renderPlacement(data) {
    const table = $('placement');
    const code = parseCode(data.status.erasure.code);
    $('placement-code').textContent = data.status.erasure.code ? data.status.erasure.code + ' · d: data, p: parity' : '';
    const placement = data.placement.slice().sort((a, b) => a.stage - b.stage);
    const width = Math.max(code ? code.k + code.m : 0, ...placement.map((p) => p.holders.length));
    const states = new Map(data.nodes.map((n) => [n.nodeId, n.state]));

    if (!placement.length) {
      table.tHead.replaceChildren();
      const why = data.status.erasure.code ? 'no shards placed yet' : 'no shard placement (erasure coding off)';
      table.tBodies[0].replaceChildren(el('tr', { class: 'none' }, [el('td', { text: why })]));
      return;
    }
    const head = [el('th', { text: 'stage' })];
    for (let i = 0; i < width; i++) head.push(el('th', { class: code && i >= code.k ? 'parity' : '', text: shardLabel(i, code) }));
    table.tHead.replaceChildren(el('tr', null, head));

    const rows = placement.map((p) => {
      const cells = [el('th', { text: p.stage })];
      for (let i = 0; i < width; i++) {
        const holder = p.holders[i];
        const state = holder === undefined ? null : states.get(holder);
        const cls = holder === undefined ? 'vacant' : state === 'lost' ? 'lost' : state === undefined ? 'unknown' : '';
        const title = holder === undefined ? 'no holder' : holder + (state ? ' (' + state + ')' : ' (not a known node)');
        cells.push(el('td', { class: cls, 'data-shard': shardLabel(i, code), 'data-node-id': holder, title, text: holder === undefined ? '—' : holder }));
      }
      return el('tr', { 'data-stage': p.stage }, cells);
    });
    table.tBodies[0].replaceChildren(...rows);
  }

  // ---------- render loop ----------

  function render() {
    const data = dash.data;
    if (!data) return renderConnection(null);
    document.body.classList.toggle('ended', isEnded(data));
    renderHeader(data);
    renderBanners(data);
    renderFailureTable(data);
    renderNodes(data);
    renderReplicaGrid(data);
    renderPlacement(data);
    renderMemory(data);
    if (window.Chart) {
      const range = timeRange(data);
      renderLossCharts(data, range);
      renderSnapshotCharts(data, range);
      renderAllReduceChart(data, range);
      renderFailureCharts(data, range);
    }
    dash.renders++;
  }

  let renderTimer = null;
  let lastRenderAt = -Infinity;

  /** Renders soon, at most once every RENDER_INTERVAL_MS. */
  function scheduleRender() {
    if (renderTimer !== null) return;
    const wait = Math.max(0, lastRenderAt + RENDER_INTERVAL_MS - performance.now());
    renderTimer = setTimeout(() => {
      renderTimer = null;
      lastRenderAt = performance.now();
      render();
    }, wait);
  }

  // ---------- data sources ----------

  function appendCapped(target, items) {
    for (const item of items) target.push(item);
    if (target.length > MAX_POINTS) target.splice(0, target.length - MAX_POINTS);
  }

  function applyState(full) {
    dash.data = full;
    scheduleRender();
  }

  function applyUpdate(u) {
    const data = dash.data;
    if (!data) return; // an update is meaningless before the first full state
    data.status = u.status;
    data.nodes = u.nodes;
    data.placement = u.placement;
    data.failures = u.failures;
    data.memory = u.memory;
    appendCapped(data.loss, u.loss);
    appendCapped(data.snapshots, u.snapshots);
    if (u.allReduce) appendCapped((data.allReduce = data.allReduce || []), u.allReduce);
    scheduleRender();
  }

  function setConnection(state) {
    if (connection === state) return;
    connection = state;
    scheduleRender();
  }

  function connectLive() {
    const source = new EventSource('api/events');
    source.addEventListener('open', () => setConnection('live'));
    source.addEventListener('state', (e) => {
      connection = 'live';
      applyState(JSON.parse(e.data));
    });
    source.addEventListener('update', (e) => applyUpdate(JSON.parse(e.data)));
    // This coordinator stands by now (it lost the leadership): its / is the page naming the leader.
    source.addEventListener('standby', () => {
      source.close();
      location.reload();
    });
    // The coordinator is shutting down after the run: no reconnecting to a server that is gone.
    source.addEventListener('end', () => {
      source.close();
      setConnection('closed');
    });
    source.addEventListener('error', () => {
      if (connection === 'closed') return;
      setConnection('reconnecting');
      // EventSource retries by itself unless the server answered with an error status.
      if (source.readyState === EventSource.CLOSED) setTimeout(connectLive, 3000);
    });
  }

  // The URL printed at start carries the dashboard's token (?token=); the server answered it with
  // a cookie, which the page's requests and its EventSource carry from now on. The token leaves
  // the address bar (bookmarks, screenshots, shared links).
  function dropTokenFromAddress() {
    const url = new URL(location.href);
    if (!url.searchParams.has('token')) return;
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  }

  function markChartsUnavailable() {
    for (const box of document.querySelectorAll('.chart-box')) {
      box.classList.add('is-empty');
      box.querySelector('.empty').textContent = 'charts unavailable (Chart.js did not load)';
    }
  }

  function renderMessage(text) {
    $('phase').textContent = text;
    $('connection').textContent = '';
  }

  function start() {
    if (window.Chart) createCharts();
    else markChartsUnavailable();

    const embedded = document.getElementById('ftrain-data');
    if (embedded && embedded.type === 'application/json') {
      connection = 'static';
      try {
        applyState(JSON.parse(embedded.textContent));
      } catch (err) {
        renderMessage('the embedded run data is not valid JSON');
        throw err;
      }
      return;
    }
    if (!window.EventSource) return renderMessage('this browser cannot stream live data');
    dropTokenFromAddress();
    connectLive();
    scheduleRender();
  }

  // The embedded data may come after this script in the page: wait until it is parsed.
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
