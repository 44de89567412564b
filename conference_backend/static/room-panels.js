// Side panels over the stage: Discussion (chat, unread counter), Participants (everyone,
// hands first, pin / lower hand / remove, and the lobby's admit / refuse), Paramètres.
import { $, action, el, icon, fill, announce, initials, avatarColor } from './room-ui.js';

const PANELS = { chat: 'chat-panel', people: 'people-panel', settings: 'settings-panel' };

export class Panels {
  constructor(t, video, actions) {
    this.t = t;
    this.video = video;
    this.actions = actions; // { admit, refuse, remove, pin, lowerHand, raiseHand }
    this.current = null;
    this.opener = null;
    this.unread = 0;
    this.rows = new Map(); // id -> row parts, kept: a rebuilt row would lose a click
    this.knocks = new Map(); // id -> {id, name, phone}
    this.canAdmit = false;
    for (const b of document.querySelectorAll('[data-action="close-panel"]')) b.onclick = () => this.close();
  }

  open(name) {
    this.current = name;
    document.body.dataset.panel = name;
    for (const [key, role] of Object.entries(PANELS)) {
      $(role).hidden = key !== name;
      const b = action(key);
      if (b) b.setAttribute('aria-expanded', String(key === name));
    }
    if (name === 'chat') { this.unread = 0; this.badges(); }
    this.opener = action(name);
    const first = name === 'chat' ? $('chat-form').elements.text
      : $(PANELS[name]).querySelector('[data-action="close-panel"]');
    if (first) first.focus();
  }

  close() {
    if (!this.current) return;
    const back = this.opener;
    this.current = null;
    document.body.dataset.panel = '';
    for (const [key, role] of Object.entries(PANELS)) {
      $(role).hidden = true;
      const b = action(key);
      if (b) b.setAttribute('aria-expanded', 'false');
    }
    if (back) back.focus();
  }

  toggle(name) { if (this.current === name) this.close(); else this.open(name); }

  // Discussion ---------------------------------------------------------------
  chat(line, me, live = true) {
    const time = el('time', { dateTime: line.at });
    time.textContent = new Date(line.at).toLocaleTimeString(document.documentElement.lang || [], { hour: '2-digit', minute: '2-digit' });
    const li = el('li', {}, el('strong', { text: line.name }), time, el('span', { class: 'text', text: line.text }));
    $('chat').append(li);
    $('chat-empty').hidden = true;
    li.scrollIntoView({ block: 'nearest' });
    if (!live || line.from === me) return;
    if (this.current !== 'chat') { this.unread += 1; this.badges(); }
    announce(fill(this.t.announce_message, { name: line.name, text: line.text }));
  }

  clearChat() { $('chat').replaceChildren(); $('chat-empty').hidden = false; }

  badges() {
    const unread = $('unread');
    unread.hidden = !this.unread;
    unread.textContent = String(this.unread);
    const chat = action('chat');
    if (this.unread) chat.setAttribute('aria-label', `${this.t.chat_toggle}, ${fill(this.t.unread, { count: this.unread })}`);
    else chat.removeAttribute('aria-label');
    const waiting = this.canAdmit ? this.knocks.size : 0;
    const count = $('knock-count');
    count.hidden = !waiting;
    count.textContent = String(waiting);
    const people = action('people');
    if (waiting) people.setAttribute('aria-label', `${this.t.people_toggle}, ${fill(this.t.knocks_waiting, { count: waiting })}`);
    else people.removeAttribute('aria-label');
  }

  // Participants ---------------------------------------------------------------
  renderPeople(me, people, speaking, { host, pinned, handSince }) {
    const list = $('people');
    $('people-title').textContent = fill(this.t.people_count, { count: people.size + (me ? 1 : 0) });
    const everyone = me ? [{ ...me, self: true }, ...people.values()] : [...people.values()];
    // Raised hands first, in the order they went up; then everyone as they came in.
    const order = everyone.map((p, i) => [p, i]).sort(([a, i], [b, j]) => {
      if (a.self !== b.self) return a.self ? -1 : 1;
      const ha = a.hand ? (handSince.get(a.id) || 0) : Infinity;
      const hb = b.hand ? (handSince.get(b.id) || 0) : Infinity;
      return ha - hb || i - j;
    }).map(([p]) => p);
    for (const id of [...this.rows.keys()]) if (!everyone.some((p) => p.id === id)) this.rows.delete(id);
    const wanted = order.map((p) => this.row(p, speaking.has(p.id), host, pinned).li);
    const same = wanted.length === list.children.length && wanted.every((n, i) => list.children[i] === n);
    if (!same) list.replaceChildren(...wanted);
  }

  row(p, speaking, host, pinned) {
    let r = this.rows.get(p.id);
    if (!r) {
      const who = el('span', { class: 'who' });
      const micOff = icon('mic-off', 'mic-off');
      const hand = icon('hand', 'hand');
      const face = el('b', { class: 'face', 'aria-hidden': 'true', text: initials(p.name) });
      face.style.setProperty('--avatar', avatarColor(p.name));
      const li = el('li', { class: p.self ? 'me' : '' }, face, who, micOff, hand);
      r = { li, who, micOff, hand, pin: null, lower: null, remove: null };
      if (this.video && !p.self) {
        r.pin = el('button', { type: 'button', dataset: { action: 'pin' } }, icon('pin'));
        r.pin.onclick = () => this.actions.pin(p.id);
        li.append(r.pin);
      }
      r.lower = el('button', { type: 'button', dataset: { action: 'lower-hand' } });
      r.lower.onclick = () => (p.self ? this.actions.raiseHand(false) : this.actions.lowerHand(p.id));
      li.append(r.lower);
      this.rows.set(p.id, r);
    }
    const { li } = r;
    Object.assign(li.dataset, {
      person: p.name,
      muted: String(!p.audio),
      hand: String(Boolean(p.hand)),
      speaking: String(speaking),
    });
    const tags = [];
    if (p.self) tags.push(this.t.you);
    if (p.organizer) tags.push(this.t.organizer);
    if (p.phone) tags.push(this.t.by_phone);
    r.who.replaceChildren(p.name, ...(tags.length ? [' ', el('span', { class: 'tag', text: `(${tags.join(', ')})` })] : []));
    r.micOff.toggleAttribute('hidden', Boolean(p.audio));
    r.hand.toggleAttribute('hidden', !p.hand);
    const said = [p.name, ...tags];
    if (!p.audio) said.push(this.t.muted);
    if (p.hand) said.push(this.t.hand_raised);
    if (speaking) said.push(this.t.speaking);
    li.setAttribute('aria-label', said.join(', '));
    if (r.pin) {
      r.pin.setAttribute('aria-pressed', String(pinned === p.id));
      r.pin.setAttribute('aria-label', fill(pinned === p.id ? this.t.unpin : this.t.pin, { name: p.name }));
      r.pin.title = r.pin.getAttribute('aria-label');
    }
    r.lower.hidden = !p.hand || !(p.self || host);
    r.lower.textContent = p.self ? this.t.hand_lower : fill(this.t.lower_hand_of, { name: p.name });
    if (host && !p.self && !p.organizer && !r.remove) {
      r.remove = el('button', { type: 'button', dataset: { action: 'remove' }, text: this.t.remove });
      r.remove.onclick = () => this.actions.remove(p.id);
      li.append(r.remove);
    }
    if (r.remove) r.remove.setAttribute('aria-label', fill(this.t.remove_label, { name: p.name }));
    return r;
  }

  // The lobby: toasts on the stage and a list in the Participants panel --------
  knock(k) {
    if (this.knocks.has(k.id)) return;
    this.knocks.set(k.id, k);
    this.renderKnocks();
    if (this.canAdmit) announce(fill(this.t.announce_knock, { name: k.name }));
  }

  knockResolved(id) { this.knocks.delete(id); this.renderKnocks(); }

  clearKnocks() { this.knocks.clear(); this.renderKnocks(); }

  setCanAdmit(can) {
    if (can === this.canAdmit) return;
    this.canAdmit = can;
    this.renderKnocks();
  }

  renderKnocks() {
    const toasts = $('knocks');
    const entries = $('lobby-entries');
    const shown = this.canAdmit ? [...this.knocks.values()] : [];
    for (const [box, attr] of [[toasts, 'knock'], [entries, 'lobby']]) {
      for (const node of [...box.children]) if (!shown.some((k) => k.id === node.dataset[attr])) node.remove();
      for (const k of shown) {
        if (box.querySelector(`[data-${attr}="${CSS.escape(k.id)}"]`)) continue;
        const admit = el('button', { type: 'button', dataset: { action: 'admit' }, text: this.t.admit });
        admit.onclick = () => this.actions.admit(k.id);
        const refuse = el('button', { type: 'button', dataset: { action: 'refuse' }, text: this.t.refuse });
        refuse.onclick = () => this.actions.refuse(k.id);
        const text = el('span', { text: attr === 'knock' ? fill(this.t.knock, { name: k.name }) : k.name });
        const node = el(attr === 'knock' ? 'div' : 'li', { dataset: { [attr]: k.id, name: k.name } }, text, admit, refuse);
        if (attr === 'knock') node.setAttribute('role', 'group');
        box.append(node);
      }
    }
    $('lobby-list').hidden = !shown.length;
    this.badges();
  }
}
