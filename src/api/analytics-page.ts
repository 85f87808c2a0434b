import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Router } from '../http/router.ts';

/** ECharts' browser build, served from node_modules like the player's assets (nothing is bundled or committed). */
const assets: Record<string, { path: string; type: string }> = {
  'echarts.min.js': {
    path: createRequire(import.meta.url).resolve('echarts/dist/echarts.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
};

/**
 * `/analytics` (the dashboard page) and `/analytics/assets/*` on `router`. Like the player, the page is public and its
 * data needs an API key: it reads the analytics API of the key's projects (docs/analytics.md).
 */
export function addAnalyticsPageRoutes(router: Router): Router {
  const cache = new Map<string, Buffer>();
  return router
    .on('GET', '/analytics', ({ res }) => {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-cache',
        ...analyticsSecurityHeaders,
      });
      res.end(analyticsPageHtml);
    })
    .on('GET', '/analytics/assets/:file', async ({ res, params }) => {
      const asset = assets[params.file!];
      if (!asset) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('no such asset');
        return;
      }
      let bytes = cache.get(asset.path);
      if (!bytes) {
        bytes = await readFile(asset.path);
        cache.set(asset.path, bytes);
      }
      res.writeHead(200, {
        'content-type': asset.type,
        'content-length': bytes.length,
        'cache-control': 'public, max-age=3600',
        'x-content-type-options': 'nosniff',
        'cross-origin-resource-policy': 'same-origin',
      });
      res.end(bytes);
    });
}

// Plain browser JavaScript, like the player's. Everything from the API is set as text (textContent, attributes,
// CSSOM), never as HTML: item ids, actions and session ids are whatever clients sent. Chart labels and tooltips are
// drawn on the canvas (tooltips in ECharts' richText mode, not its HTML tooltips). `#key=...&team=...` moves the key to
// sessionStorage (under the player's name for it, so a replay opened from a funnel finds it) and out of the address
// bar. The script is a constant of its own so that the Content-Security-Policy allows exactly it, by hash.
const analyticsScript = `
(function () {
  'use strict';
  // Trusted Types are enforced (require-trusted-types-for): ECharts empties its containers with innerHTML = '', and
  // this policy lets that through and refuses any other string on its way to an HTML sink.
  if (window.trustedTypes && window.trustedTypes.createPolicy) {
    window.trustedTypes.createPolicy('default', {
      createHTML: function (html) {
        if (html === '') return '';
        throw new TypeError('HTML from strings is refused on this page');
      },
    });
  }
  var HOUR = 3600000, DAY = 86400000;
  var NUMBER = new Intl.NumberFormat('en-US');
  var hash = new URLSearchParams(location.hash.slice(1));
  var state = { key: hash.get('key') || sessionStorage.getItem('replay-api-key'), team: hash.get('team'), charts: {},
    realtimeTimer: null, realtimeBusy: false, started: false };
  if (hash.get('key')) {
    sessionStorage.setItem('replay-api-key', hash.get('key'));
    hash.delete('key');
    history.replaceState(null, '', location.pathname + (hash.toString() ? '#' + hash : ''));
  }
  // The last answer of each panel and the charts, for whoever inspects the page (tests do).
  window.analytics = { answers: {}, charts: state.charts, realtimeRefreshes: 0 };

  function $(id) { return document.getElementById(id); }
  function el(tag, text, className) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }
  function iso(ms) { return new Date(ms).toISOString(); }
  function count(v) { return v === null || v === undefined ? '\\u2014' : NUMBER.format(v); }
  function percent(v, digits) { return v === null || v === undefined ? '\\u2014' : (v * 100).toFixed(digits) + ' %'; }

  // An overloaded API (503 with Retry-After) is asked again a few times, after the wait it names.
  function api(path, attempt) {
    attempt = attempt || 0;
    return fetch(path, { headers: { authorization: 'Bearer ' + state.key } }).then(function (response) {
      if (response.ok) return response.json();
      var retryAfter = Number(response.headers.get('retry-after'));
      if (response.status === 503 && retryAfter > 0 && attempt < 4) {
        return new Promise(function (resolve) { setTimeout(resolve, Math.min(retryAfter, 10) * 1000); })
          .then(function () { return api(path, attempt + 1); });
      }
      return response.json().catch(function () { return {}; }).then(function (body) {
        throw new Error((body.code || 'http_' + response.status) + ': ' + (body.detail || response.statusText));
      });
    });
  }
  function analyticsPath(route, params) {
    var query = new URLSearchParams();
    Object.keys(params).forEach(function (name) {
      if (params[name] !== undefined && params[name] !== null && params[name] !== '') query.set(name, params[name]);
    });
    return '/api/projects/' + encodeURIComponent(state.team) + '/analytics/' + route + '?' + query;
  }

  // The page's ranges: the last N days up to the end of the current hour (the hourly roll-up's routes, and the raw
  // ones) or of the current UTC day (the daily ones).
  function ranges() {
    var days = Number($('range').value), now = Date.now();
    var hourEnd = Math.floor(now / HOUR) * HOUR + HOUR, dayEnd = Math.floor(now / DAY) * DAY + DAY;
    return {
      days: days,
      hourly: { date_from: iso(hourEnd - days * DAY), date_to: iso(hourEnd) },
      daily: { date_from: iso(dayEnd - days * DAY), date_to: iso(dayEnd) },
    };
  }
  function scenario() { var s = $('scenario').value.trim(); return s === '' ? undefined : s; }

  // A panel: its section's data-state, its status line, the query it asked (data-query) and its last answer. Only the
  // latest request of a panel renders (an earlier one may answer last after a change of project or range).
  var requests = {};
  function panel(id, route, params, render) {
    var section = $(id), path = analyticsPath(route, params), request = (requests[id] || 0) + 1;
    requests[id] = request;
    section.dataset.state = 'loading';
    section.dataset.query = path.slice(path.indexOf('?') + 1);
    section.querySelector('.status').textContent = 'Loading...';
    section.querySelector('.status').classList.remove('error');
    return api(path).then(function (answer) {
      if (requests[id] !== request) return;
      window.analytics.answers[id] = answer;
      section.querySelector('.status').textContent = '';
      render(answer);
      section.dataset.state = 'ready';
    }).catch(function (error) {
      if (requests[id] !== request) return;
      section.querySelector('.status').textContent = error.message;
      section.querySelector('.status').classList.add('error');
      section.dataset.state = 'failed';
      if (/api_key/.test(error.message)) askForKey(error.message);
    });
  }
  function chart(id) {
    if (!state.charts[id]) state.charts[id] = echarts.init($(id), null, { renderer: 'canvas' });
    return state.charts[id];
  }
  var base = { animation: false, textStyle: { fontFamily: 'system-ui, sans-serif' } };
  function options(extra) { return Object.assign({}, base, extra); }

  // ---- KPI tiles -------------------------------------------------------------------------------------------------
  var KPIS = [
    ['impressions', 'Impressions', count], ['clicks', 'Clicks', count],
    ['ctr', 'CTR', function (v) { return percent(v, 2); }], ['conversions', 'Conversions', count],
    ['conversion_rate', 'Conversions per user', function (v) { return v === null ? '\\u2014' : v.toFixed(3); }],
    ['active_users', 'Active users', count],
  ];
  function change(v) {
    if (v === null || v === undefined) return 'no previous data';
    return (v > 0 ? '\\u25b2 +' : v < 0 ? '\\u25bc ' : '= ') + (v * 100).toFixed(1) + ' % vs previous period';
  }
  function loadKpis() {
    var r = ranges();
    return panel('kpis', 'dashboard', Object.assign({}, r.hourly, { scenario: scenario() }), function (answer) {
      var tiles = $('kpi-tiles');
      tiles.replaceChildren();
      KPIS.forEach(function (kpi) {
        var tile = el('div', undefined, 'tile');
        tile.dataset.kpi = kpi[0];
        var value = el('div', kpi[2](answer.current[kpi[0]]), 'value');
        value.dataset.value = String(answer.current[kpi[0]]);
        var delta = el('div', change(answer.change[kpi[0]]), 'change');
        if (answer.change[kpi[0]] > 0) delta.classList.add('up');
        if (answer.change[kpi[0]] < 0) delta.classList.add('down');
        tile.append(el('div', kpi[1], 'label'), value, delta,
          el('div', 'previous: ' + kpi[2](answer.previous[kpi[0]]), 'previous'));
        tiles.appendChild(tile);
      });
    });
  }

  // ---- trend -----------------------------------------------------------------------------------------------------
  function loadTrend() {
    var r = ranges(), interval = r.days <= 2 ? 'hour' : 'day';
    var params = Object.assign({ metric: $('trend-metric').value, interval: interval }, interval === 'hour' ? r.hourly : r.daily,
      { scenario: scenario() });
    return panel('trend', 'trends', params, function (answer) {
      var labels = answer.series.map(function (p) {
        return interval === 'hour' ? p.bucket.slice(5, 13).replace('T', ' ') + 'h' : p.bucket.slice(0, 10);
      });
      chart('trend-chart').setOption(options({
        grid: { left: 56, right: 16, top: 24, bottom: 32 },
        tooltip: { trigger: 'axis', renderMode: 'richText' },
        xAxis: { type: 'category', data: labels },
        yAxis: { type: 'value' },
        series: [{ type: 'line', name: answer.metric, data: answer.series.map(function (p) { return p.value; }),
          showSymbol: answer.series.length <= 60, areaStyle: { opacity: 0.15 } }],
      }), true);
    });
  }

  // ---- top items -------------------------------------------------------------------------------------------------
  function loadTopItems() {
    var r = ranges();
    var params = Object.assign({ by: $('top-by').value, limit: 10 }, r.daily, { scenario: scenario() });
    return panel('top-items', 'top-items', params, function (answer) {
      var body = $('top-items-body');
      body.replaceChildren();
      answer.results.forEach(function (item) {
        var row = el('tr');
        row.dataset.item = item.item_id;
        [item.item_id, count(item.impressions), count(item.clicks), percent(item.ctr, 2), count(item.conversions)]
          .forEach(function (v) { row.appendChild(el('td', v)); });
        body.appendChild(row);
      });
      if (!answer.results.length) body.appendChild(el('tr')).appendChild(el('td', 'No items in this range.'));
    });
  }

  // ---- funnel ----------------------------------------------------------------------------------------------------
  function funnelSteps() {
    return $('funnel-steps').value.split(/[,>\\u2192]+/).map(function (s) { return s.trim(); })
      .filter(function (s) { return s !== ''; }).map(function (action) { return { action: action }; });
  }
  function sessionLink(session) {
    var item = el('li'), link = el('a', session.session_id), url = new URL(session.player_url, location.origin);
    // The player on this origin only (it reads the key from sessionStorage), opened in this tab, which holds the key.
    link.href = url.origin === location.origin && url.pathname === '/player' ? url.href : '#';
    link.dataset.session = session.session_id;
    item.appendChild(link);
    return item;
  }
  function dropOffList(step) {
    var box = el('details', undefined, 'drop-off');
    box.dataset.step = String(step.step);
    box.appendChild(el('summary', 'Step ' + step.step + ' (' + step.action + '): ' + count(step.drop_off.users) +
      ' dropped \\u2014 replays of users who dropped'));
    var list = el('ul');
    box.appendChild(list);
    function add(page) {
      page.sessions.forEach(function (s) { list.appendChild(sessionLink(s)); });
      if (!list.children.length) list.appendChild(el('li', 'No recorded sessions.'));
      if (page.next) {
        var more = el('button', 'More replays');
        more.type = 'button';
        more.addEventListener('click', function () {
          more.remove();
          // The next page of this step's list (the whole funnel answer, with this list continued).
          api(page.next).then(function (answer) {
            var group = answer.groups.filter(function (g) { return g.breakdown === null; })[0] || answer.groups[0];
            add(group.steps[step.step - 1].drop_off);
          }).catch(function (error) { box.appendChild(el('p', error.message, 'error')); });
        });
        box.appendChild(more);
      }
    }
    add(step.drop_off);
    return box;
  }
  function loadFunnel() {
    var r = ranges();
    var params = Object.assign({ steps: JSON.stringify(funnelSteps()), window_s: $('funnel-window').value,
      strict: $('funnel-strict').checked ? 'true' : 'false', drop_off_limit: 10 }, r.hourly);
    return panel('funnel', 'funnel', params, function (answer) {
      var group = answer.groups[0];
      var steps = group ? group.steps : answer.steps.map(function (s, i) {
        return { step: i + 1, action: s.action, users: 0, conversion_from_first: 0, drop_off: i ? { users: 0, sessions: [] } : null };
      });
      chart('funnel-chart').setOption(options({
        grid: { left: 56, right: 16, top: 28, bottom: 32 },
        tooltip: { trigger: 'item', renderMode: 'richText' },
        xAxis: { type: 'category', data: steps.map(function (s) { return s.step + '. ' + s.action; }) },
        yAxis: { type: 'value' },
        series: [{ type: 'bar', name: 'users', barMaxWidth: 64,
          data: steps.map(function (s) { return s.users; }),
          label: { show: true, position: 'top', formatter: function (p) {
            return NUMBER.format(p.value) + ' (' + percent(steps[p.dataIndex].conversion_from_first, 1) + ')';
          } } }],
      }), true);
      // One click on a step's bar opens the replays of the users who dropped there.
      chart('funnel-chart').off('click');
      chart('funnel-chart').on('click', function (p) {
        var box = document.querySelector('.drop-off[data-step="' + (p.dataIndex + 1) + '"]');
        if (box) { box.open = true; box.scrollIntoView({ block: 'nearest' }); }
      });
      var body = $('funnel-body');
      body.replaceChildren();
      steps.forEach(function (s) {
        var row = el('tr');
        row.dataset.step = String(s.step);
        [s.step, s.action, count(s.users), percent(s.conversion_from_first, 1),
         s.drop_off ? count(s.drop_off.users) : ''].forEach(function (v) { row.appendChild(el('td', v)); });
        body.appendChild(row);
      });
      var drops = $('funnel-drop-offs');
      drops.replaceChildren();
      steps.forEach(function (s) { if (s.drop_off) drops.appendChild(dropOffList(s)); });
      var ttc = group ? group.time_to_convert_ms : { median: null, p90: null };
      $('funnel-ttc').textContent = 'Time to convert: median ' + duration(ttc.median) + ', p90 ' + duration(ttc.p90);
    });
  }
  function duration(ms) {
    if (ms === null || ms === undefined) return '\\u2014';
    var s = Math.round(ms / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + (s % 60) + 's';
  }

  // ---- retention -------------------------------------------------------------------------------------------------
  function loadRetention() {
    var r = ranges(), period = $('retention-period').value;
    var params = Object.assign({ start: $('retention-start').value.trim(), return: $('retention-return').value.trim(),
      period: period, periods: period === 'day' ? 7 : 4 }, r.daily);
    return panel('retention', 'retention', params, function (answer) {
      var head = $('retention-head'), body = $('retention-body'), step = answer.period === 'day' ? DAY : 7 * DAY;
      head.replaceChildren();
      body.replaceChildren();
      var header = el('tr');
      header.append(el('th', 'Cohort'), el('th', 'Users'));
      for (var n = 0; n <= answer.periods; n++) header.appendChild(el('th', (answer.period === 'day' ? 'Day ' : 'Week ') + n));
      head.appendChild(header);
      answer.cohorts.forEach(function (cohort) {
        var row = el('tr');
        row.append(el('td', cohort.period), el('td', count(cohort.users)));
        cohort.retained.forEach(function (cell) {
          // A period that has not begun yet is blank rather than 0 %.
          var future = Date.parse(cohort.period + 'T00:00:00Z') + cell.offset * step > Date.now();
          var td = el('td', future ? '' : percent(cell.rate, 1), 'cell');
          if (!future) {
            td.title = count(cell.users) + ' of ' + count(cohort.users);
            td.style.backgroundColor = 'rgba(37, 99, 235, ' + (0.08 + 0.8 * cell.rate).toFixed(3) + ')';
            if (cell.rate > 0.5) td.style.color = '#fff';
          }
          row.appendChild(td);
        });
        body.appendChild(row);
      });
    });
  }

  // ---- paths (Sankey) --------------------------------------------------------------------------------------------
  function loadPaths() {
    var r = ranges();
    var params = Object.assign({ action: $('paths-action').value.trim(), direction: $('paths-direction').value,
      depth: $('paths-depth').value, top: 8 }, r.hourly);
    return panel('paths', 'paths', params, function (answer) {
      $('paths-users').textContent = count(answer.users) + ' users with ' + answer.action;
      // Node names must be unique to ECharts: the node ids are ('depth:action'); the label is the action.
      var names = {};
      answer.nodes.forEach(function (n) { names[n.id] = n.name; });
      chart('paths-chart').setOption(options({
        tooltip: { trigger: 'item', renderMode: 'richText', formatter: function (p) {
          return p.dataType === 'edge'
            ? names[p.data.source] + ' \u2192 ' + names[p.data.target] + ': ' + NUMBER.format(p.value)
            : names[p.name] + ': ' + NUMBER.format(p.value);
        } },
        series: [{ type: 'sankey', left: 8, right: 120, top: 8, bottom: 8, nodeGap: 10, draggable: false,
          emphasis: { focus: 'adjacency' },
          data: answer.nodes.map(function (n) { return { name: n.id, value: n.value }; }),
          links: answer.links.map(function (l) { return { source: l.source, target: l.target, value: l.value }; }),
          label: { formatter: function (p) { return names[p.name] + ' (' + NUMBER.format(p.value) + ')'; } },
          lineStyle: { color: 'gradient', opacity: 0.35 } }],
      }), true);
    });
  }

  // ---- realtime --------------------------------------------------------------------------------------------------
  function loadRealtime() {
    if (state.realtimeBusy) return Promise.resolve();
    state.realtimeBusy = true;
    return panel('realtime', 'realtime', { limit: 10, scenario: scenario() }, function (answer) {
      $('realtime-source').textContent = 'source: ' + answer.source + (answer.fallback_reason ? ' (' + answer.fallback_reason + ')' : '');
      $('realtime-source').dataset.source = answer.source;
      var actions = Object.keys(answer.actions).sort().map(function (a) { return a + ' ' + count(answer.actions[a]); });
      $('realtime-minute').textContent = 'This minute (' + answer.minute.slice(11, 16) + ' UTC): ' + (actions.join(', ') || 'nothing yet');
      var body = $('realtime-body');
      body.replaceChildren();
      answer.hot_items.forEach(function (item) {
        var row = el('tr');
        row.dataset.item = item.item_id;
        row.append(el('td', item.item_id), el('td', item.weight.toFixed(2)));
        body.appendChild(row);
      });
      if (!answer.hot_items.length) body.appendChild(el('tr')).appendChild(el('td', 'No hot items.'));
      window.analytics.realtimeRefreshes++;
      $('realtime-updated').textContent = 'updated ' + new Date().toLocaleTimeString('en-GB');
    }).then(function () { state.realtimeBusy = false; });
  }

  function loadAll() {
    return Promise.all([loadKpis(), loadTrend(), loadTopItems(), loadFunnel(), loadRetention(), loadPaths(), loadRealtime()]);
  }

  function askForKey(message) {
    if (state.realtimeTimer) { clearInterval(state.realtimeTimer); state.realtimeTimer = null; }
    $('key-form').hidden = false;
    $('key-status').textContent = message || '';
    document.body.dataset.state = 'key';
  }
  $('key-form').addEventListener('submit', function (event) {
    event.preventDefault();
    state.key = $('key-input').value.trim();
    sessionStorage.setItem('replay-api-key', state.key);
    $('key-form').hidden = true;
    start();
  });
  function on(id, eventName, load) {
    $(id).addEventListener(eventName, function (event) { event.preventDefault(); if (state.started) load(); });
  }
  on('controls', 'submit', loadAll);
  on('range', 'change', loadAll);
  on('trend-metric', 'change', loadTrend);
  on('top-by', 'change', loadTopItems);
  on('funnel-form', 'submit', loadFunnel);
  on('retention-form', 'submit', loadRetention);
  on('paths-form', 'submit', loadPaths);
  window.addEventListener('resize', function () {
    Object.keys(state.charts).forEach(function (id) { state.charts[id].resize(); });
  });

  function start() {
    if (!state.key) return askForKey();
    document.body.dataset.state = 'loading';
    return api('/api/projects').then(function (projects) {
      if (!projects.results.length) throw new Error('this key reads no projects');
      if (!state.team) state.team = String(projects.results[0].id);
      var picker = el('select');
      picker.id = 'project';
      projects.results.forEach(function (p) {
        var option = el('option', p.name + ' (' + p.id + ')');
        option.value = p.id;
        option.selected = String(p.id) === String(state.team);
        picker.appendChild(option);
      });
      picker.addEventListener('change', function () {
        state.team = picker.value;
        history.replaceState(null, '', location.pathname + '#team=' + encodeURIComponent(state.team));
        loadAll();
      });
      $('projects').replaceChildren(el('label', 'Project '), picker);
      state.started = true;
      return loadAll();
    }).then(function () {
      document.body.dataset.state = 'ready';
      if (!state.realtimeTimer) state.realtimeTimer = setInterval(loadRealtime, 5000);
    }).catch(function (error) {
      if (/api_key/.test(error.message)) askForKey(error.message);
      else { $('page-status').textContent = error.message; document.body.dataset.state = 'failed'; }
    });
  }
  start();
})();
`;

const analyticsStyle = `
  [hidden] { display: none !important; }
  body { font: 14px system-ui, sans-serif; margin: 0; color: #1f2328; background: #f6f7f9; }
  header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 10px 16px; background: #fff;
    border-bottom: 1px solid #ddd; }
  header h1 { font-size: 18px; margin: 0 12px 0 0; }
  header a { margin-left: auto; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; padding: 16px; }
  section { background: #fff; border: 1px solid #e3e5e8; border-radius: 6px; padding: 12px 14px; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  form { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 0 0 8px; }
  .chart { width: 100%; height: 280px; }
  #paths-chart { height: 340px; }
  table { border-collapse: collapse; width: 100%; }
  td, th { padding: 4px 8px; border-bottom: 1px solid #eee; text-align: left; font-size: 13px; }
  td.cell { text-align: center; }
  .tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; }
  .tile { border: 1px solid #e3e5e8; border-radius: 6px; padding: 10px; }
  .tile .label, .tile .previous { color: #57606a; font-size: 12px; }
  .tile .value { font-size: 22px; font-weight: 600; margin: 4px 0; }
  .tile .change { font-size: 12px; color: #57606a; }
  .tile .change.up { color: #1a7f37; } .tile .change.down { color: #cf222e; }
  .drop-off { margin: 4px 0; } .drop-off ul { margin: 4px 0; max-height: 160px; overflow: auto; }
  .drop-off a { font-family: ui-monospace, monospace; font-size: 12px; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; background: #eef1f4; font-size: 12px; }
  .muted { color: #57606a; font-size: 12px; }
  .error { color: #b00020; }
`;

const analyticsPageHtml = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Analytics</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${analyticsStyle}</style></head>
<body data-state="starting">
<header>
  <h1>Analytics</h1>
  <div id="projects"></div>
  <form id="controls">
    <label>Range <select id="range">
      <option value="1">last 24 hours</option><option value="7" selected>last 7 days</option>
      <option value="30">last 30 days</option><option value="90">last 90 days</option></select></label>
    <label>Scenario <input id="scenario" size="14" placeholder="all"></label>
    <button>Apply</button>
  </form>
  <p id="page-status" class="error" role="status"></p>
  <a href="/player">Player</a>
</header>
<form id="key-form" hidden>
  <p>Personal API key</p>
  <input id="key-input" type="password" size="40" placeholder="rpk_..." autocomplete="off">
  <button>Use key</button>
  <p id="key-status" class="error"></p>
</form>
<main>
  <section id="kpis" class="wide"><h2>Key figures</h2><p class="status muted"></p><div id="kpi-tiles" class="tiles"></div></section>
  <section id="trend"><h2>Trend</h2>
    <form><label>Metric <select id="trend-metric">
      <option value="impressions">impressions</option><option value="clicks" selected>clicks</option>
      <option value="ctr">CTR</option><option value="conversions">conversions</option>
      <option value="active_users">active users</option></select></label></form>
    <p class="status muted"></p><div id="trend-chart" class="chart"></div></section>
  <section id="top-items"><h2>Top items</h2>
    <form><label>By <select id="top-by"><option value="clicks">clicks</option><option value="impressions">impressions</option>
      <option value="ctr">CTR</option><option value="conversions">conversions</option></select></label></form>
    <p class="status muted"></p>
    <table><thead><tr><th>Item</th><th>Impressions</th><th>Clicks</th><th>CTR</th><th>Conversions</th></tr></thead>
      <tbody id="top-items-body"></tbody></table></section>
  <section id="funnel" class="wide"><h2>Funnel</h2>
    <form id="funnel-form">
      <label>Steps <input id="funnel-steps" size="44" value="impression, click, add_cart, order"></label>
      <label>Window <select id="funnel-window"><option value="3600">1 hour</option>
        <option value="86400" selected>1 day</option><option value="604800">7 days</option></select></label>
      <label><input id="funnel-strict" type="checkbox"> strict order</label>
      <button>Run</button>
    </form>
    <p class="status muted"></p><div id="funnel-chart" class="chart"></div>
    <table><thead><tr><th>Step</th><th>Action</th><th>Users</th><th>From step 1</th><th>Dropped</th></tr></thead>
      <tbody id="funnel-body"></tbody></table>
    <p id="funnel-ttc" class="muted"></p>
    <div id="funnel-drop-offs"></div></section>
  <section id="retention"><h2>Retention</h2>
    <form id="retention-form">
      <label>Start <input id="retention-start" size="10" value="impression"></label>
      <label>Return <input id="retention-return" size="10" value="click"></label>
      <label><select id="retention-period"><option value="day">daily</option><option value="week">weekly</option></select></label>
      <button>Run</button>
    </form>
    <p class="status muted"></p>
    <table><thead id="retention-head"></thead><tbody id="retention-body"></tbody></table></section>
  <section id="paths"><h2>Paths</h2>
    <form id="paths-form">
      <label>Action <input id="paths-action" size="10" value="impression"></label>
      <select id="paths-direction"><option value="next">next</option><option value="previous">previous</option></select>
      <label>Depth <select id="paths-depth"><option>1</option><option>2</option><option selected>3</option></select></label>
      <button>Run</button>
    </form>
    <p class="status muted"></p><p id="paths-users" class="muted"></p><div id="paths-chart" class="chart"></div></section>
  <section id="realtime"><h2>Realtime hot items <span id="realtime-source" class="badge"></span></h2>
    <p class="status muted"></p><p id="realtime-minute" class="muted"></p>
    <table><thead><tr><th>Item</th><th>Weight</th></tr></thead><tbody id="realtime-body"></tbody></table>
    <p id="realtime-updated" class="muted"></p></section>
</main>
<script src="/analytics/assets/echarts.min.js"></script>
<script>${analyticsScript}</script>
</body></html>`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * The dashboard's Content-Security-Policy, stricter than the player's (it replays nothing): scripts are ECharts from
 * /analytics/assets and the page's own inline script by hash (no inline handlers, no eval: ECharts needs neither),
 * the one inline stylesheet by hash (ECharts styles its elements through the CSSOM, which the policy does not
 * govern), data only from this origin, and Trusted Types enforced so that no string reaches an HTML sink but
 * ECharts' `innerHTML = ''` (the page's default policy). No plugins, no <base>, no form posts, never framed.
 */
export const analyticsContentSecurityPolicy = [
  "default-src 'none'",
  `script-src 'self' ${sha256(analyticsScript)}`,
  `style-src ${sha256(analyticsStyle)}`,
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  'trusted-types default',
].join('; ');

const analyticsSecurityHeaders = {
  'content-security-policy': analyticsContentSecurityPolicy,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};
