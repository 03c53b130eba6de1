// ebb on-call page. It polls api/jobs every 2 s and updates one card per
// job in place (so a click is never lost to a re-render), computes the
// current rows/s from successive polls, and posts Pause/Resume. Every value
// from the server goes into textContent, never innerHTML: a job's failure
// reason is database text.
'use strict';

(() => {
  const POLL_MS = 2000;
  // A "now" rate over less than a second is mostly noise from the poll
  // jitter; keep the previous figure until the window is long enough.
  const MIN_RATE_WINDOW_MS = 1000;
  const TOKEN_KEY = 'ebb-ui-token';

  let info = { global_pause_key: '', token_required: false, monitoring: '' };
  // job -> {rows, t, now}: the sample the current rate is measured from.
  const samples = new Map();
  let timer = null;

  const $ = (sel, root = document) => root.querySelector(sel);

  function fmtInt(n) {
    return Math.round(n).toLocaleString('en-US');
  }

  function fmtRate(r) {
    if (r === null || r === undefined || !isFinite(r)) return '—';
    return r >= 100 ? fmtInt(r) : r.toFixed(1);
  }

  // Like the CLI's fmtNum (Go's 'g' with 4 digits).
  function fmtNum(v) {
    if (v === null || v === undefined) return '';
    return String(Number(v.toPrecision(4)));
  }

  function fmtDuration(sec) {
    if (sec === null || sec === undefined || sec < 0 || !isFinite(sec)) return 'unknown';
    sec = Math.round(sec);
    const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
    if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
    if (m > 0) return `${m}m ${String(s).padStart(2, '0')}s`;
    return `${s}s`;
  }

  // Poll failures and action failures are shown apart: the next good poll
  // clears the first, but must not hide "the token was refused".
  function showError(msg) {
    const el = $('#error');
    el.textContent = msg;
    el.hidden = false;
  }

  function showActionError(msg) {
    const el = $('#action-error');
    el.textContent = msg;
    el.hidden = false;
  }

  async function errorText(res) {
    try {
      const body = await res.json();
      if (body && body.error) return body.error;
    } catch (_) { /* not JSON: fall back to the status line */ }
    return `${res.status} ${res.statusText}`;
  }

  // post sends a state-changing request. The server wants JSON (a
  // cross-site form cannot send it) and, when it has a token, the token:
  // asked once, kept for this tab only.
  async function post(path, body) {
    const headers = { 'Content-Type': 'application/json', 'Accept': 'application/json' };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers['Authorization'] = 'Bearer ' + token;
    return fetch(path, { method: 'POST', headers, body: JSON.stringify(body || {}), cache: 'no-store' });
  }

  // act sends one action and refreshes the page; it returns the answer's
  // JSON (null when the action failed, which it shows).
  async function act(path, what, body) {
    for (let attempt = 0; attempt < 2; attempt++) {
      let res;
      try {
        res = await post(path, body);
      } catch (e) {
        showActionError(`${what}: ${e.message}`);
        return;
      }
      if (res.status === 401) {
        const token = window.prompt(`This ebb ui needs its token to ${what}. Token:`);
        if (!token) {
          showActionError(`${what}: not done, no token given`);
          return;
        }
        sessionStorage.setItem(TOKEN_KEY, token);
        continue;
      }
      if (!res.ok) {
        showActionError(`${what}: ${await errorText(res)}`);
        return;
      }
      $('#action-error').hidden = true;
      let answer = null;
      try { answer = await res.json(); } catch (_) { /* 204: no body */ }
      await refresh();
      return answer || {};
    }
    sessionStorage.removeItem(TOKEN_KEY);
    showActionError(`${what}: the token was refused`);
  }

  function newCard(name) {
    const card = $('#job-template').content.firstElementChild.cloneNode(true);
    card.dataset.job = name;
    $('.name', card).textContent = name;
    const api = (a) => `api/jobs/${encodeURIComponent(name)}/${a}`;
    for (const btn of card.querySelectorAll('button[data-action]')) {
      btn.dataset.job = name;
      const action = btn.dataset.action;
      const what = { 'pause': 'pause', 'resume': 'resume', 'override-guard': 'override the guard of', 'end-override': 'end the guard override of' }[action];
      btn.addEventListener('click', () => act(api(action), `${what} ${name}`));
    }
    // The knobs enqueuer set has; an empty field is left as it is.
    $('form.knobs', card).addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = ev.target;
      const body = {};
      for (const [k, num] of [['rate', true], ['max_workers', true], ['batch_max', true], ['sleep', false]]) {
        const v = f.elements[k].value.trim();
        if (v !== '') body[k] = num ? Number(v) : v;
      }
      if (Object.keys(body).length === 0) { showActionError(`set ${name}: fill in at least one limit`); return; }
      if (await act(api('set'), `set limits of ${name}`, body)) f.reset();
    });
    $('button[data-knob="clear"]', card).addEventListener('click', () => act(api('set'), `clear the overrides of ${name}`, { clear: true }));
    $('button[data-knob="verify"]', card).addEventListener('click', async () => {
      if (await act(api('verify'), `verify ${name}`)) {
        $('.job-note', card).textContent = 'verify started: its verdict shows here when it finishes';
      }
    });
    $('button[data-knob="cleanup"]', card).addEventListener('click', async () => {
      if (!window.confirm(`Clean up ${name}? Its Redis keys and asynq tasks go; the table is not touched.`)) return;
      const r = await act(api('cleanup'), `clean up ${name}`);
      if (r) $('#cleanup-note').textContent = r.cleanup || `${name} cleaned up`;
    });
    return card;
  }

  function renderSignals(card, g) {
    const table = $('.signals', card);
    const body = $('tbody', table);
    body.replaceChildren();
    const signals = (g && g.signals) || [];
    table.hidden = signals.length === 0;
    for (const s of signals) {
      const tr = document.createElement('tr');
      tr.dataset.rule = s.rule;
      if (s.action) tr.className = 'acting-' + s.action;
      const base = g.baseline && s.rule in g.baseline ? fmtNum(g.baseline[s.rule]) : '';
      const value = s.value !== undefined && s.value !== null ? fmtNum(s.value) : 'no reading: ' + (s.error || '');
      const cells = [
        [s.rule === s.signal || !s.signal ? s.rule : `${s.rule} (${s.signal})`, 'rule'],
        [value, 'value'],
        [fmtNum(s.slow_above), 'slow'],
        [fmtNum(s.pause_above), 'pause'],
        [fmtNum(s.clear_below), 'clear'],
        [base, 'baseline'],
        [(s.action || '') + (s.note ? ` (${s.note})` : ''), 'action'],
      ];
      for (const [text, cls] of cells) {
        const td = document.createElement('td');
        td.className = cls;
        td.textContent = text;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  function renderGuard(card, g) {
    const box = $('.guard', card);
    const reasons = $('.guard-reasons', card);
    reasons.replaceChildren();
    if (!g) {
      box.dataset.guard = 'off';
      $('.guard-state', card).textContent = 'off';
      $('.guard-detail', card).textContent = '(no rules, no schedule)';
      renderSignals(card, null);
      return;
    }
    box.dataset.guard = g.stale ? 'stale' : g.state;
    $('.guard-state', card).textContent = g.stale ? `${g.state}, stale` : g.state;
    const detail = [`rate ×${fmtNum(g.rate_factor)}`];
    if (g.window) detail.push(`window ${g.window}`);
    if (g.leader) detail.push(`leader ${g.leader}`);
    if (g.at) detail.push(`checked ${fmtDuration((Date.now() - Date.parse(g.at)) / 1000)} ago`);
    $('.guard-detail', card).textContent = detail.join(' · ');
    for (const r of g.reasons || []) {
      const li = document.createElement('li');
      li.textContent = r;
      reasons.appendChild(li);
    }
    renderSignals(card, g);
  }

  // The guard history of each job is read every historyEvery ms, not every
  // poll: it changes at most once a guard check, and each read lists it.
  const historyEvery = 10000;
  const historyRead = new Map();

  async function refreshHistory(card, job, now) {
    if (now - (historyRead.get(job) || 0) < historyEvery) return;
    historyRead.set(job, now);
    try {
      const res = await fetch(`api/jobs/${encodeURIComponent(job)}/history`, { cache: 'no-store', headers: { 'Accept': 'application/json' } });
      if (!res.ok) throw new Error(await errorText(res));
      renderHistory(card, await res.json());
      const sres = await fetch(`api/jobs/${encodeURIComponent(job)}/series`, { cache: 'no-store', headers: { 'Accept': 'application/json' } });
      if (!sres.ok) throw new Error(await errorText(sres));
      renderSeries(card, await sres.json());
    } catch (e) {
      historyRead.delete(job);
      showError(`cannot read the guard history of ${job}: ${e.message}`);
    }
  }

  // rateOf is what a change let through: rate: auto's rows/s, else the
  // factor the job's rate was multiplied by.
  function rateOf(c) { return c.rate ? c.rate : c.factor; }
  function fmtRateOf(c) { return c.rate ? `${fmtNum(c.rate)} rows/s` : `×${fmtNum(c.factor)}`; }

  // renderSeries charts the fleet's rows/s over the job's life, as the
  // guard's leader measured it at its checks, with slowed spans amber and
  // paused ones red; each point's title holds its signals.
  function renderSeries(card, points) {
    const box = $('.series', card);
    box.hidden = points.length < 2;
    if (points.length < 2) return;
    const ns = 'http://www.w3.org/2000/svg';
    const svg = $('.series-chart', card);
    svg.replaceChildren();
    const t0 = Date.parse(points[0].at);
    const t1 = Math.max(Date.parse(points[points.length - 1].at), t0 + 1000);
    const top = Math.max(...points.map((p) => p.rows_per_sec), 1) * 1.1;
    const x = (t) => ((t - t0) / (t1 - t0)) * 600;
    const y = (v) => 90 - (v / top) * 86;
    let path = '';
    points.forEach((p, i) => {
      const at = Date.parse(p.at);
      path += `${i === 0 ? 'M' : 'L'}${x(at).toFixed(1)},${y(p.rows_per_sec).toFixed(1)} `;
      if ((p.state === 'slow' || p.state === 'pause') && i + 1 < points.length) {
        const rect = document.createElementNS(ns, 'rect');
        rect.setAttribute('class', `span-${p.state}`);
        rect.setAttribute('x', x(at).toFixed(1));
        rect.setAttribute('width', Math.max(1, x(Date.parse(points[i + 1].at)) - x(at)).toFixed(1));
        rect.setAttribute('y', '0');
        rect.setAttribute('height', '90');
        const title = document.createElementNS(ns, 'title');
        title.textContent = `${p.state} at ${new Date(at).toLocaleTimeString()}: ` +
          Object.entries(p.signals || {}).map(([k, v]) => `${k} ${fmtNum(v)}`).join(', ');
        rect.appendChild(title);
        svg.appendChild(rect);
      }
    });
    // Each rule's signal as a thin line, scaled to its own peak: its shape
    // next to the rate's, the values in its title.
    const names = [...new Set(points.flatMap((p) => Object.keys(p.signals || {})))].sort();
    const peaks = [];
    for (const name of names) {
      const vals = points.map((p) => (p.signals || {})[name]);
      const peak = Math.max(...vals.filter((v) => v != null), 1e-9);
      let d = '';
      points.forEach((p, i) => {
        const v = vals[i];
        if (v == null) return;
        d += `${d === '' ? 'M' : 'L'}${x(Date.parse(p.at)).toFixed(1)},${(90 - (v / peak) * 86).toFixed(1)} `;
      });
      const sig = document.createElementNS(ns, 'path');
      sig.setAttribute('class', 'signal');
      sig.dataset.signal = name;
      sig.setAttribute('d', d);
      const title = document.createElementNS(ns, 'title');
      title.textContent = `${name}: up to ${fmtNum(peak)}`;
      sig.appendChild(title);
      svg.appendChild(sig);
      peaks.push(`${name} up to ${fmtNum(peak)}`);
    }
    const line = document.createElementNS(ns, 'path');
    line.setAttribute('class', 'line');
    line.setAttribute('d', path);
    svg.appendChild(line);
    const last = points[points.length - 1];
    $('.series-scale', card).textContent =
      `0 to ${fmtNum(Math.round(top))} rows/s, ${new Date(t0).toLocaleTimeString()} to ${new Date(t1).toLocaleTimeString()}; last ${fmtRate(last.rows_per_sec)} rows/s` +
      (peaks.length ? `; signals (dashed, each scaled to its peak): ${peaks.join(', ')}` : '');
  }

  function renderHistory(card, changes) {
    const box = $('.history', card);
    box.hidden = changes.length === 0;
    if (changes.length === 0) return;
    const ns = 'http://www.w3.org/2000/svg';
    const svg = $('.history-chart', card);
    svg.replaceChildren();
    const oldest = changes.slice().reverse(); // the API answers newest first
    const t0 = Date.parse(oldest[0].at);
    const t1 = Math.max(Date.now(), t0 + 1000);
    const top = Math.max(...oldest.map(rateOf), 1e-9) * 1.1;
    const x = (t) => ((t - t0) / (t1 - t0)) * 600;
    const y = (v) => 90 - (v / top) * 86;
    let path = '';
    oldest.forEach((c, i) => {
      const from = Date.parse(c.at);
      const to = i + 1 < oldest.length ? Date.parse(oldest[i + 1].at) : t1;
      path += `${i === 0 ? 'M' : 'L'}${x(from).toFixed(1)},${y(rateOf(c)).toFixed(1)} L${x(to).toFixed(1)},${y(rateOf(c)).toFixed(1)} `;
      if (c.state === 'slow' || c.state === 'pause') {
        const rect = document.createElementNS(ns, 'rect');
        rect.setAttribute('class', `span-${c.state}`);
        rect.setAttribute('x', x(from).toFixed(1));
        rect.setAttribute('width', Math.max(x(to) - x(from), 1).toFixed(1));
        rect.setAttribute('y', '0');
        rect.setAttribute('height', '90');
        const title = document.createElementNS(ns, 'title');
        title.textContent = `${new Date(from).toLocaleTimeString()}: ${c.state} — ${(c.reasons || []).join('; ')}`;
        rect.appendChild(title);
        svg.appendChild(rect);
      }
    });
    const line = document.createElementNS(ns, 'path');
    line.setAttribute('class', 'line');
    line.setAttribute('d', path);
    svg.appendChild(line);
    const peak = oldest.reduce((a, c) => (rateOf(c) > rateOf(a) ? c : a));
    $('.history-scale', card).textContent = `top of the chart: ${fmtRateOf(peak)}; from ${new Date(t0).toLocaleTimeString()} to now`;

    const body = $('.history-table tbody', card);
    body.replaceChildren();
    for (const c of changes.slice(0, 8)) {
      const tr = document.createElement('tr');
      tr.className = `to-${c.state}`;
      const change = c.from === c.state ? c.state : `${c.from || 'start'} → ${c.state}`;
      const why = c.rate_why || (c.reasons || []).join('; ');
      for (const [text, cls] of [[new Date(Date.parse(c.at)).toLocaleTimeString(), 'when'], [change, 'change'], [fmtRateOf(c), 'rate'], [why, 'why']]) {
        const td = document.createElement('td');
        td.className = cls;
        td.textContent = text;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  function renderCard(card, s, now) {
    card.dataset.state = s.state;
    card.className = `job state-${s.state}`;
    if (s.guard && !s.guard.stale && s.guard.state === 'slow') card.classList.add('guard-slow');
    if (s.guard && s.guard.stale) card.classList.add('guard-stale');

    $('.state', card).textContent = s.state;
    $('.queue', card).textContent = `queue ${s.queue}`;
    // A switch left on does not matter to a job that has finished.
    const reason = $('.pause-reason', card);
    const held = s.pause_reason && s.state !== 'done';
    reason.hidden = !held;
    reason.textContent = held ? `Paused: ${s.pause_reason}` : '';
    renderDone(card, s);
    // The last verify's verdict, once one has run (from here or the CLI).
    if (s.verify && card.dataset.verifyAt !== s.verify.at) {
      card.dataset.verifyAt = s.verify.at;
      $('.job-note', card).textContent = s.verify.ok
        ? `last verify OK at ${new Date(s.verify.at).toLocaleString()}`
        : `last verify FOUND PROBLEMS at ${new Date(s.verify.at).toLocaleString()}: ${(s.verify.problems || []).join('; ')}`;
    }

    const pct = Math.max(0, Math.min(1, s.progress || 0)) * 100;
    $('.fill', card).style.width = pct.toFixed(1) + '%';
    $('.pct', card).textContent = pct.toFixed(1) + '%';
    $('.bar', card).setAttribute('aria-valuenow', pct.toFixed(1));

    $('.rows', card).textContent = s.estimated_rows > 0
      ? `${fmtInt(s.rows_done)} / ~${fmtInt(s.estimated_rows)} estimated`
      : `${fmtInt(s.rows_done)} (no estimate)`;
    $('.ranges', card).textContent =
      `${fmtInt(s.ranges_done)} / ${fmtInt(s.ranges_total)} done, ${fmtInt(s.ranges_failed)} failed`;

    // The current rate: rows over the time between two polls.
    let smp = samples.get(s.job);
    if (!smp) {
      smp = { rows: s.rows_done, t: now, now: null };
      samples.set(s.job, smp);
    } else if (now - smp.t >= MIN_RATE_WINDOW_MS) {
      smp.now = Math.max(0, (s.rows_done - smp.rows) * 1000 / (now - smp.t));
      smp.rows = s.rows_done;
      smp.t = now;
    }
    // The fleet's own rate, as the guard's leader measured it over its
    // last check; the difference of two polls only where there is none
    // (a job with no guard), so a page just opened does not show 0.
    const now_ = s.rows_per_sec_now != null ? s.rows_per_sec_now : smp.now;
    $('.rate-now', card).textContent = s.state === 'done' ? '0' : fmtRate(now_);
    $('.rate-avg', card).textContent = fmtRate(s.avg_rows_per_sec);
    $('.eta', card).textContent = s.eta_seconds === 0 ? 'done' : fmtDuration(s.eta_seconds);
    $('.pace', card).textContent = s.expected_rows > 0
      ? `${fmtInt(s.expected_rows)} rows expected by now at the rate limit`
      : s.auto ? 'rate: auto sets the pace' : 'no rate limit';

    const limits = [
      s.auto ? `rate auto, now ${fmtNum(s.rate)} rows/s (keeps ${s.auto.objective.signal} <= ${s.auto.objective.max}; ${s.auto.why})`
        : s.rate > 0 ? `rate ${fmtNum(s.rate)} rows/s` : 'rate unlimited',
      s.max_workers > 0 ? `max workers ${s.max_workers}` : 'max workers unlimited',
    ];
    if (s.overrides) {
      const kv = Object.keys(s.overrides).sort().map((k) => `${k}=${s.overrides[k]}`);
      limits.push(`overrides (enqueuer set): ${kv.join(' ')}`);
    }
    $('.limits', card).textContent = limits.join(', ');

    renderGuard(card, s.guard);
    renderOverride(card, s);

    renderAudit(card, s.audit || []);

    const failures = $('.failures', card);
    failures.replaceChildren();
    for (const f of s.failures || []) {
      const li = document.createElement('li');
      li.textContent = `range ${f.range} failed: ${f.reason}`;
      failures.appendChild(li);
    }
    if ((s.lost || []).length > 0) {
      const li = document.createElement('li');
      li.className = 'lost';
      li.textContent = `ranges ${s.lost.join(', ')} lost: asynq holds no task for them (deleted, or lost with Redis's data); run enqueuer start -job FILE again`;
      failures.appendChild(li);
    }
  }

  // renderDone shows a finished job as finished: its duration, time
  // paused, average rate and the last verify, with no Pause or Resume.
  function renderDone(card, s) {
    const done = s.state === 'done';
    for (const a of ['pause', 'resume']) $(`button[data-action="${a}"]`, card).hidden = done;
    const line = $('.done-summary', card);
    line.hidden = !done;
    if (!done) return;
    const took = s.finished ? (new Date(s.finished) - new Date(s.created)) / 1000 : null;
    const parts = [];
    if (took != null) parts.push(`done in ${fmtDuration(took)}` + (s.paused_seconds > 0 ? ` (${fmtDuration(s.paused_seconds)} of it paused)` : ''));
    parts.push(`${fmtRate(s.avg_rows_per_sec)} rows/s on average`);
    const v = s.verify;
    if (!v) parts.push(`not verified yet: run enqueuer verify ${s.job}`);
    else if (v.ok) parts.push(`verify${v.sample ? ' (sample)' : ''} OK at ${new Date(v.at).toLocaleString()}`);
    else parts.push(`verify FOUND PROBLEMS at ${new Date(v.at).toLocaleString()}: ${(v.problems || []).join('; ')}`);
    line.textContent = parts.join('; ');
    line.dataset.verify = v ? (v.ok ? 'ok' : 'problems') : 'none';
  }

  // renderOverride offers to override a guard that holds the job back,
  // and shows an override in force with who set it and until when.
  function renderOverride(card, s) {
    const o = s.guard_override;
    const held = s.guard && (s.guard.state === 'pause' || s.guard.state === 'slow');
    const done = s.state === 'done';
    $('button[data-action="override-guard"]', card).hidden = done || !!o || !held;
    $('button[data-action="end-override"]', card).hidden = done || !o;
    const line = $('.override', card);
    line.hidden = !o;
    if (o) line.textContent = `Guard overridden by ${o.by} until ${new Date(o.until).toLocaleString()}: the fleet ignores its rules until then.`;
  }

  // renderAudit lists who paused, resumed or changed a limit, and when.
  function renderAudit(card, entries) {
    const box = $('.audit', card);
    box.hidden = entries.length === 0;
    const body = $('.audit-table tbody', card);
    body.replaceChildren();
    for (const a of entries) {
      const tr = document.createElement('tr');
      for (const text of [new Date(a.at).toLocaleString(), a.action, a.who, a.detail || '']) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  function renderFleet(jobs) {
    const fleet = $('#fleet');
    // The reason is "<key> is set", plus who paused and when when ebb set it.
    const prefix = `${info.global_pause_key} is set`;
    const by = info.global_pause_key &&
      jobs.find((s) => s.pause_reason && s.pause_reason.startsWith(prefix));
    const held = Boolean(by);
    let state;
    if (jobs.length === 0) state = 'no jobs';
    else if (held) state = `paused (${by.pause_reason})`;
    else state = 'not paused globally';
    fleet.dataset.state = jobs.length === 0 ? 'unknown' : (held ? 'paused' : 'running');
    $('#fleet-state').textContent = state;
  }

  function render(jobs) {
    const main = $('#jobs');
    const now = Date.now();
    const seen = new Set();
    jobs.forEach((s, i) => {
      seen.add(s.job);
      let card = main.querySelector(`section.job[data-job="${CSS.escape(s.job)}"]`);
      if (!card) card = newCard(s.job);
      renderCard(card, s, now);
      refreshHistory(card, s.job, now);
      // Keep the server's (name) order, moving a card only when it is out
      // of place: a moved node loses focus and a half-done click.
      const at = main.children[i];
      if (at !== card) main.insertBefore(card, at || null);
    });
    for (const card of Array.from(main.children)) {
      if (!seen.has(card.dataset.job)) {
        samples.delete(card.dataset.job);
        historyRead.delete(card.dataset.job);
        card.remove();
      }
    }
    $('#empty').hidden = jobs.length > 0;
    renderFleet(jobs);
    $('#updated').textContent = `updated ${new Date(now).toLocaleTimeString()}`;
  }

  async function refresh() {
    try {
      const res = await fetch('api/jobs', { cache: 'no-store', headers: { 'Accept': 'application/json' } });
      if (!res.ok) throw new Error(await errorText(res));
      render(await res.json());
      document.body.dataset.loaded = 'true';
      $('#error').hidden = true;
    } catch (e) {
      showError(`cannot read jobs (the page keeps trying): ${e.message}`);
    }
  }

  // tick polls, then schedules the next poll; a tick asked for while one
  // runs (the tab became visible) is dropped, so polls never pile up.
  let polling = false;
  async function tick() {
    if (polling) return;
    polling = true;
    clearTimeout(timer);
    try {
      await refresh();
    } finally {
      polling = false;
      timer = setTimeout(tick, POLL_MS);
    }
  }

  async function start() {
    try {
      const res = await fetch('api/info', { cache: 'no-store' });
      if (res.ok) info = await res.json();
    } catch (_) { /* refresh reports the outage */ }
    if (info.monitoring) $('#monitoring-link').hidden = false;
    $('#global-pause').addEventListener('click', () => act('api/pause', 'pause every job'));
    $('#global-resume').addEventListener('click', () => act('api/resume', 'resume every job'));
    document.addEventListener('visibilitychange', () => {
      // A hidden tab catches up at once when it comes back.
      if (!document.hidden) tick();
    });
    tick();
  }

  start();
})();
