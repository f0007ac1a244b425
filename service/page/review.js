// The review page: the groups of /duplicates, each pair a row to decide by mouse or
// keyboard; a pair's detail plays both videos at the copied segment, with its timelines,
// the numbers behind the score and the heatmap. Decisions go to POST /decisions and
// change their row in place (no reload). With a token, it is asked once and kept in
// sessionStorage; every request sends it as "Authorization: Bearer ...", images too
// (fetched, then shown from blob URLs); a <video> cannot send a header, so its URL
// carries a key for that one video, given by /videos/{id}.
'use strict';

const TOKEN_KEY = 'dns-token';
const REVIEWER_KEY = 'dns-reviewer';
const LOW_MARGIN = 0.05;    // "low score": a score within this of the threshold
const BIG_GROUP = 6;        // beyond this many videos: pairs with the representative first
const HEALTH_POLL_MS = 2000;

const state = { threshold: null, groups: [], current: null, records: new Map(), healthPoll: null, unreachable: false };

class Unreachable extends Error {}

async function api(url, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = Object.assign({}, options.headers || {});
  if (token) headers['Authorization'] = 'Bearer ' + token;
  let response;
  try {
    response = await fetch(url, Object.assign({}, options, { headers }));
  } catch (error) {
    throw new Unreachable('the service does not answer (' + error.message + '); nothing was saved');
  }
  if (response.status === 401) {
    document.getElementById('token-form').hidden = false;
    throw new Error('this service needs its token');
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = JSON.stringify((await response.json()).detail); } catch (e) { /* not JSON */ }
    throw new Error(url.split('?')[0] + ': ' + response.status + ' ' + detail);
  }
  // The banner of a lost connection goes once anything answers; another error stays
  // until the reviewer's next action succeeds.
  if (state.unreachable || options.method) clearError();
  return response;
}

function postJson(url, body) {
  return api(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}

async function imageUrl(url) {
  return URL.createObjectURL(await (await api(url)).blob());
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'text') node.textContent = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// m:ss.s, or h:mm:ss from an hour on; rounded first, so 59.96 s is 1:00.0.
function clock(seconds) {
  if (seconds === null || seconds === undefined) return '?';
  if (seconds >= 3600) {
    const whole = Math.round(seconds);
    const h = Math.floor(whole / 3600), m = Math.floor(whole / 60) % 60, s = whole % 60;
    return h + ':' + String(m).padStart(2, '0') + ':' + String(s).padStart(2, '0');
  }
  const tenths = Math.round(seconds * 10);
  const minutes = Math.floor(tenths / 600);
  return minutes + ':' + ((tenths - 600 * minutes) / 10).toFixed(1).padStart(4, '0');
}

function span(start, end) {
  return clock(start) + '–' + clock(end) + ' (' + (end - start).toFixed(1) + ' s)';
}

// --- the banner: where the page says what failed; it clears once the service answers again
function showError(error) {
  const box = document.getElementById('error');
  box.textContent = String(error.message || error);
  box.hidden = false;
  state.unreachable = error instanceof Unreachable;
  if (state.unreachable && state.healthPoll === null) {
    state.healthPoll = setInterval(() => api('/health').catch(() => {}), HEALTH_POLL_MS);
  }
}

function clearError() {
  document.getElementById('error').hidden = true;
  state.unreachable = false;
  if (state.healthPoll !== null) { clearInterval(state.healthPoll); state.healthPoll = null; }
}

// --- videos
function record(id) {
  if (!state.records.has(id)) {
    const pending = api('/videos/' + id).then(r => r.json());
    pending.catch(() => state.records.delete(id));  // a failure is not kept: asked again next time
    state.records.set(id, pending);
  }
  return state.records.get(id);
}

async function videoCard(card, path, id) {
  const thumbs = element('div', { class: 'thumbs' });
  card.append(thumbs, element('div', { class: 'path', text: path }));
  const info = await record(id);
  const size = info.width ? info.width + '×' + info.height : 'size unknown';
  card.append(element('div', { class: 'meta', text: clock(info.duration) + ' · ' + size + ' · ' + info.frames + ' frames sampled' }));
  if (info.thumbnails.length === 0) {
    thumbs.append(element('div', { class: 'placeholder', text: 'no thumbnails (indexed before they existed)' }));
  }
  const images = info.thumbnails.map(() => thumbs.appendChild(element('img', { alt: 'a frame of ' + path })));
  await Promise.all(info.thumbnails.map(async (url, i) => { images[i].src = await imageUrl(url); }));
}

// --- rows: one pair each
function allRows() { return [...document.querySelectorAll('tr.pair')]; }
function visibleRows() { return allRows().filter(r => !r.hidden); }
function rowOf(a, b) { return allRows().find(r => r.dataset.a === a && r.dataset.b === b) || null; }

function select(row, scroll = true) {
  if (state.current) state.current.classList.remove('current');
  state.current = row;
  if (!row) return;
  row.classList.add('current');
  if (scroll) row.scrollIntoView({ block: 'nearest' });
}

function move(step) {
  const rows = visibleRows();
  if (!rows.length) return;
  const at = rows.indexOf(state.current);
  select(rows[at < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, at + step))]);
}

function nextUndecided(row) {
  const rows = visibleRows();
  const after = rows.slice(rows.indexOf(row) + 1).concat(rows.slice(0, rows.indexOf(row)));
  return after.find(r => !r.dataset.decision) || null;
}

function showDecision(row, decision, bulk, refresh = true) {
  if (decision) row.dataset.decision = decision; else delete row.dataset.decision;
  if (bulk) row.dataset.bulk = bulk; else delete row.dataset.bulk;
  delete row.dataset.failed;
  const cell = row.querySelector('td.state');
  cell.replaceChildren();
  if (decision) {
    cell.append(element('span', { class: 'decision ' + decision, text: 'decided: ' + decision }));
    if (bulk) cell.append(element('span', { class: 'by-group', text: ' (group action)' }));
  }
  if (refresh) { applyFilters(); updateProgress(); }
}

function showFailure(row, error, retry) {
  row.dataset.failed = 'true';
  const cell = row.querySelector('td.state');
  cell.replaceChildren(element('span', { class: 'failed', text: 'not saved: ' + (error.message || error) + ' ' }),
    element('button', { type: 'button', class: 'retry', text: 'retry', onclick: retry }));
}

// What the reviewer saw of a row, kept with the decision: its score, and the copied
// segments if its detail was opened.
function shown(row) {
  return { a: row.dataset.a, b: row.dataset.b, score: row.dataset.score === '' ? null : Number(row.dataset.score),
    segments: row.segments || [] };
}

function reviewer() {
  return document.getElementById('reviewer').value.trim() || null;
}

function detailOf(row) {
  const next = row.nextElementSibling;
  return next && next.classList.contains('detail-row') ? next : null;
}

// After a decision: the next undecided pair; an open detail follows it there, so a
// reviewer watching the copies goes on watching.
function advance(row) {
  const next = nextUndecided(row);
  if (!next) return;
  const open = detailOf(row);
  select(next);
  if (open) {
    open.remove();
    if (!detailOf(next)) toggleDetail(next, groupOf(next));
  }
}

async function decideRow(row, decision) {
  row.classList.add('pending');
  try {
    await postJson('/decisions', { pairs: [[row.dataset.a, row.dataset.b]], decision, reviewer: reviewer(),
      shown: decision ? [shown(row)] : [] });
    showDecision(row, decision, null);
    if (decision && row === state.current) advance(row);
    refreshDecisions().catch(showError);
  } catch (error) {
    showFailure(row, error, () => decideRow(row, decision));
    showError(error);
  } finally {
    row.classList.remove('pending');
  }
}

// How much of a pair is copied, from the segments /duplicates found: the copied
// seconds (the longer of the two sides' copied spans) at once, and each side's share
// once the videos' lengths are known. Kept on the row for the short-match filter.
function describeCopy(row, p, group) {
  const cell = row.querySelector('td.copied');
  if (!p.segments) { cell.textContent = ''; return; }
  const spansA = p.segments.map(s => [s.query_start, s.query_end]);
  const spansB = p.segments.map(s => [s.target_start, s.target_end]);
  const [copiedA, copiedB] = [copiedSeconds(spansA), copiedSeconds(spansB)];
  row.segments = p.segments.map(s => [s.query_start, s.query_end, s.target_start, s.target_end]);
  row.dataset.copied = String(Math.max(copiedA, copiedB));
  cell.textContent = p.segments.length ? 'copied ' + Math.max(copiedA, copiedB).toFixed(1) + ' s' : 'no copied segment found';
  Promise.all([record(group.video_ids[p.a]), record(group.video_ids[p.b])]).then(([a, b]) => {
    if (!a.duration || !b.duration) return;
    const shares = [copiedA / a.duration, copiedB / b.duration];
    row.dataset.share = String(Math.min(...shares));
    if (p.segments.length) {
      cell.textContent = 'copied ' + Math.max(copiedA, copiedB).toFixed(1) + ' s: ' +
        shares.map(x => Math.round(100 * x) + '%').join(' of a, ') + ' of b';
    }
    if (document.getElementById('filter-short').checked) applyFilters();
  }).catch(() => {});
}

function pairRow(p, group) {
  const row = element('tr', { class: 'pair', 'data-a': p.a, 'data-b': p.b, 'data-score': p.score === null ? '' : String(p.score) });
  const score = p.score === null ? 'joined by a reviewer' : 'score ' + p.score.toFixed(4);
  row.append(
    element('td', { class: 'path', text: p.a + ' ↔ ' + p.b }),
    element('td', { class: 'score', text: score }),
    element('td', { class: 'copied' }),
    element('td', { class: 'state' }),
    element('td', { class: 'actions' },
      element('button', { type: 'button', class: 'copy', 'data-decision': 'copy', text: 'copy (c)', onclick: () => decideRow(row, 'copy') }),
      element('button', { type: 'button', class: 'not_copy', 'data-decision': 'not_copy', text: 'not a copy (x)', onclick: () => decideRow(row, 'not_copy') }),
      element('button', { type: 'button', class: 'undo-row', text: 'undo (u)', onclick: () => decideRow(row, null) })),
    element('td', {}, element('button', { type: 'button', class: 'compare', text: 'see the copy (o)', onclick: () => toggleDetail(row, group) })));
  row.addEventListener('click', event => { if (event.target.tagName !== 'BUTTON') select(row, false); });
  describeCopy(row, p, group);
  if (p.decision) showDecision(row, p.decision, null);
  return row;
}

// --- a pair's detail: both videos at the copy, the numbers, the timelines, the heatmap
function copiedSeconds(spans) {
  let total = 0, reach = -Infinity;
  for (const [start, end] of [...spans].sort((x, y) => x[0] - y[0])) {
    const from = Math.max(start, reach);
    if (end > from) total += end - from;
    reach = Math.max(reach, end);
  }
  return total;
}

function timeline(duration, spans, label) {
  const bar = element('div', { class: 'timeline' });
  for (const [start, end] of spans) {
    bar.append(element('div', { class: 'segment',
      style: 'left:' + (100 * start / duration) + '%;width:' + Math.max(0.5, 100 * (end - start) / duration) + '%' }));
  }
  const copied = copiedSeconds(spans);
  const words = label + ': ' + copied.toFixed(1) + ' s of ' + clock(duration) + ' copied (' +
    Math.round(100 * copied / duration) + '%)' + (spans.length ? ' at ' + spans.map(([s, e]) => span(s, e)).join(', ') : '');
  return [element('div', { class: 'timeline-label', text: words }), bar];
}

function player(side, path, start, end) {
  const video = element('video', { class: 'player', 'data-side': side, controls: '', muted: '', preload: 'auto',
    playsinline: '', 'data-start': String(start), 'data-end': String(end) });
  video.muted = true;
  // Parked at the copy as soon as the file's length is known; stops at the copy's end in "play match".
  video.addEventListener('loadedmetadata', () => { video.currentTime = start; }, { once: true });
  video.addEventListener('timeupdate', () => {
    if (video.dataset.matching === 'true' && video.currentTime >= end) { video.pause(); video.dataset.matching = 'false'; }
  });
  return element('figure', { class: 'side' }, video, element('figcaption', { text: path + ' from ' + clock(start) }));
}

// Beside a player: thumbnails of its copied part (its start, middle and end, made from
// the file at those times) and the video's own, spread over its whole length: a long
// host's own rarely show the part that was copied.
const SEGMENT_THUMBS = 3;

function strips(side, id, info, start, end) {
  const times = Array.from({ length: SEGMENT_THUMBS }, (_, i) => start + (end - start) * i / (SEGMENT_THUMBS - 1));
  const copied = element('div', { class: 'thumbs segment-thumbs', 'data-side': side });
  const own = element('div', { class: 'thumbs own-thumbs', 'data-side': side });
  const fills = [];
  for (const t of times) {
    // Just inside the segment's end: its last frame, not the one after it.
    const ms = Math.max(0, Math.round(1000 * (t === end && end > start ? end - 0.05 : t)));
    const img = copied.appendChild(element('img', { alt: 'the copied part at ' + clock(ms / 1000), 'data-ms': String(ms) }));
    fills.push(imageUrl('/videos/' + id + '/at/' + ms + '.jpg').then(url => { img.src = url; }));
  }
  for (const url of info.thumbnails) {
    const img = own.appendChild(element('img', { alt: 'a frame of the whole video' }));
    fills.push(imageUrl(url).then(u => { img.src = u; }));
  }
  return [[element('div', { class: 'strip-label', text: 'copied part, ' + span(start, end) + ':' }), copied,
    element('div', { class: 'strip-label', text: 'the whole video:' }), own], Promise.all(fills)];
}

function playMatch(detail) {
  for (const video of detail.querySelectorAll('video.player')) {
    video.currentTime = Number(video.dataset.start);
    video.dataset.matching = 'true';
    video.play().catch(showError);
  }
}

async function fillDetail(detail, row, group) {
  const a = row.dataset.a, b = row.dataset.b;
  const ids = [group.video_ids[a], group.video_ids[b]];
  const [pair, recordA, recordB] = await Promise.all([api('/pairs/' + ids[0] + '/' + ids[1]).then(r => r.json()),
    record(ids[0]), record(ids[1])]);
  row.segments = pair.segments.map(s => [s.query_start, s.query_end, s.target_start, s.target_end]);
  const best = pair.segments.reduce((x, y) => (y.score > x.score ? y : x), pair.segments[0] || null);
  const threshold = pair.threshold.toFixed(2);
  const grouped = pair.score >= pair.threshold ? 'grouped' : 'below the threshold';
  detail.replaceChildren(
    element('p', { class: 'measure', text: 'score ' + pair.score.toFixed(4) + ' (' + grouped + '): pairs scoring at or above ' +
      threshold + ' are grouped, a threshold ' + (pair.threshold_calibrated ? 'calibrated on labelled pairs of this index'
        : 'by default (not calibrated on this index)') + '. The score is the fine similarity ' + pair.similarity.toFixed(4) +
      ' rescaled to 0..1; ' + pair.segments.length + ' copied segment(s).' }),
    element('div', { class: 'players' },
      player('a', a, best ? best.query_start : 0, best ? best.query_end : pair.durations[0]),
      player('b', b, best ? best.target_start : 0, best ? best.target_end : pair.durations[1])),
    element('button', { type: 'button', class: 'play-match', text: '▶ play match (p)', onclick: () => playMatch(detail) }),
    ...timeline(pair.durations[0], pair.segments.map(s => [s.query_start, s.query_end]), a),
    ...timeline(pair.durations[1], pair.segments.map(s => [s.target_start, s.target_end]), b));
  detail.querySelector('video[data-side="a"]').src = recordA.file;
  detail.querySelector('video[data-side="b"]').src = recordB.file;
  const sides = [['a', ids[0], recordA, best ? [best.query_start, best.query_end] : [0, pair.durations[0]]],
    ['b', ids[1], recordB, best ? [best.target_start, best.target_end] : [0, pair.durations[1]]]];
  const shown = [];
  for (const [side, id, info, [start, end]] of sides) {
    const [nodes, filled] = strips(side, id, info, start, end);
    detail.querySelector('video[data-side="' + side + '"]').closest('figure').append(...nodes);
    shown.push(filled);
  }
  const img = element('img', { class: 'heatmap', alt: 'similarity heatmap (axes in seconds)' });
  detail.append(img);
  img.src = await imageUrl(pair.heatmap);
  Promise.all(shown).catch(showError);  // a missing thumbnail leaves the players be
}

function toggleDetail(row, group) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains('detail-row')) { next.remove(); return null; }
  const detail = element('div', { class: 'detail', text: 'computing…' });
  const holder = element('tr', { class: 'detail-row', 'data-a': row.dataset.a, 'data-b': row.dataset.b },
    element('td', { colspan: '6' }, detail));
  row.after(holder);
  const retry = () => { holder.remove(); toggleDetail(row, group); };
  fillDetail(detail, row, group).catch(error => {
    detail.classList.add('failed');
    detail.replaceChildren(element('span', { text: 'could not show this pair: ' + (error.message || error) + ' ' }),
      element('button', { type: 'button', class: 'retry', text: 'retry', onclick: retry }));
  });
  return detail;
}

// --- groups
function representative(group) {
  const degree = new Map(group.videos.map(v => [v, 0]));
  for (const p of group.pairs) { degree.set(p.a, degree.get(p.a) + 1); degree.set(p.b, degree.get(p.b) + 1); }
  return group.videos.reduce((x, y) => (degree.get(y) > degree.get(x) ? y : x), group.videos[0]);
}

// What needs a human most first: undecided pairs nearest the threshold.
function urgency(p) {
  return [p.decision ? 1 : 0, p.score === null ? Infinity : Math.abs(p.score - state.threshold)];
}

function groupSection(group, number) {
  const section = element('section', { class: 'group', 'data-group': String(number) });
  const undoGroup = element('button', { type: 'button', class: 'undo-group', hidden: '' });
  section.append(element('h2', {}, 'Group ' + number + ' (' + group.videos.length + ' videos, ' + group.pairs.length + ' pairs)',
    element('button', { type: 'button', class: 'copy group-action', 'data-decision': 'copy', text: 'whole group: copy',
      onclick: () => groupAction(section, group, 'copy', undoGroup).catch(showError) }),
    element('button', { type: 'button', class: 'not_copy group-action', 'data-decision': 'not_copy', text: 'whole group: not a copy',
      onclick: () => groupAction(section, group, 'not_copy', undoGroup).catch(showError) }),
    undoGroup));
  const table = element('table', { class: 'pairs' });
  const ordered = [...group.pairs].sort((x, y) => {
    const [p, q] = [urgency(x), urgency(y)];
    return p[0] - q[0] || p[1] - q[1];
  });
  const big = group.videos.length > BIG_GROUP;
  const centre = big ? representative(group) : null;
  const later = [];
  for (const p of ordered) {
    const row = pairRow(p, group);
    if (big && p.a !== centre && p.b !== centre) { row.classList.add('later'); later.push(row); }
    table.append(row);
  }
  section.append(table);
  if (later.length) {
    // Each video against the representative first: n-1 rows, not every pair.
    table.before(element('p', { class: 'hint', text: 'Each video against ' + centre + ' first.' }));
    const more = element('button', { type: 'button', class: 'more-pairs', text: 'show the other ' + later.length + ' pairs (m)',
      onclick: () => showMore(section) });
    section.append(more);
  }
  const videos = element('details', { class: 'videos-box' }, element('summary', { text: 'the ' + group.videos.length + ' videos' }));
  if (!big) videos.open = true;
  const cards = element('div', { class: 'videos' });
  videos.append(cards);
  section.append(videos);
  for (const path of group.videos) {
    const card = cards.appendChild(element('div', { class: 'video', 'data-path': path }));
    videoCard(card, path, group.video_ids[path]).catch(showError);
  }
  return section;
}

function showMore(section) {
  section.dataset.expanded = 'true';
  const more = section.querySelector('button.more-pairs');
  if (more) more.remove();
  applyFilters();
  updateProgress();
}

async function groupAction(section, group, decision, undoGroup) {
  const rows = [...section.querySelectorAll('tr.pair')];
  const open = rows.filter(r => !r.dataset.decision).length;
  const words = decision === 'copy' ? 'a copy' : 'not a copy';
  if (!window.confirm('Mark the ' + open + ' undecided pair(s) of group ' + section.dataset.group + ' as ' + words + '? ' +
    (rows.length - open) + ' pair(s) already decided stay as they are. One undo reverts it all.')) return;
  const answer = await (await postJson('/decisions', { pairs: group.pairs.map(p => [p.a, p.b]), decision, bulk: true,
    reviewer: reviewer(), shown: rows.map(shown) })).json();
  const byPair = new Map(rows.map(r => [r.dataset.a + '\n' + r.dataset.b, r]));
  for (const d of answer.recorded) {
    const row = byPair.get(d.a + '\n' + d.b);
    if (row) showDecision(row, d.decision, answer.bulk, false);
  }
  applyFilters();
  updateProgress();
  undoGroup.hidden = false;
  undoGroup.textContent = 'undo the group action (' + answer.recorded.length + ' pairs)';
  undoGroup.onclick = () => undoBulk(answer.bulk, undoGroup).catch(showError);
  refreshDecisions().catch(showError);
}

async function undoBulk(action, button) {
  const answer = await (await api('/decisions/bulk/' + action, { method: 'DELETE' })).json();
  const byPair = new Map(allRows().map(r => [r.dataset.a + '\n' + r.dataset.b, r]));
  for (const d of answer.undone) {
    const row = byPair.get(d.a + '\n' + d.b);
    if (row && row.dataset.bulk === action) showDecision(row, null, null, false);
  }
  applyFilters();
  updateProgress();
  if (button) button.hidden = true;
  refreshDecisions().catch(showError);
}

// --- filters and progress
// A short match: its copied part under the stated seconds, or under the stated share
// of either video (a short clip inside a long host). Unknown lengths are not short.
function isShort(row) {
  if (row.dataset.copied === undefined) return false;
  const seconds = Number(document.getElementById('short-seconds').value);
  const share = Number(document.getElementById('short-share').value) / 100;
  return Number(row.dataset.copied) < seconds || (row.dataset.share !== undefined && Number(row.dataset.share) < share);
}

function applyFilters() {
  const undecided = document.getElementById('filter-undecided').checked;
  const low = document.getElementById('filter-low').checked;
  const short = document.getElementById('filter-short').checked;
  for (const row of allRows()) {
    const expanded = row.closest('section').dataset.expanded === 'true';
    const score = row.dataset.score === '' ? null : Number(row.dataset.score);
    // A filter of its own shows the pairs beyond a big group's first ones too.
    row.hidden = (row.classList.contains('later') && !expanded && !short) || (undecided && !!row.dataset.decision) ||
      (low && (score === null || score - state.threshold > LOW_MARGIN)) || (short && !isShort(row));
    const detail = row.nextElementSibling;
    if (detail && detail.classList.contains('detail-row')) detail.hidden = row.hidden;
  }
}

function updateProgress() {
  const rows = allRows();
  const decided = rows.filter(r => r.dataset.decision).length;
  document.getElementById('progress').textContent = decided + ' of ' + rows.length + ' pairs decided';
}

// --- the list of decisions
async function refreshDecisions() {
  decisionList(await (await api('/decisions')).json());
}

function decisionList(decisions) {
  const list = document.getElementById('decided');
  list.replaceChildren();
  for (const d of decisions) {
    const when = new Date(d.decided_at * 1000).toLocaleString();
    list.append(element('li', { class: 'decided', 'data-a': d.a, 'data-b': d.b, 'data-decision': d.decision },
      element('span', { class: 'decision ' + d.decision, text: d.decision === 'copy' ? 'copy' : 'not a copy' }),
      ' ' + d.a + ' ↔ ' + d.b + ' (' + when + (d.reviewer ? ', ' + d.reviewer : '') + (d.bulk ? ', group action' : '') + ') ',
      element('button', { type: 'button', class: 'undo', text: 'undo', onclick: () => undoListed(d).catch(showError) })));
  }
  if (!decisions.length) list.append(element('li', { text: 'none yet' }));
}

async function undoListed(d) {
  const row = rowOf(d.a, d.b);
  if (row) return decideRow(row, null);
  await postJson('/decisions', { pairs: [[d.a, d.b]], decision: null });
  await refreshDecisions();
}

// --- the keyboard
const KEYS = [
  [['j', 'ArrowDown'], 'next pair', () => move(1)],
  [['k', 'ArrowUp'], 'previous pair', () => move(-1)],
  [['c'], 'a copy', () => state.current && decideRow(state.current, 'copy')],
  [['x', 'n'], 'not a copy', () => state.current && decideRow(state.current, 'not_copy')],
  [['u'], 'undo this pair\'s decision', () => state.current && decideRow(state.current, null)],
  [['o', 'Enter'], 'open or close the detail', () => state.current && toggleCurrent()],
  [['p'], 'play the match (opens the detail)', () => state.current && playCurrent()],
  [['m'], 'show the rest of this group\'s pairs', () => state.current && showMore(state.current.closest('section'))],
  [['?'], 'this help', () => toggleHelp()],
];

function groupOf(row) {
  return state.groups[Number(row.closest('section').dataset.group) - 1];
}

function toggleCurrent() { toggleDetail(state.current, groupOf(state.current)); }

function playCurrent() {
  const row = state.current;
  let holder = row.nextElementSibling;
  if (!(holder && holder.classList.contains('detail-row'))) { toggleDetail(row, groupOf(row)); holder = row.nextElementSibling; }
  const detail = holder.querySelector('.detail');
  if (detail.querySelector('video.player')) { playMatch(detail); return; }
  // Still computing: play once the players are there.
  const waiting = new MutationObserver(() => {
    if (detail.querySelector('video.player')) { waiting.disconnect(); playMatch(detail); }
  });
  waiting.observe(detail, { childList: true });
}

function toggleHelp() {
  const help = document.getElementById('help');
  help.hidden = !help.hidden;
}

function helpOverlay() {
  const help = document.getElementById('help');
  const table = element('table', {});
  for (const [keys, what] of KEYS) {
    table.append(element('tr', {}, element('td', {}, ...keys.map(k => element('kbd', { text: k }))), element('td', { text: what })));
  }
  help.append(element('h2', { text: 'Keyboard' }), table,
    element('p', { class: 'hint', text: 'After a decision the next undecided pair is selected. Esc or ? closes this.' }));
}

document.addEventListener('keydown', event => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest('input, textarea, select, video')) return;
  if (event.key === 'Escape') { document.getElementById('help').hidden = true; return; }
  const found = KEYS.find(([keys]) => keys.includes(event.key));
  if (!found) return;
  // Enter on a focused button is that button's own click.
  if (event.key === 'Enter' && event.target.tagName === 'BUTTON') return;
  event.preventDefault();
  found[2]();
});

// --- search by upload
async function searchUpload(event) {
  event.preventDefault();
  const file = document.getElementById('search-file').files[0];
  const out = document.getElementById('search-results');
  if (!file) { out.textContent = 'choose a video file first'; return; }
  out.textContent = 'searching with ' + file.name + '…';
  const form = new FormData();
  form.append('video', file);
  form.append('k', '10');
  try {
    const answer = await (await api('/search', { method: 'POST', body: form })).json();
    const list = element('ol', {});
    for (const r of answer.results) list.append(element('li', { class: 'search-result', text: r.path + ' · score ' + r.score.toFixed(4) }));
    out.replaceChildren(element('span', { text: answer.results.length + ' result(s) for ' + file.name }), list);
  } catch (error) {
    out.textContent = 'search failed: ' + (error.message || error);
  }
}

// --- the page
async function load() {
  const result = await (await api('/duplicates?segments=true')).json();
  state.threshold = result.threshold;
  state.groups = result.groups;
  const main = document.getElementById('groups');
  main.replaceChildren(...result.groups.map((group, i) => groupSection(group, i + 1)));
  decisionList(result.decisions);
  applyFilters();
  updateProgress();
  select(visibleRows().find(r => !r.dataset.decision) || visibleRows()[0] || null, false);
  const videos = result.groups.reduce((n, g) => n + g.videos.length, 0);
  document.getElementById('summary').textContent = result.groups.length + ' group(s), ' + videos +
    ' videos; pairs scoring at or above ' + result.threshold.toFixed(2) + ' are grouped';
  document.body.dataset.loaded = 'true';
}

async function exportCsv() {
  const blob = await (await api('/decisions.csv')).blob();
  const link = element('a', { href: URL.createObjectURL(blob), download: 'dns-decisions.csv' });
  document.body.append(link);
  link.click();
  link.remove();
}

document.getElementById('token-form').addEventListener('submit', event => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById('token').value);
  document.getElementById('token-form').hidden = true;
  document.getElementById('error').hidden = true;
  load().catch(showError);
});
document.getElementById('export').addEventListener('click', () => exportCsv().catch(showError));
document.getElementById('search').addEventListener('submit', event => searchUpload(event));
for (const id of ['filter-undecided', 'filter-low', 'filter-short', 'short-seconds', 'short-share']) {
  document.getElementById(id).addEventListener('change', applyFilters);
}
const named = document.getElementById('reviewer');
named.value = localStorage.getItem(REVIEWER_KEY) || '';
named.addEventListener('change', () => localStorage.setItem(REVIEWER_KEY, named.value.trim()));
helpOverlay();
load().catch(showError);
