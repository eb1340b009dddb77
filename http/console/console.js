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

  function fillTable(table, items, render, empty) {
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const item of items) {
      const row = document.createElement('tr');
      render(row, item);
      body.appendChild(row);
    }
    if (items.length === 0) {
      const row = document.createElement('tr');
      const td = cell(row, empty, 'muted');
      td.colSpan = table.tHead.rows[0].cells.length;
      body.appendChild(row);
    }
  }

  // --- One node's live view ---------------------------------------------------------

  const color = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  function axis() {
    return { stroke: color('--muted'), grid: { stroke: color('--line'), width: 1 }, ticks: { stroke: color('--line'), width: 1 } };
  }

  const chartWidth = (figure) => Math.max(240, figure.clientWidth - 20);

  const chartSpecs = {
    'chart-memory': [['RSS', 'rss', '--s1'], ['device allocated', 'allocated', '--s2'], ['device reserved', 'reserved', '--s3']],
    'chart-batch': [['waiting', 'waiting', '--s2'], ['running', 'running', '--s1']],
    'chart-tokens': [['tokens/s', 'tokens', '--s1']],
    'chart-latency': [['TTFT p50', 'ttft50', '--s1'], ['TTFT p99', 'ttft99', '--s2'], ['ITL p50', 'itl50', '--s3'], ['ITL p99', 'itl99', '--s4']],
  };

  // The history of one node, as the feed brought it, and the elements that show it.
  class View {
    constructor(node) {
      this.node = node;  // '' for the node serving the page
      this.root = $('view-template').content.firstElementChild.cloneNode(true);
      this.root.dataset.node = node;
      $('views').appendChild(this.root);
      this.series = {
        t: [], rss: [], allocated: [], reserved: [], waiting: [], running: [],
        tokens: [], flushes: [], ttft50: [], ttft99: [], itl50: [], itl99: [],
      };
      this.events = [];
      this.next = 0;
      this.charts = {};
      this.loss = null;
      this.lossJob = null;
      this.feed = null;
      this.makeCharts();
    }

    find(cls) { return this.root.querySelector('.' + cls); }

    // Flushes and cleanups as vertical lines: a second with after-request flushes faint and
    // dashed, a cleanup someone asked for (or an idle unload) solid.
    markers() {
      const view = this;
      const line = (u, seconds, routine) => {
        const { left, top, width, height } = u.bbox;
        const x = u.valToPos(seconds, 'x', true);
        if (x < left || x > left + width) return;
        const ctx = u.ctx;
        ctx.strokeStyle = color(routine ? '--marker-soft' : '--marker');
        ctx.lineWidth = routine ? 1 : 2;
        ctx.setLineDash(routine ? [2, 3] : []);
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, top + height);
        ctx.stroke();
      };
      return {
        hooks: {
          draw: [(u) => {
            u.ctx.save();
            const s = view.series;
            for (let i = 0; i < s.t.length; ++i) if (s.flushes[i] > 0) line(u, s.t[i], true);
            for (const e of view.events) line(u, e.t_ms / 1000, false);
            u.ctx.restore();
          }],
        },
      };
    }

    chartData(cls) {
      return [this.series.t].concat(chartSpecs[cls].map(([, name]) => this.series[name]));
    }

    makeCharts() {
      for (const chart of Object.values(this.charts)) chart.destroy();
      this.charts = {};
      for (const [cls, lines] of Object.entries(chartSpecs)) {
        const figure = this.find(cls);
        this.charts[cls] = new uPlot({
          width: chartWidth(figure), height: 180,
          scales: { x: { time: true } },
          series: [{}].concat(lines.map(([label, , stroke]) => ({
            label, stroke: color(stroke), width: 1.5, value: (u, v) => fixed(v, 1),
          }))),
          axes: [axis(), Object.assign(axis(), { size: 56 })],
          plugins: cls === 'chart-memory' ? [this.markers()] : [],
        }, this.chartData(cls), figure);
      }
      if (this.loss) this.loss.destroy();
      this.loss = null;
      this.lossJob = null;
      if (this.feed) this.drawLoss(this.feed);
    }

    resize() {
      for (const [cls, chart] of Object.entries(this.charts)) chart.setSize({ width: chartWidth(this.find(cls)), height: 180 });
    }

    remove() {
      for (const chart of Object.values(this.charts)) chart.destroy();
      if (this.loss) this.loss.destroy();
      this.root.remove();
    }

    reset() {
      for (const name of Object.keys(this.series)) this.series[name].length = 0;
      this.events.length = 0;
      this.next = 0;
    }

    // Takes a feed's new samples and events; false when the node restarted (its numbering
    // did too), after which the next poll starts over.
    take(feed) {
      if (feed.next < this.next) {
        this.reset();
        return false;
      }
      const s = this.series;
      const at = Object.fromEntries(feed.fields.map((name, i) => [name, i]));
      const ms = (v) => (v === null ? null : v * 1000);
      for (const row of feed.samples) {
        s.t.push(row[at.t_ms] / 1000);
        s.rss.push(mib(row[at.rss_bytes]));
        s.allocated.push(row[at.device_allocated_mb]);
        s.reserved.push(row[at.device_reserved_mb]);
        s.waiting.push(row[at.waiting]);
        s.running.push(row[at.running]);
        s.tokens.push(row[at.tokens_per_s]);
        s.flushes.push(row[at.flushes]);
        s.ttft50.push(ms(row[at.ttft_p50_s]));
        s.ttft99.push(ms(row[at.ttft_p99_s]));
        s.itl50.push(ms(row[at.itl_p50_s]));
        s.itl99.push(ms(row[at.itl_p99_s]));
      }
      const extra = s.t.length - KEEP;
      if (extra > 0) for (const name of Object.keys(s)) s[name].splice(0, extra);
      this.events.push(...feed.events);
      const first = s.t.length ? s.t[0] * 1000 : 0;
      this.events = this.events.filter((e) => e.t_ms >= first).slice(-KEEP);
      this.next = feed.next;
      this.feed = feed;
      this.show(feed);
      return true;
    }

    show(feed) {
      const s = this.series;
      for (const [cls, chart] of Object.entries(this.charts)) {
        chart.setData(this.chartData(cls));
        this.find(cls).dataset.points = String(s.t.length);
      }
      const memory = this.find('chart-memory');
      memory.dataset.flushMarkers = String(s.flushes.filter((n) => n > 0).length);
      memory.dataset.cleanupMarkers = String(this.events.length);
      fillTable(this.find('resident'), feed.resident, (row, r) => {
        cell(row, r.kind);
        cell(row, shortPath(r.path)).title = r.path;
        cell(row, r.tier);
        cell(row, r.weights || '');
        cell(row, fixed(mib(r.bytes), 1), 'num');
        cell(row, String(r.requests), 'num');
        cell(row, ago(r.last_used_ms));
      }, 'nothing loaded yet');
      fillTable(this.find('adapter-load'), feed.adapters, (row, a) => {
        cell(row, a.adapter || '(base model)');
        cell(row, String(a.waiting), 'num');
        cell(row, String(a.running), 'num');
      }, 'no requests in flight');
      fillTable(this.find('events'), this.events.slice(-20).reverse(), (row, e) => {
        cell(row, clock(e.t_ms));
        cell(row, e.reason.replace('_', ' '));
        cell(row, e.level);
        cell(row, fixed(mib(e.rss_after_bytes), 1), 'num');
      }, 'none in the last 15 minutes');
      fillTable(this.find('jobs'), feed.jobs, (row, j) => {
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
      this.drawLoss(feed);
      const last = s.t.length - 1;
      this.find('now').textContent = last < 0 ? '' :
        'Now: RSS ' + fixed(s.rss[last], 0) + ' MiB · device ' + fixed(s.allocated[last], 0) +
        ' MiB allocated, ' + fixed(s.reserved[last], 0) + ' MiB reserved · ' + s.waiting[last] +
        ' waiting · ' + s.running[last] + ' running · ' + fixed(s.tokens[last], 1) + ' tokens/s';
    }

    // The loss of the newest job that has one.
    drawLoss(feed) {
      const figure = this.find('chart-loss');
      const curve = feed.loss_curves.length ? feed.loss_curves[feed.loss_curves.length - 1] : null;
      figure.hidden = !curve;
      if (!curve) return;
      const job = feed.jobs.find((j) => j.id === curve.job_id);
      this.find('loss-job').textContent = '— ' + ((job && job.adapter_id) || curve.job_id);
      const data = [curve.steps, curve.losses];
      if (this.loss && this.lossJob === curve.job_id) {
        this.loss.setData(data);
      } else {
        if (this.loss) this.loss.destroy();
        this.lossJob = curve.job_id;
        this.loss = new uPlot({
          width: chartWidth(figure), height: 150, scales: { x: { time: false } },
          series: [{ label: 'step' }, { label: 'loss', stroke: color('--s1'), width: 1.5 }],
          axes: [axis(), Object.assign(axis(), { size: 56 })],
        }, data, figure);
      }
      figure.dataset.points = String(curve.steps.length);
    }

    // A router's worker: its state in the title, and its own feed through the router.
    async pollWorker(status) {
      const title = this.find('view-title');
      title.hidden = false;
      title.textContent = (status.name || status.address) + ' — ' + status.state +
        (status.name ? ' (' + status.address + ')' : '');
      const error = this.find('view-error');
      if (status.state !== 'up') {
        error.textContent = status.error || 'not up';
        error.hidden = false;
        return;
      }
      try {
        this.take(await api('GET', '/console/feed?node=' + encodeURIComponent(status.name || status.address) + '&since=' + this.next));
        error.hidden = true;
      } catch (err) {
        error.textContent = explain(err);
        error.hidden = false;
      }
    }
  }

  // --- The feed ----------------------------------------------------------------------

  const views = new Map();  // node -> View

  function viewFor(node) {
    if (!views.has(node)) views.set(node, new View(node));
    return views.get(node);
  }

  // Through a router: one view per worker, in the router's order; views of workers that
  // left go.
  async function pollWorkers(nodes) {
    const names = nodes.map((n) => n.name || n.address);
    for (const [node, view] of views)
      if (!names.includes(node)) {
        view.remove();
        views.delete(node);
      }
    await Promise.all(nodes.map((n) => viewFor(n.name || n.address).pollWorker(n)));
  }

  let period = 1000;
  let failures = 0;  // in a row: the wait grows while the server cannot be reached

  async function poll() {
    try {
      const self = views.get('');
      const feed = await api('GET', '/console/feed?since=' + (self ? self.next : 0));
      period = feed.period_ms || 1000;
      if (feed.role === 'router') {
        await pollWorkers(feed.nodes);
        $('status').textContent = 'router · ' + feed.nodes.filter((n) => n.state === 'up').length + ' of ' +
          feed.nodes.length + ' workers up';
      } else {
        viewFor('').take(feed);
        $('status').textContent = feed.role + ' node · ' + viewFor('').series.t.length + ' s of history';
      }
      $('feed-error').hidden = true;
      failures = 0;
    } catch (err) {
      $('feed-error').textContent = 'Live view: ' + explain(err);
      $('feed-error').hidden = false;
      $('status').textContent = 'not receiving';
      failures = Math.min(failures + 1, 5);
    }
    // A hidden tab asks less often; nothing is lost, the next poll brings what it missed.
    setTimeout(poll, (document.hidden ? 5 : 1) * period * 2 ** failures);
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

  // uPlot draws with the colours it was given: new ones for a new theme.
  function remakeCharts() {
    for (const view of views.values()) view.makeCharts();
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
      remakeCharts();
    });
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', remakeCharts);
  }

  function start() {
    wireKey();
    wireTheme();
    wireOperations();
    $('playground').addEventListener('submit', run);
    $('pg-stop').addEventListener('click', () => running && running.abort());
    new ResizeObserver(() => {
      for (const view of views.values()) view.resize();
    }).observe($('views'));
    loadModels();
    poll();
  }

  start();
})();
