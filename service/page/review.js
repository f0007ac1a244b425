// The review page: the groups of /duplicates with thumbnails, duration and frame size,
// each pair's copied segments on a timeline and its heatmap, and copy / not-a-copy
// decisions that go to POST /decisions. With a token, it is asked once and kept in
// sessionStorage; every request sends it as "Authorization: Bearer ...", images too
// (fetched, then shown from blob URLs), so no cookie is involved.
'use strict';

const TOKEN_KEY = 'dns-token';

async function api(url, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = Object.assign({}, options.headers || {});
  if (token) headers['Authorization'] = 'Bearer ' + token;
  const response = await fetch(url, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    document.getElementById('token-form').hidden = false;
    throw new Error('this service needs its token');
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = JSON.stringify((await response.json()).detail); } catch (e) { /* not JSON */ }
    throw new Error(url + ': ' + response.status + ' ' + detail);
  }
  return response;
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

function clock(seconds) {
  if (seconds === null || seconds === undefined) return '?';
  const minutes = Math.floor(seconds / 60);
  return minutes + ':' + (seconds - 60 * minutes).toFixed(1).padStart(4, '0');
}

function showError(error) {
  const box = document.getElementById('error');
  box.textContent = String(error.message || error);
  box.hidden = false;
}

async function decide(pairs, decision) {
  await api('/decisions', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ pairs, decision }),
  });
  await load();
}

function decisionButtons(pairs, label) {
  return [
    element('button', { type: 'button', class: 'copy', 'data-decision': 'copy', text: label + 'copy',
      onclick: () => decide(pairs, 'copy').catch(showError) }),
    element('button', { type: 'button', class: 'not_copy', 'data-decision': 'not_copy', text: label + 'not a copy',
      onclick: () => decide(pairs, 'not_copy').catch(showError) }),
  ];
}

async function videoCard(path, id) {
  const card = element('div', { class: 'video', 'data-path': path });
  const thumbs = element('div', { class: 'thumbs' });
  card.append(thumbs, element('div', { class: 'path', text: path }));
  const record = await (await api('/videos/' + id)).json();
  const size = record.width ? record.width + '×' + record.height : 'size unknown';
  card.append(element('div', { class: 'meta', text: clock(record.duration) + ' · ' + size + ' · ' + record.frames + ' frames sampled' }));
  if (record.thumbnails.length === 0) {
    thumbs.append(element('div', { class: 'placeholder', text: 'no thumbnails (indexed before they existed)' }));
  }
  for (const url of record.thumbnails) {
    const img = element('img', { alt: 'a frame of ' + path });
    thumbs.append(img);
    img.src = await imageUrl(url);
  }
  return card;
}

function timeline(duration, spans, label) {
  const bar = element('div', { class: 'timeline' });
  for (const [start, end] of spans) {
    bar.append(element('div', { class: 'segment', title: clock(start) + '–' + clock(end),
      style: 'left:' + (100 * start / duration) + '%;width:' + Math.max(0.5, 100 * (end - start) / duration) + '%' }));
  }
  return [element('div', { class: 'timeline-label', text: label + ' (' + clock(duration) + ')' }), bar];
}

async function pairDetail(cell, a, b, ids) {
  const open = cell.querySelector('.detail');
  if (open) { open.remove(); return; }
  const detail = element('div', { class: 'detail', text: 'computing…' });
  cell.append(detail);
  const pair = await (await api('/pairs/' + ids[a] + '/' + ids[b])).json();
  detail.textContent = 'fine similarity ' + pair.similarity.toFixed(4) + ', ' + pair.segments.length + ' copied segment(s)';
  detail.append(...timeline(pair.durations[0], pair.segments.map(s => [s.query_start, s.query_end]), a));
  detail.append(...timeline(pair.durations[1], pair.segments.map(s => [s.target_start, s.target_end]), b));
  const img = element('img', { class: 'heatmap', alt: 'similarity heatmap' });
  detail.append(img);
  img.src = await imageUrl(pair.heatmap);
}

async function groupSection(group, number) {
  const pairs = group.pairs.map(p => [p.a, p.b]);
  const section = element('section', { class: 'group', 'data-group': String(number) });
  section.append(element('h2', {}, 'Group ' + number + ' (' + group.videos.length + ' videos)',
    ...decisionButtons(pairs, 'whole group: ')));
  const videos = element('div', { class: 'videos' });
  section.append(videos);
  const table = element('table', { class: 'pairs' });
  for (const p of group.pairs) {
    const row = element('tr', { class: 'pair', 'data-a': p.a, 'data-b': p.b });
    const actions = element('td', { class: 'actions' }, ...decisionButtons([[p.a, p.b]], ''));
    const compare = element('td', {});
    compare.append(element('button', { type: 'button', class: 'compare', text: 'timeline & heatmap',
      onclick: () => pairDetail(compare, p.a, p.b, group.video_ids).catch(showError) }));
    const score = p.score === null ? '—' : p.score.toFixed(4);
    const state = p.decision ? element('span', { class: 'decision ' + p.decision, text: 'decided: ' + p.decision }) : '';
    row.append(element('td', { class: 'path', text: p.a + ' ↔ ' + p.b }), element('td', { text: 'score ' + score }),
      element('td', {}, state), actions, compare);
    table.append(row);
  }
  section.append(table);
  for (const path of group.videos) videos.append(await videoCard(path, group.video_ids[path]));
  return section;
}

function decisionList(decisions) {
  const list = document.getElementById('decided');
  list.replaceChildren();
  for (const d of decisions) {
    const when = new Date(d.decided_at * 1000).toLocaleString();
    list.append(element('li', { class: 'decided', 'data-a': d.a, 'data-b': d.b, 'data-decision': d.decision },
      element('span', { class: 'decision ' + d.decision, text: d.decision === 'copy' ? 'copy' : 'not a copy' }),
      ' ' + d.a + ' ↔ ' + d.b + ' (' + when + ') ',
      element('button', { type: 'button', class: 'undo', text: 'undo', onclick: () => decide([[d.a, d.b]], null).catch(showError) })));
  }
  if (!decisions.length) list.append(element('li', { text: 'none yet' }));
}

async function load() {
  const result = await (await api('/duplicates')).json();
  const main = document.getElementById('groups');
  const sections = [];
  for (const [i, group] of result.groups.entries()) sections.push(await groupSection(group, i + 1));
  main.replaceChildren(...sections);
  decisionList(result.decisions);
  const videos = result.groups.reduce((n, g) => n + g.videos.length, 0);
  document.getElementById('summary').textContent =
    result.groups.length + ' group(s), ' + videos + ' videos, at threshold ' + result.threshold.toFixed(4);
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
load().catch(showError);
