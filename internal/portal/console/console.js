'use strict';
// The operations console of Sagittarius. It reads only the platform's public
// HAL APIs, through the gateway that serves this page (same origin), and
// refreshes every 2 seconds. No library, no CDN.
//
// Sign-in seam: the console will sign the operator in through the platform's
// identity provider (OpenID Connect, authorization code with PKCE) and keep
// the access token in sessionStorage under TOKEN_KEY. Every request already
// sends that token, when present, as a bearer token; until the sign-in is
// wired, requests go without one.
const TOKEN_KEY = 'sagittarius.access_token';
const STATES = ['stuck', 'in_progress', 'awaiting_dispatch', 'awaiting_delivery', 'completed', 'untracked'];
const REFRESH_MS = 2000;

let services = []; // [{dir, name}] from the gateway root
let selected = ''; // the journey shown in detail

function headers() {
  const h = {Accept: 'application/hal+json'};
  const t = sessionStorage.getItem(TOKEN_KEY);
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

async function getJSON(path) {
  const r = await fetch(path, {headers: headers()});
  if (!r.ok) {
    const e = new Error(path + ': ' + r.status);
    e.status = r.status;
    throw e;
  }
  return r.json();
}

// el builds an element; children are nodes or strings (always text, never HTML).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'onclick') e.addEventListener('click', v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
  return e;
}

function fill(tbody, rows, columns, empty) {
  tbody.replaceChildren();
  if (rows.length === 0) {
    tbody.append(el('tr', {}, el('td', {colspan: String(columns)}, empty)));
    return;
  }
  for (const r of rows) tbody.append(r);
}

function embedded(doc, rel) {
  const e = (doc && doc._embedded) || {};
  if (rel) return e[rel] || [];
  for (const v of Object.values(e)) if (Array.isArray(v)) return v;
  return [];
}

function ago(iso) {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return s + ' s ago';
  if (s < 7200) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}

function short(id) { return id && id.length > 13 ? id.slice(0, 8) + '…' : (id || ''); }
function badge(state) { return el('span', {class: 'state ' + state}, state.replace('_', ' ')); }
function eventName(type) { return (type || '').split('.').pop(); }

function journeyLink(j) {
  return el('a', {'data-journey': j.id, title: j.id, onclick: () => showJourney(j.id)}, short(j.id));
}

async function loadServices() {
  const root = await getJSON('/');
  services = [];
  for (const [rel, link] of Object.entries(root._links || {})) {
    if (rel === 'self' || rel === 'docs' || Array.isArray(link) || link.type) continue;
    services.push({dir: rel, name: link.title || rel});
  }
  services.sort((a, b) => a.dir.localeCompare(b.dir));
}

async function refreshStuck() {
  const doc = await getJSON('/journeys/v1/journeys?state=stuck&size=100');
  const js = embedded(doc, 'journeys').sort((a, b) => (a.since || '').localeCompare(b.since || ''));
  const count = document.getElementById('stuck-count');
  count.textContent = String(doc.total);
  count.className = 'count' + (doc.total === 0 ? ' zero' : '');
  fill(document.getElementById('stuck-rows'), js.map(j => el('tr', {class: 'stuck-journey'},
    el('td', {}, journeyLink(j)), el('td', {}, j.kind), el('td', {}, el('strong', {}, j.stuck_step || '')),
    el('td', {}, (j.waiting_for || []).map(eventName).join(' or ')), el('td', {}, ago(j.since)),
    el('td', {}, el('code', {}, short(((j.ids || {}).order_id || [])[0]))))), 6, 'No journey is stuck.');
}

async function refreshJourneys() {
  const q = new URLSearchParams({size: '20'});
  const state = document.getElementById('state-filter').value;
  const order = document.getElementById('order-filter').value.trim();
  if (state) q.set('state', state);
  if (order) q.set('order_id', order);
  let doc;
  try {
    doc = await getJSON('/journeys/v1/journeys?' + q);
  } catch (e) {
    if (e.status === 400) {
      fill(document.getElementById('journey-rows'), [], 6, 'The filter is not valid (an order id is a UUID).');
      return;
    }
    throw e;
  }
  fill(document.getElementById('journey-rows'), embedded(doc, 'journeys').map(j => el('tr', {class: 'journey'},
    el('td', {}, journeyLink(j)), el('td', {}, j.kind || '—'), el('td', {}, badge(j.state)),
    el('td', {}, (j.waiting_for || []).map(eventName).join(' or ')), el('td', {}, ago(j.started_at)),
    el('td', {}, String(j.event_count)))), 6, 'No journey.');
}

async function refreshFailed() {
  const rows = [];
  const missing = [];
  await Promise.all(services.filter(s => s.dir !== 'journeys').map(async s => {
    try {
      const doc = await getJSON('/' + s.dir + '/v1/failed-message-groups?size=20');
      for (const g of embedded(doc)) {
        rows.push(el('tr', {class: 'failed-group'}, el('td', {}, s.name), el('td', {}, g.type || g.event_type || ''),
          el('td', {}, g.reason || g.fingerprint || ''), el('td', {}, String(g.count ?? g.messages ?? '')),
          el('td', {}, ago(g.last_failed_at || g.last_failure_at || g.last_failure))));
      }
    } catch (e) {
      missing.push(s.dir);
    }
  }));
  const empty = missing.length === services.length - 1 ? 'No service serves failed messages yet.' :
    'No failed message.' + (missing.length ? ' (No failed-messages API: ' + missing.sort().join(', ') + '.)' : '');
  fill(document.getElementById('failed-rows'), rows, 5, empty);
}

async function showJourney(id) {
  selected = id;
  const j = await getJSON('/journeys/v1/journeys/' + encodeURIComponent(id));
  document.getElementById('detail').hidden = false;
  document.getElementById('detail-id').textContent = j.id;
  document.getElementById('detail-state').replaceChildren(badge(j.state),
    j.waiting_for && j.waiting_for.length ? ' waiting for ' + j.waiting_for.map(eventName).join(' or ') + ' since ' + ago(j.since) : '');
  const links = document.getElementById('detail-links');
  links.replaceChildren();
  for (const rel of ['order', 'customer', 'reservation', 'payment', 'shipment', 'trace']) {
    const l = (j._links || {})[rel];
    if (l && l.href) links.append(el('a', {href: l.href, target: '_blank', rel: 'noopener'}, rel), ' ');
  }
  const byID = {};
  for (const e of embedded(j, 'events')) byID[e.uuid] = e;
  fill(document.getElementById('timeline-rows'), embedded(j, 'events').map(e => el('tr', {class: 'timeline-event'},
    el('td', {}, e.fired_at), el('td', {}, el('strong', {}, eventName(e.type))), el('td', {}, e.publisher),
    el('td', {}, e.causation_id ? eventName((byID[e.causation_id] || {}).type) || short(e.causation_id) : ''),
    el('td', {}, e.actor || ''))), 5, 'No event.');
}

async function refresh() {
  const parts = [refreshStuck(), refreshJourneys(), refreshFailed()];
  if (selected) parts.push(showJourney(selected));
  const results = await Promise.allSettled(parts);
  const failed = results.filter(r => r.status === 'rejected').map(r => r.reason.message);
  document.getElementById('updated').textContent = failed.length ? 'error: ' + failed.join('; ') :
    'updated ' + new Date().toLocaleTimeString();
  document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
}

async function start() {
  const select = document.getElementById('state-filter');
  for (const s of STATES) select.append(el('option', {value: s}, s.replace('_', ' ')));
  select.addEventListener('change', refresh);
  document.getElementById('order-filter').addEventListener('change', refresh);
  document.getElementById('who').textContent = sessionStorage.getItem(TOKEN_KEY) ? 'signed in' : 'not signed in';
  try {
    await loadServices();
  } catch (e) {
    document.getElementById('updated').textContent = 'error: ' + e.message;
  }
  await refresh();
  setInterval(refresh, REFRESH_MS);
}

start();
