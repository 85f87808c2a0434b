// The player page's script (an ES module, served by player-page.ts; plain JavaScript, as the browser runs it). It lists
// the key's sessions, shows one's summary, fetches its events as JSONL (in chunks of the API's block limit), merges
// every window into one timeline (session-timeline.ts) and plays it with rrweb-player, with the console and event
// panels beside it and the scrubber under it. Everything from the API is set as text, never as HTML: URLs, ids and
// console output in recordings are untrusted. `#key=...&team=...&session=...&t=<seconds>` opens a session at a
// moment; the key moves to sessionStorage and leaves the address bar.
import { analyticsEntries, mergeByTime, sessionTimeline, windowAt } from './session-timeline.js';
import { TimelinePlayer } from './timeline-player.js';

const hash = new URLSearchParams(location.hash.slice(1));
const playableWithinMs = Number(document.body.dataset.playableWithinMs) || 15_000;
/** How often a session that is not playable yet is looked for again, and for how long past `playableWithinMs`. */
const PROCESSING_POLL_MS = 2000;
const PROCESSING_GRACE_MS = 30_000;
const WINDOW_COLOURS = ['#5b8def', '#e0883e', '#8e5bd6', '#3aa87a', '#c94f7c'];
const state = {
  key: hash.get('key') || sessionStorage.getItem('replay-api-key'),
  team: hash.get('team'),
  player: null,
  /** Bumped by every play(): an answer for an earlier one is dropped. */
  generation: 0,
};
if (hash.get('key')) {
  sessionStorage.setItem('replay-api-key', hash.get('key'));
  hash.delete('key');
  history.replaceState(null, '', location.pathname + (hash.toString() ? `#${hash}` : ''));
}

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}
const $ = (id) => document.getElementById(id);
function setStatus(text, isError) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}
function setState(name) {
  document.body.dataset.state = name;
}
function duration(ms) {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return (h ? `${h}h ` : '') + (h || m ? `${m}m ` : '') + (s % 60) + 's';
}
/** An offset into the replay as m:ss. */
function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
function timeOfDay(timestamp) {
  return new Date(timestamp).toLocaleTimeString();
}
function notice(text, kind) {
  const box = el('div', text, `notice${kind ? ` ${kind}` : ''}`);
  $('notices').appendChild(box);
  return box;
}

// An overloaded API (503 with Retry-After) is asked again a few times, after the wait it names.
function api(path, attempt = 0) {
  return fetch(path, { headers: { authorization: `Bearer ${state.key}` } }).then((response) => {
    if (response.ok) return response;
    const retryAfter = Number(response.headers.get('retry-after'));
    if (response.status === 503 && retryAfter > 0 && attempt < 4) {
      return new Promise((resolve) => setTimeout(resolve, Math.min(retryAfter, 10) * 1000)).then(() =>
        api(path, attempt + 1),
      );
    }
    return response
      .json()
      .catch(() => ({}))
      .then((body) => {
        const error = new Error(`${body.code || `http_${response.status}`}: ${body.detail || response.statusText}`);
        error.code = body.code;
        error.detail = body.detail;
        throw error;
      });
  });
}

function askForKey(message) {
  $('key-form').hidden = false;
  $('list-status').textContent = message || '';
  $('key-form').onsubmit = (event) => {
    event.preventDefault();
    state.key = $('key-input').value.trim();
    sessionStorage.setItem('replay-api-key', state.key);
    $('key-form').hidden = true;
    start();
  };
}
const sessionsBase = () => `/api/projects/${encodeURIComponent(state.team)}/session_recordings`;

function listSessions() {
  const since = new Date(Date.now() - 30 * 86400000).toISOString().slice(0, 10);
  return api(`${sessionsBase()}?limit=100&date_from=${since}`)
    .then((r) => r.json())
    .then((page) => {
      const body = $('sessions');
      body.replaceChildren();
      for (const s of page.results) {
        const row = el('tr', undefined, 'session');
        row.dataset.session = s.id;
        for (const v of [new Date(s.start_time).toLocaleString(), duration(s.duration_ms), s.click_count]) {
          row.appendChild(el('td', v));
        }
        row.appendChild(el('td', s.console_error_count));
        row.title = s.first_url || s.id;
        row.onclick = () => play(s.id);
        body.appendChild(row);
      }
      $('list-status').textContent = page.results.length ? '' : 'No sessions in the last 30 days.';
    });
}

function showSummary(s) {
  const summary = $('summary');
  summary.replaceChildren();
  const pairs = [
    ['Started', new Date(s.start_time).toLocaleString()],
    ['Duration', duration(s.duration_ms)],
    ['Active time', duration(s.active_ms)],
    ['Clicks', s.click_count],
    ['Key presses', s.keypress_count],
    ['Console errors', s.console_error_count],
    ['Console warnings', s.console_warn_count],
    ['Console logs', s.console_log_count],
    ['Person', s.distinct_id],
    ['First URL', s.first_url || ''],
  ];
  for (const [name, value] of pairs) {
    summary.appendChild(el('dt', name));
    summary.appendChild(el('dd', value));
  }
  summary.appendChild(el('dt', 'URLs'));
  const urls = el('dd');
  for (const u of s.urls) urls.appendChild(el('div', u));
  summary.appendChild(urls);
}

function loadEvents(base, list) {
  const chunk = list.max_blocks_per_request;
  const ranges = [];
  for (let i = 0; i < list.blocks.length; i += chunk) {
    ranges.push(`${i}-${Math.min(i + chunk, list.blocks.length) - 1}`);
  }
  const byWindow = {};
  const missing = [];
  return ranges
    .reduce(
      (done, range) =>
        done
          .then(() => api(`${base}/snapshots?blocks=${range}`))
          .then((r) => r.text())
          .then((text) => {
            for (const line of text.split('\n')) {
              if (!line) continue;
              const item = JSON.parse(line);
              if (Array.isArray(item)) (byWindow[item[0]] = byWindow[item[0]] || []).push(item[1]);
              else if (item.missing_block) missing.push(item.missing_block);
            }
          }),
      Promise.resolve(),
    )
    .then(() => ({ byWindow, missing }));
}

/** The session's analytics events (posthog-js events, behaviours), or an error to show in their place. */
function loadAnalytics(base) {
  return api(`${base}/events`)
    .then((r) => r.json())
    .then((body) => ({ rows: body.results, limit: body.limit }))
    .catch((error) => ({ rows: [], limit: Number.POSITIVE_INFINITY, error }));
}

function resetStage() {
  state.player?.destroy();
  state.player = null;
  $('player').replaceChildren();
  $('notices').replaceChildren();
  $('panels').hidden = true;
  $('scrubber').hidden = true;
  $('controls').hidden = true;
  $('link-output').hidden = true;
  for (const node of [...$('scrubber').children]) if (node.id !== 'playhead') node.remove();
}

/**
 * A session the API does not know yet, or not at all: it becomes playable within `playableWithinMs` of its upload,
 * so the page keeps looking, saying when to expect it, before it says the session is not there.
 */
function waitForProcessing(id, generation, since, startAt) {
  const waited = Date.now() - since;
  if (waited > playableWithinMs + PROCESSING_GRACE_MS) {
    $('notices').replaceChildren();
    setStatus(`No recording of session ${id} was found: it was never recorded, or its data never arrived.`, true);
    setState('failed');
    return;
  }
  const left = Math.max(1, Math.ceil((playableWithinMs - waited) / 1000));
  $('notices').replaceChildren();
  notice(
    `Still processing: this session is not playable yet. Recordings become playable within about ` +
      `${Math.round(playableWithinMs / 1000)} s of their upload; playable in ~${left} s. Checking again…`,
  );
  setStatus('');
  setState('processing');
  setTimeout(() => {
    if (generation === state.generation) play(id, { since, startAt });
  }, PROCESSING_POLL_MS);
}

function play(id, options = {}) {
  const generation = ++state.generation;
  const startAt = options.startAt;
  const next = new URLSearchParams({ team: state.team, session: id });
  location.hash = next.toString();
  for (const r of document.querySelectorAll('tr.session')) r.classList.toggle('current', r.dataset.session === id);
  setState('loading');
  resetStage();
  $('title').textContent = `Session ${id}`;
  setStatus('Loading...');
  const base = `${sessionsBase()}/${encodeURIComponent(id)}`;
  let summary;
  return api(base)
    .then((r) => r.json())
    .then((found) => {
      if (generation !== state.generation) return [];
      summary = found;
      showSummary(summary);
      return Promise.all([
        api(`${base}/snapshots`)
          .then((r) => r.json())
          .then((list) => loadEvents(base, list).then((loaded) => ({ list, ...loaded }))),
        loadAnalytics(base),
      ]);
    })
    .then(([loaded, analytics]) => {
      if (generation !== state.generation || !loaded) return;
      show(id, summary, loaded, analytics, startAt);
    })
    .catch((error) => {
      if (generation !== state.generation) return;
      $('summary').replaceChildren();
      if (error.code === 'not_found') return waitForProcessing(id, generation, options.since ?? Date.now(), startAt);
      // Past its retention, or deleted: gone for good. Said in a sentence (the API's detail), not as a failure.
      if (error.code === 'recording_expired' || error.code === 'recording_deleted') {
        notice(error.detail, 'gone');
        setStatus('');
        setState(error.code === 'recording_expired' ? 'expired' : 'deleted');
        return;
      }
      setStatus(error.message, true);
      setState('failed');
    });
}

/** Says what of the session cannot be shown: unreadable blocks, and events that may not be flushed yet. */
function noticePartialData(id, summary, loaded) {
  if (loaded.missing.length) {
    const codes = [...new Set(loaded.missing.map((m) => m.code))].join(', ');
    const spans = loaded.missing
      .map((m) => `${timeOfDay(Date.parse(m.first_timestamp))}–${timeOfDay(Date.parse(m.last_timestamp))}`)
      .join(', ');
    notice(
      `${loaded.missing.length} of ${loaded.list.blocks.length} blocks of this session could not be read (${codes}); ` +
        `the replay plays around them: ${spans}.`,
    );
  }
  // The recording's clock is the device's: one running ahead must not promise data for hours, so the wait said is
  // at most playableWithinMs, and a session "ended" further in the future than that is left alone.
  const age = Date.now() - Date.parse(summary.end_time);
  if (age < playableWithinMs && age > -playableWithinMs) {
    const left = Math.min(playableWithinMs, playableWithinMs - age);
    const box = notice(
      `Still processing: events after ${timeOfDay(Date.parse(summary.end_time))} may not be flushed yet; ` +
        `they should be playable in ~${Math.max(1, Math.ceil(left / 1000))} s. `,
    );
    const reload = el('button', 'Reload');
    reload.onclick = () => play(id);
    box.appendChild(reload);
  }
}

function show(id, summary, loaded, analytics, startAt) {
  noticePartialData(id, summary, loaded);
  const timeline = sessionTimeline(loaded.byWindow);
  const listed = mergeByTime(timeline.listed, analyticsEntries(analytics.rows, timeline));
  window.replay = { timeline, listed, missing: loaded.missing, windows: timeline.windows };
  if (timeline.windows.length === 0) {
    const all = loaded.list.blocks.length > 0 && loaded.missing.length === loaded.list.blocks.length;
    setStatus(
      all
        ? 'None of the blocks of this session could be read, so there is nothing to play.'
        : 'This session has no full page snapshot to draw from, so there is nothing to play.',
      true,
    );
    setState('empty');
    return;
  }
  if (analytics.rows.length >= analytics.limit) {
    notice(`The event list shows the first ${analytics.limit} analytics events of this session.`);
  }
  const width = Math.max(480, Math.min(960, $('stage').clientWidth - 360));
  const panels = renderPanels(timeline, listed, analytics.error);
  const scrubber = renderScrubber(timeline, loaded.missing, listed);
  const total = timeline.end - timeline.start;
  const player = new TimelinePlayer($('player'), timeline, {
    width,
    height: Math.round((width * 9) / 16),
    onChange(offset, playing) {
      const at = timeline.start + offset;
      panels.update(at);
      scrubber.update(offset / Math.max(1, total));
      $('time').textContent = `${clock(offset)} / ${clock(total)}`;
      $('play-toggle').textContent = playing ? 'Pause' : 'Play';
      const shown = windowAt(timeline.segments, at);
      $('window-badge').textContent =
        timeline.windows.length > 1 ? `Window ${timeline.windows.indexOf(shown) + 1} of ${timeline.windows.length}` : '';
    },
  });
  state.player = player;
  window.replay.player = player;
  window.replay.seek = (timestamp, play) => player.seek(timestamp, play);
  window.replay.currentTime = () => player.offset;
  $('play-toggle').onclick = () => player.toggle();
  $('speed').onchange = () => player.setSpeed(Number($('speed').value));
  player.setSpeed(Number($('speed').value));
  $('skip-inactive').onchange = () => player.setSkipping($('skip-inactive').checked);
  player.setSkipping($('skip-inactive').checked);
  $('link-here').onclick = () => {
    const link = new URLSearchParams({ team: state.team, session: id, t: (player.offset / 1000).toFixed(1) });
    const output = $('link-output');
    output.value = `${location.origin}${location.pathname}#${link}`;
    output.hidden = false;
    output.select();
    navigator.clipboard?.writeText(output.value).catch(() => undefined);
  };
  $('controls').hidden = false;
  if (startAt !== undefined) {
    player.seek(timeline.start + startAt * 1000, false);
    setStatus(`Opened at ${clock(player.offset)} of ${clock(total)}.`);
  } else {
    player.seek(timeline.start, true);
    setStatus(timeline.windows.length > 1 ? `${timeline.windows.length} windows in one timeline.` : '');
  }
  setState('playing');
}

/** A list of entries that follows the playhead: entries up to it are marked past, the last of them current. */
function followingList(list, entries) {
  let passed = 0;
  return (at) => {
    let count = passed;
    while (count < entries.length && entries[count].timestamp <= at) count++;
    while (count > 0 && entries[count - 1].timestamp > at) count--;
    if (count === passed) return;
    const items = list.children;
    const offset = items.length - entries.length; // a leading note, when there is one
    for (let i = Math.min(count, passed); i < Math.max(count, passed); i++) {
      items[i + offset].classList.toggle('past', i < count);
    }
    items[passed - 1 + offset]?.classList.remove('current');
    const current = items[count - 1 + offset];
    current?.classList.add('current');
    if (current && !list.matches(':hover')) current.scrollIntoView({ block: 'nearest' });
    passed = count;
  };
}

function windowLabel(timeline, windowId) {
  return timeline.windows.length > 1 ? ` [window ${timeline.windows.indexOf(windowId) + 1}]` : '';
}

function renderPanels(timeline, listed, analyticsError) {
  const consolePanel = $('console-panel');
  const eventsPanel = $('events-panel');
  consolePanel.replaceChildren();
  eventsPanel.replaceChildren();
  const entryItem = (entry, className) => {
    const item = el('li', undefined, className);
    item.dataset.timestamp = String(entry.timestamp);
    item.appendChild(el('span', clock(entry.timestamp - timeline.start), 'at'));
    item.onclick = () => window.replay.seek(entry.timestamp);
    return item;
  };
  for (const entry of timeline.console) {
    const item = entryItem(entry, `console-entry ${entry.kind}`);
    item.dataset.level = entry.level;
    item.appendChild(el('span', entry.level, 'level'));
    const text = el('div', undefined, 'text');
    text.appendChild(el('span', entry.text + windowLabel(timeline, entry.windowId)));
    if (entry.trace.length) {
      const trace = el('details');
      trace.appendChild(el('summary', 'trace'));
      for (const frame of entry.trace) trace.appendChild(el('div', frame));
      text.appendChild(trace);
    }
    item.appendChild(text);
    consolePanel.appendChild(item);
  }
  if (analyticsError) {
    eventsPanel.appendChild(el('p', `Analytics events could not be loaded (${analyticsError.message}).`, 'error'));
  }
  for (const entry of listed) {
    const item = entryItem(entry, `listed-event ${entry.kind}`);
    item.dataset.kind = entry.kind;
    item.appendChild(el('span', entry.kind, 'kind'));
    item.appendChild(el('span', entry.label + windowLabel(timeline, entry.windowId), 'text'));
    eventsPanel.appendChild(item);
  }
  $('tab-console').textContent = `Console (${timeline.console.length})`;
  $('tab-events').textContent = `Events (${listed.length})`;
  const select = (console) => {
    $('tab-console').setAttribute('aria-selected', String(console));
    $('tab-events').setAttribute('aria-selected', String(!console));
    consolePanel.hidden = !console;
    eventsPanel.hidden = console;
  };
  $('tab-console').onclick = () => select(true);
  $('tab-events').onclick = () => select(false);
  $('panels').hidden = false;
  const followConsole = followingList(consolePanel, timeline.console);
  const followEvents = followingList(eventsPanel, listed);
  return {
    update(at) {
      followConsole(at);
      followEvents(at);
    },
  };
}

/** The bar under the player: active stretches, unreadable blocks, which window is shown, clicks and errors. */
function renderScrubber(timeline, missing, listed) {
  const bar = $('scrubber');
  const total = Math.max(1, timeline.end - timeline.start);
  const percent = (timestamp) => `${(Math.min(Math.max(0, timestamp - timeline.start), total) / total) * 100}%`;
  const span = (className, from, to, title) => {
    const part = el('div', undefined, className);
    part.style.left = percent(from);
    part.style.width = `max(2px, calc(${percent(to)} - ${percent(from)}))`;
    if (title) part.title = title;
    bar.insertBefore(part, $('playhead'));
    return part;
  };
  for (const [from, to] of timeline.active) span('active', from, to, 'active');
  for (const m of missing) {
    span('gap', Date.parse(m.first_timestamp), Date.parse(m.last_timestamp), `block ${m.index}: ${m.code}`);
  }
  if (timeline.windows.length > 1) {
    for (const segment of timeline.segments) {
      const index = timeline.windows.indexOf(segment.windowId);
      const part = span('window', segment.start, segment.end, `window ${index + 1}`);
      part.style.background = WINDOW_COLOURS[index % WINDOW_COLOURS.length];
    }
  }
  const marker = (className, timestamp, title) => {
    const mark = el('div', undefined, `marker ${className}`);
    mark.style.left = percent(timestamp);
    mark.title = `${clock(timestamp - timeline.start)} ${title}`;
    bar.insertBefore(mark, $('playhead'));
  };
  for (const entry of listed) if (entry.kind === 'click') marker('click', entry.timestamp, entry.label);
  for (const entry of timeline.console) if (entry.kind === 'error') marker('error', entry.timestamp, entry.text);
  bar.onclick = (event) => {
    const box = bar.getBoundingClientRect();
    window.replay.seek(timeline.start + ((event.clientX - box.left) / box.width) * total);
  };
  bar.hidden = false;
  return {
    update(fraction) {
      $('playhead').style.left = `${Math.min(1, Math.max(0, fraction)) * 100}%`;
    },
  };
}

function start() {
  if (!state.key) return askForKey();
  api('/api/projects')
    .then((r) => r.json())
    .then((projects) => {
      if (!projects.results.length) throw new Error('this key reads no projects');
      if (!state.team) state.team = String(projects.results[0].id);
      const picker = el('select');
      for (const p of projects.results) {
        const option = el('option', `${p.name} (${p.id})`);
        option.value = p.id;
        option.selected = String(p.id) === String(state.team);
        picker.appendChild(option);
      }
      picker.onchange = () => {
        state.team = picker.value;
        listSessions();
      };
      $('projects').replaceChildren(el('label', 'Project '), picker);
      return listSessions();
    })
    .then(() => {
      const session = hash.get('session');
      if (!session) return setState('ready');
      const t = Number(hash.get('t'));
      return play(session, hash.has('t') && Number.isFinite(t) && t >= 0 ? { startAt: t } : {});
    })
    .catch((error) => {
      if (/api_key/.test(error.message)) askForKey(error.message);
      else setStatus(error.message, true);
      setState('failed');
    });
}
start();
