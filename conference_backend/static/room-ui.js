// Small helpers shared by the room page's modules: lookups, states, words, icons.

export const $ = (role, root = document) => root.querySelector(`[data-role="${role}"]`);
export const action = (name, root = document) => root.querySelector(`[data-action="${name}"]`);

// "{name} a rejoint" + {name: "Ana"} → "Ana a rejoint"
export function fill(text, vars = {}) {
  let out = text || '';
  for (const [k, v] of Object.entries(vars)) out = out.split(`{${k}}`).join(String(v));
  return out;
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('aria-') || k === 'role' || k === 'title') node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const SVG = 'http://www.w3.org/2000/svg';

export function icon(name, cls = '') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('aria-hidden', 'true');
  if (cls) svg.setAttribute('class', cls);
  const use = document.createElementNS(SVG, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

// Three bars coloured by the tile's data-quality (CSS): inline, so each bar can be styled.
export function qualityIcon() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  for (const [i, x, y, h] of [[1, 3, 15, 6], [2, 10, 10, 11], [3, 17, 4, 17]]) {
    const r = document.createElementNS(SVG, 'rect');
    for (const [k, v] of Object.entries({ class: `b${i}`, x, y, width: 4, height: h, rx: 1 })) {
      r.setAttribute(k, String(v));
    }
    svg.append(r);
  }
  return el('span', { class: 'quality' }, svg);
}

export function initials(name) {
  const words = String(name || '?').replace(/[^\p{L}\p{N}\s'-]/gu, ' ').trim().split(/\s+/);
  if (!words[0]) return '?';
  const first = words[0][0];
  const last = words.length > 1 ? words[words.length - 1][0] : '';
  return (first + last).toUpperCase();
}

// Dark enough for white initials at 4.5:1 and more, picked from the name so it stays put.
const PALETTE = ['#1a73e8', '#a142f4', '#c5221f', '#188038', '#b06000', '#007b83', '#d01884', '#5f6368'];
export function avatarColor(name) {
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

export function avatar(name, phone = false) {
  const b = el('b', { text: initials(name) });
  b.style.setProperty('--avatar', avatarColor(name));
  const box = el('div', { class: 'avatar', 'aria-hidden': 'true' }, b);
  if (phone) box.append(icon('phone', 'phone'));
  return box;
}

// Polite announcements for screen readers: joins, leaves, hands, messages, knocks.
export function announce(text) {
  const region = $('announcer');
  if (!region || !text) return;
  const line = el('p', { text });
  region.append(line);
  setTimeout(() => line.remove(), 15000);
  while (region.children.length > 5) region.firstChild.remove();
}

export function notice(t, key, extra = '', vars = {}) {
  const box = $('notice');
  let text = key ? (t[key] || key) + extra : '';
  text = fill(text, Object.fromEntries(Object.entries(vars).filter(([, v]) => v !== undefined)));
  box.textContent = text;
  box.hidden = !text;
  box.dataset.notice = key || '';
}

// The page's states (docs: ARCHITECTURE.md "Join page"). "knocking" is the lobby.
export function show(state) {
  document.body.dataset.roomState = state === 'knocking' ? 'lobby' : state;
  const visible = {
    waiting: ['waiting', 'prejoin'],
    prejoin: ['prejoin'],
    knocking: ['lobby-wait'],
    joined: ['room'],
    closed: ['closed'],
    error: [],
  }[state] || [];
  for (const role of ['waiting', 'prejoin', 'lobby-wait', 'room', 'closed']) {
    const node = $(role);
    if (node) node.hidden = !visible.includes(role);
  }
  const intro = $('intro');
  if (intro) intro.hidden = state === 'joined';
}
