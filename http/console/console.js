// adapterd's web console: polls the monitor's feed once a second (GET /console/feed, only
// what is new since the last poll), draws it with uPlot, and calls the same API a client
// would. The key lives in this tab's session storage and travels in the Authorization
// header only, never in a URL.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const KEY = 'adapterd-key';
  const THEME = 'adapterd-theme';
  const KEEP = 900;  // samples: the server's 15 minutes

  const series = {
    t: [], rss: [], allocated: [], reserved: [], waiting: [], running: [],
    tokens: [], ttft50: [], ttft99: [], itl50: [], itl99: [],
  };
  const state = { next: 0, period: 1000, events: [], charts: {}, feed: null };

  // --- API ---------------------------------------------------------------------------

  const key = () => sessionStorage.getItem(KEY) || '';

  function headers(withBody) {
    const h = {};
    if (withBody) h['Content-Type'] = 'application/json';
    if (key()) h.Authorization = 'Bearer ' + key();
    return h;
  }

  async function failure(response) {
    const text = await response.text();
    let message = text.slice(0, 300);
    try {
      const body = JSON.parse(text);
      if (body && body.error) message = body.error.message || body.error.code || message;
    } catch (e) { /* not JSON: the text itself */ }
    const err = new Error(message || 'HTTP ' + response.status);
    err.status = response.status;
    return err;
  }

  async function api(method, path, body) {
    const response = await fetch(path, {
      method, headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw await failure(response);
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  function explain(err) {
    if (err.status === 401) return 'needs an API key: enter one above';
    if (err.status === 403) return 'this key may not do that (an admin key is needed)';
    return err.message;
  }

  // --- Formatting --------------------------------------------------------------------

  const mib = (bytes) => bytes / 1048576;
  const fixed = (v, digits) => (v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits));
  const clock = (ms) => new Date(ms).toLocaleTimeString();

  function ago(ms) {
    if (!ms) return 'never';
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    return Math.floor(s / 3600) + ' h ago';
  }

  const shortPath = (p) => p.split('/').filter(Boolean).slice(-2).join('/');

  function cell(row, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function fillTable(id, items, render, empty) {
    const body = $(id).tBodies[0];
    body.replaceChildren();
    for (const item of items) {
      const row = document.createElement('tr');
      render(row, item);
      body.appendChild(row);
    }
    if (items.length === 0) {
      const row = document.createElement('tr');
      const td = cell(row, empty, 'muted');
      td.colSpan = $(id).tHead.rows[0].cells.length;
      body.appendChild(row);
    }
  }

  // --- Charts ------------------------------------------------------------------------

  const color = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  // Flushes and cleanups as vertical lines: after-request flushes faint and dashed, the
  // ones a person or the idle timer asked for solid.
  const markers = {
    hooks: {
      draw: [(u) => {
        const { left, top, width, height } = u.bbox;
        const ctx = u.ctx;
        ctx.save();
        for (const e of state.events) {
          const x = u.valToPos(e.t_ms / 1000, 'x', true);
          if (x < left || x > left + width) continue;
          const routine = e.reason === 'after_request';
          ctx.strokeStyle = color(routine ? '--marker-soft' : '--marker');
          ctx.lineWidth = routine ? 1 : 2;
          ctx.setLineDash(routine ? [2, 3] : []);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
        }
        ctx.restore();
      }],
    },
  };

  const chartSpecs = {
    'chart-memory': { lines: [['RSS', 'rss', '--s1'], ['device allocated', 'allocated', '--s2'], ['device reserved', 'reserved', '--s3']], plugins: [markers] },
    'chart-batch': { lines: [['waiting', 'waiting', '--s2'], ['running', 'running', '--s1']] },
    'chart-tokens': { lines: [['tokens/s', 'tokens', '--s1']] },
    'chart-latency': { lines: [['TTFT p50', 'ttft50', '--s1'], ['TTFT p99', 'ttft99', '--s2'], ['ITL p50', 'itl50', '--s3'], ['ITL p99', 'itl99', '--s4']] },
  };

  function chartWidth(figure) { return Math.max(240, figure.clientWidth - 20); }

  function axis() {
    return { stroke: color('--muted'), grid: { stroke: color('--line'), width: 1 }, ticks: { stroke: color('--line'), width: 1 } };
  }

  function makeChart(id) {
    const spec = chartSpecs[id];
    const figure = $(id);
    const opts = {
      width: chartWidth(figure), height: 180,
      scales: { x: { time: true } },
      series: [{}].concat(spec.lines.map(([label, , stroke]) => ({
        label, stroke: color(stroke), width: 1.5, spanGaps: false,
        value: (u, v) => fixed(v, 1),
      }))),
      axes: [axis(), Object.assign(axis(), { size: 56 })],
      plugins: spec.plugins || [],
    };
    return new uPlot(opts, chartData(id), figure);
  }

  function chartData(id) {
    return [series.t].concat(chartSpecs[id].lines.map(([, name]) => series[name]));
  }

  function makeCharts() {
    for (const id of Object.keys(state.charts)) state.charts[id].destroy();
    state.charts = {};
    for (const id of Object.keys(chartSpecs)) state.charts[id] = makeChart(id);
    if (state.loss) { state.loss.destroy(); state.loss = null; state.lossJob = null; }
    if (state.feed) drawLoss(state.feed);
  }

  function redraw() {
    for (const [id, chart] of Object.entries(state.charts)) {
      chart.setData(chartData(id));
      $(id).dataset.points = String(series.t.length);
    }
    const first = series.t.length ? series.t[0] * 1000 : 0;
    const shown = state.events.filter((e) => e.t_ms >= first);
    $('chart-memory').dataset.markers = String(shown.length);
    $('chart-memory').dataset.cleanupMarkers = String(shown.filter((e) => e.reason !== 'after_request').length);
  }

  // --- The feed ----------------------------------------------------------------------

  function reset() {
    for (const name of Object.keys(series)) series[name].length = 0;
    state.events.length = 0;
    state.next = 0;
  }

  function take(feed) {
    if (feed.next < state.next) {  // the server restarted: its numbering did too
      reset();
      return false;
    }
    const at = Object.fromEntries(feed.fields.map((name, i) => [name, i]));
    const ms = (v) => (v === null ? null : v * 1000);
    for (const row of feed.samples) {
      series.t.push(row[at.t_ms] / 1000);
      series.rss.push(mib(row[at.rss_bytes]));
      series.allocated.push(row[at.device_allocated_mb]);
      series.reserved.push(row[at.device_reserved_mb]);
      series.waiting.push(row[at.waiting]);
      series.running.push(row[at.running]);
      series.tokens.push(row[at.tokens_per_s]);
      series.ttft50.push(ms(row[at.ttft_p50_s]));
      series.ttft99.push(ms(row[at.ttft_p99_s]));
      series.itl50.push(ms(row[at.itl_p50_s]));
      series.itl99.push(ms(row[at.itl_p99_s]));
    }
    const extra = series.t.length - KEEP;
    if (extra > 0) for (const name of Object.keys(series)) series[name].splice(0, extra);
    state.events.push(...feed.events);
    const first = series.t.length ? series.t[0] * 1000 : 0;
    state.events = state.events.filter((e) => e.t_ms >= first).slice(-KEEP);
    state.next = feed.next;
    state.period = feed.period_ms || 1000;
    state.feed = feed;
    return true;
  }

  function showTables(feed) {
    fillTable('resident', feed.resident, (row, r) => {
      cell(row, r.kind);
      cell(row, shortPath(r.path)).title = r.path;
      cell(row, r.tier);
      cell(row, r.weights || '');
      cell(row, fixed(mib(r.bytes), 1), 'num');
      cell(row, String(r.requests), 'num');
      cell(row, ago(r.last_used_ms));
    }, 'nothing loaded yet');
    fillTable('adapter-load', feed.adapters, (row, a) => {
      cell(row, a.adapter || '(base model)');
      cell(row, String(a.waiting), 'num');
      cell(row, String(a.running), 'num');
    }, 'no requests in flight');
    fillTable('events', state.events.filter((e) => e.reason !== 'after_request').slice(-20).reverse()
      .concat(state.events.filter((e) => e.reason === 'after_request').slice(-3).reverse()), (row, e) => {
      cell(row, clock(e.t_ms));
      cell(row, e.reason.replace('_', ' '));
      cell(row, e.level);
      cell(row, fixed(mib(e.rss_after_bytes), 1), 'num');
    }, 'none in the last 15 minutes');
    fillTable('jobs', feed.jobs, (row, j) => {
      cell(row, j.adapter_id || j.id).title = j.id;
      cell(row, j.state + (j.error ? ': ' + j.error : ''));
      const progress = document.createElement('progress');
      progress.max = Math.max(1, j.steps);
      progress.value = j.step;
      progress.setAttribute('aria-label', 'step ' + j.step + ' of ' + j.steps);
      cell(row, '').append(progress, ' ' + j.step + '/' + j.steps);
      cell(row, fixed(j.loss, 3), 'num');
      cell(row, j.state === 'running' ? Math.round(j.eta_s) + ' s' : '');
      const actions = cell(row, '');
      if (j.state === 'queued' || j.state === 'running') {
        const cancel = document.createElement('button');
        cancel.type = 'button';
        cancel.textContent = 'Cancel';
        cancel.setAttribute('aria-label', 'Cancel job ' + j.id);
        cancel.addEventListener('click', () => operate('Cancel ' + j.id, () => api('DELETE', '/jobs/' + encodeURIComponent(j.id))));
        actions.appendChild(cancel);
      }
    }, 'no training jobs');
    drawLoss(feed);
    const last = series.t.length - 1;
    $('now').textContent = last < 0 ? '' :
      'Now: RSS ' + fixed(series.rss[last], 0) + ' MiB · device ' + fixed(series.allocated[last], 0) +
      ' MiB allocated, ' + fixed(series.reserved[last], 0) + ' MiB reserved · ' + series.waiting[last] +
      ' waiting · ' + series.running[last] + ' running · ' + fixed(series.tokens[last], 1) + ' tokens/s';
  }

  // The loss of the newest job that has one.
  function drawLoss(feed) {
    const figure = $('chart-loss');
    const curve = feed.loss_curves.length ? feed.loss_curves[feed.loss_curves.length - 1] : null;
    figure.hidden = !curve;
    if (!curve) return;
    $('loss-job').textContent = '— ' + curve.job_id;
    const data = [curve.steps, curve.losses];
    if (state.loss && state.lossJob === curve.job_id) {
      state.loss.setData(data);
    } else {
      if (state.loss) state.loss.destroy();
      state.lossJob = curve.job_id;
      state.loss = new uPlot({
        width: chartWidth(figure), height: 150, scales: { x: { time: false } },
        series: [{ label: 'step' }, { label: 'loss', stroke: color('--s1'), width: 1.5 }],
        axes: [axis(), Object.assign(axis(), { size: 56 })],
      }, data, figure);
    }
    figure.dataset.points = String(curve.steps.length);
  }

  async function poll() {
    try {
      const feed = await api('GET', '/console/feed?since=' + state.next);
      if (take(feed)) {
        redraw();
        showTables(feed);
        $('status').textContent = feed.role + ' node · ' + series.t.length + ' s of history';
        $('feed-error').hidden = true;
      }
    } catch (err) {
      $('feed-error').textContent = 'Live view: ' + explain(err);
      $('feed-error').hidden = false;
      $('status').textContent = 'not receiving';
    }
    // A hidden tab asks less often; nothing is lost, the next poll brings what it missed.
    setTimeout(poll, document.hidden ? 5 * state.period : state.period);
  }

  // --- Playground --------------------------------------------------------------------

  async function loadModels() {
    try {
      const list = await api('GET', '/v1/models');
      for (const id of ['pg-model', 'pg-compare']) {
        const select = $(id);
        const keep = select.value;
        select.querySelectorAll('option[data-model]').forEach((o) => o.remove());
        for (const m of list.data) {
          const option = document.createElement('option');
          option.value = m.id;
          option.textContent = m.id;
          option.dataset.model = '1';
          select.appendChild(option);
        }
        if (keep) select.value = keep;
      }
    } catch (err) {
      $('pg-out-0').querySelector('.output-stats').textContent = 'Models: ' + explain(err);
    }
  }

  function numberField(id) {
    const v = $(id).value;
    return v === '' ? undefined : Number(v);
  }

  // One streamed request into one output pane: its text as it comes, then TTFT and tokens/s.
  async function stream(model, pane, signal) {
    const chat = $('pg-api').value === 'chat';
    const prompt = $('pg-prompt').value;
    const body = {
      model, stream: true, stream_options: { include_usage: true },
      max_tokens: numberField('pg-max-tokens'), temperature: numberField('pg-temperature'),
      top_p: numberField('pg-top-p'), seed: numberField('pg-seed'),
    };
    if (chat) body.messages = [{ role: 'user', content: prompt }];
    else body.prompt = prompt;
    const text = pane.querySelector('.output-text');
    const stats = pane.querySelector('.output-stats');
    pane.querySelector('.output-model').textContent = model;
    text.textContent = '';
    stats.textContent = 'waiting…';
    pane.dataset.pieces = '0';
    const started = performance.now();
    let first = null, pieces = 0, usage = null;
    try {
      const response = await fetch(chat ? '/v1/chat/completions' : '/v1/completions', {
        method: 'POST', headers: headers(true), body: JSON.stringify(body), signal,
      });
      if (!response.ok) throw await failure(response);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of event.split('\n')) {
            if (!line.startsWith('data:')) continue;
            const data = line.slice(5).trim();
            if (data === '[DONE]') continue;
            const chunk = JSON.parse(data);
            if (chunk.error) throw new Error(chunk.error.message || 'the stream failed');
            if (chunk.usage) usage = chunk.usage;
            const choice = chunk.choices && chunk.choices[0];
            const piece = choice ? (chat ? (choice.delta && choice.delta.content) || '' : choice.text || '') : '';
            if (!piece) continue;
            if (first === null) first = performance.now();
            text.textContent += piece;
            pane.dataset.pieces = String(++pieces);
          }
        }
      }
      // Over the whole request, as a client sees it: pieces that arrive together would
      // make a rate over the stream alone meaningless.
      const tokens = usage ? usage.completion_tokens : pieces;
      const rate = tokens / Math.max(0.001, (performance.now() - started) / 1000);
      stats.textContent = 'TTFT ' + (first === null ? '–' : Math.round(first - started) + ' ms') + ' · ' +
        tokens + ' tokens · ' + fixed(rate, 1) + ' tokens/s';
    } catch (err) {
      stats.textContent = err.name === 'AbortError' ? 'stopped' : 'Error: ' + explain(err);
    }
  }

  let running = null;

  async function run(event) {
    event.preventDefault();
    if (running) return;
    running = new AbortController();
    $('pg-run').disabled = true;
    $('pg-stop').disabled = false;
    const models = [$('pg-model').value];
    if ($('pg-compare').value) models.push($('pg-compare').value);
    $('pg-out-1').hidden = models.length < 2;
    // Side by side: both at once, so the server batches them together.
    await Promise.all(models.map((m, i) => stream(m, $('pg-out-' + i), running.signal)));
    running = null;
    $('pg-run').disabled = false;
    $('pg-stop').disabled = true;
  }

  // --- Operations --------------------------------------------------------------------

  async function operate(what, call) {
    const result = $('ops-result');
    result.textContent = what + '…';
    try {
      const reply = await call();
      result.textContent = what + ': done' + (reply && reply.message ? ' (' + reply.message + ')' : '');
      loadModels();
    } catch (err) {
      result.textContent = what + ': ' + explain(err);
    }
  }

  function wireOperations() {
    document.querySelectorAll('[data-cleanup]').forEach((button) => {
      button.addEventListener('click', () => {
        const level = button.dataset.cleanup;
        operate('Cleanup (' + level + ')', () => api('POST', '/cleanup-memory', { level }));
      });
    });
    $('register').addEventListener('submit', (e) => {
      e.preventDefault();
      const body = { path: $('reg-path').value };
      if ($('reg-id').value) body.id = $('reg-id').value;
      operate('Register ' + (body.id || body.path), () => api('POST', '/adapters', body));
    });
    $('unregister').addEventListener('submit', (e) => {
      e.preventDefault();
      const id = $('unreg-id').value;
      operate('Unregister ' + id, () => api('DELETE', '/adapters/' + encodeURIComponent(id)));
    });
    $('train').addEventListener('submit', (e) => {
      e.preventDefault();
      const body = { dataset: $('train-dataset').value, steps: numberField('train-steps') };
      if ($('train-id').value) body.id = $('train-id').value;
      operate('Training ' + (body.id || body.dataset), () => api('POST', '/adapters/train', body));
    });
  }

  // --- Key, theme, start -------------------------------------------------------------

  function wireKey() {
    $('key').value = key();
    $('key-form').addEventListener('submit', (e) => {
      e.preventDefault();
      if ($('key').value) sessionStorage.setItem(KEY, $('key').value);
      else sessionStorage.removeItem(KEY);
      loadModels();
    });
    $('key-forget').addEventListener('click', () => {
      sessionStorage.removeItem(KEY);
      $('key').value = '';
    });
  }

  function applyTheme(theme) {
    if (theme === 'auto') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
  }

  function wireTheme() {
    const saved = localStorage.getItem(THEME) || 'auto';
    $('theme').value = saved;
    applyTheme(saved);
    $('theme').addEventListener('change', () => {
      localStorage.setItem(THEME, $('theme').value);
      applyTheme($('theme').value);
      makeCharts();
    });
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', makeCharts);
  }

  function start() {
    wireKey();
    wireTheme();
    wireOperations();
    $('playground').addEventListener('submit', run);
    $('pg-stop').addEventListener('click', () => running && running.abort());
    makeCharts();
    new ResizeObserver(() => {
      for (const [id, chart] of Object.entries(state.charts)) chart.setSize({ width: chartWidth($(id)), height: 180 });
    }).observe(document.querySelector('.charts'));
    loadModels();
    poll();
  }

  start();
})();
