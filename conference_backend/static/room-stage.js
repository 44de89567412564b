// The stage: the main window (pinned person, shared screen or active speaker), the
// filmstrip or the tile grid (one page at a time), the self view and the alone card.
import { $, action, el, icon, avatar, qualityIcon, fill } from './room-ui.js';

const NARROW = '(max-width: 640px)';
const PHONE_THUMB_H = 78;
const PAGER = 36; // room kept for the two page buttons and the page count

export class Stage {
  constructor(t, cfg, onChange) {
    this.t = t;
    this.video = cfg.kind === 'video';
    this.visible = Math.max(1, Number(cfg.visibleThumbnails) || 9);
    this.onChange = onChange; // the view changed (pin, page, view): others may care
    this.people = new Map(); // id -> P, the others, in the order they came in
    this.me = null;
    this.slots = [];
    this.sub = null;
    this.speaker = null;
    this.screen = null; // who shares a screen
    this.speaking = new Set();
    this.pinned = null;
    this.view = this.video ? 'speaker' : 'tiles';
    this.page = 0;
    this.tiles = new Map(); // id -> tile parts
    this.quality = new Map(); // id -> good | fair | poor
    this.shown = []; // ids on the current page, in order
    this.box = $('tiles');
    document.body.dataset.view = this.view;
    let pending = false;
    this.observer = new ResizeObserver(() => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => { pending = false; this.render(); });
    });
    this.observer.observe($('stage'));
    const prev = action('page-prev');
    const next = action('page-next');
    prev.onclick = () => this.turn(-1);
    next.onclick = () => this.turn(1);
  }

  setSlots(slots, sub) { this.slots = slots; this.sub = sub; this.render(); }

  setView(view) {
    if (!this.video) return;
    this.view = view;
    this.page = 0;
    document.body.dataset.view = view;
    const b = action('tiles');
    b.setAttribute('aria-pressed', String(view === 'tiles'));
    b.querySelector('.tip').firstChild.textContent = view === 'tiles' ? this.t.view_speaker : this.t.view_tiles;
    b.querySelector('use').setAttribute('href', view === 'tiles' ? '#i-speaker-view' : '#i-grid');
    this.render();
    this.onChange();
  }

  pin(id) {
    this.pinned = id && this.people.has(id) ? id : null;
    if (this.pinned && this.view === 'tiles') { this.setView('speaker'); return; }
    this.render();
    this.onChange();
  }

  turn(step) { this.page += step; this.render(); this.onChange(); }

  // Where a person's camera arrives: for the main window the main slot (high layer)
  // first, for a thumbnail its own slot (low layer) first; else the other one.
  cameraSlot(id, forMain = false) {
    const find = (role) => this.slots.find((s) => s.participant === id && s.source === 'camera' && s.role === role);
    const [first, second] = forMain ? ['main', 'camera'] : ['camera', 'main'];
    return find(first) || find(second) || null;
  }

  stream(slot) { return slot && this.sub ? this.sub.stream(slot.mid) : null; }

  mainChoice() {
    if (this.pinned && this.people.has(this.pinned)) return { id: this.pinned, source: 'camera' };
    // Someone shares a screen (the server said so): it takes the main window; its stream
    // is the main slot once the server has routed it there.
    if (this.screen && this.people.has(this.screen)) {
      const slot = this.slots.find((s) => s.role === 'main' && s.source === 'screen' && s.participant === this.screen);
      return { id: this.screen, source: 'screen', slot: slot || this.cameraSlot(this.screen, true) };
    }
    if (this.speaker && this.people.has(this.speaker)) return { id: this.speaker, source: 'camera' };
    const main = this.slots.find((s) => s.role === 'main' && s.participant && this.people.has(s.participant));
    if (main) return { id: main.participant, source: 'camera' };
    const first = this.people.keys().next();
    return first.done ? null : { id: first.value, source: 'camera' };
  }

  render() {
    if (!this.me) return;
    if (this.video) this.renderMain();
    this.renderTiles();
    this.renderSelf();
    const alone = $('alone');
    alone.hidden = this.people.size > 0 || Boolean($('share'));
    if (this.onRender) this.onRender();
  }

  renderMain() {
    const main = $('main');
    const box = $('main-tile');
    const choice = this.view === 'speaker' ? this.mainChoice() : null;
    const p = choice ? this.people.get(choice.id) : null;
    const slot = choice ? (choice.slot || this.cameraSlot(choice.id, true)) : null;
    const stream = this.stream(slot);
    if (main.srcObject !== stream) main.srcObject = stream;
    main.dataset.speaker = p ? p.name : '';
    // What the main window really plays (a screen asked for shows the camera meanwhile).
    main.dataset.source = slot ? slot.source : choice ? choice.source : '';
    main.dataset.participantId = p ? p.id : '';
    const label = !p ? '' : choice.source === 'screen' ? fill(this.t.screen_of, { name: p.name })
      : p.name + (this.pinned === p.id ? ` · ${this.t.pinned}` : '');
    $('speaker-name').textContent = label;
    $('speaker-name').hidden = !label;
    main.setAttribute('aria-label', label || this.t.main_window);
    box.dataset.speaking = String(Boolean(p && this.speaking.has(p.id)));
    const pic = $('main-avatar');
    const noPicture = p && choice.source === 'camera' && (!slot || !p.video);
    pic.hidden = !noPicture;
    if (noPicture && pic.dataset.name !== p.name) {
      pic.replaceChildren(...avatar(p.name, p.phone).childNodes);
      pic.dataset.name = p.name;
    }
    let unpin = box.querySelector('.unpin');
    if (this.pinned && p && this.pinned === p.id) {
      if (!unpin) {
        unpin = el('button', { type: 'button', class: 'mini unpin', dataset: { action: 'unpin' } }, icon('pin'));
        unpin.onclick = () => this.pin(null);
        box.append(unpin);
      }
      unpin.setAttribute('aria-label', fill(this.t.unpin, { name: p.name }));
      unpin.title = unpin.getAttribute('aria-label');
    } else if (unpin) unpin.remove();
  }

  // Everyone on the stage, in the order they came in; audio rooms show oneself too.
  list() {
    const out = [...this.people.values()];
    if (!this.video && this.me) out.unshift({ ...this.me, self: true });
    return out;
  }

  pageSize(count) {
    const stage = $('stage').getBoundingClientRect();
    const narrow = matchMedia(NARROW).matches;
    if (this.view === 'tiles') return narrow || stage.height < 420 ? 4 : 9;
    const strip = $('strip').getBoundingClientRect();
    const fit = (room) => {
      if (narrow) return Math.floor((room + 6) / (PHONE_THUMB_H * 16 / 9 + 6));
      return Math.floor((room + 6) / (strip.width * 9 / 16 + 6));
    };
    const length = narrow ? strip.width : strip.height;
    const all = Math.max(1, Math.min(this.visible, fit(length)));
    if (count <= all) return all;
    return Math.max(1, Math.min(this.visible, fit(length - 2 * PAGER - (narrow ? 0 : 20))));
  }

  renderTiles() {
    const list = this.list();
    const size = this.pageSize(list.length);
    const pages = Math.max(1, Math.ceil(list.length / size));
    this.page = Math.max(0, Math.min(this.page, pages - 1));
    const shown = list.slice(this.page * size, this.page * size + size);
    const prev = action('page-prev');
    const next = action('page-next');
    prev.hidden = next.hidden = pages <= 1;
    prev.disabled = this.page === 0;
    next.disabled = this.page >= pages - 1;
    const of = $('page-of');
    of.hidden = pages <= 1;
    of.textContent = fill(this.t.page_of, { page: this.page + 1, pages });
    const wanted = shown.map((p) => this.tile(p).fig);
    const same = wanted.length === this.box.children.length
      && wanted.every((node, i) => this.box.children[i] === node);
    if (!same) this.box.replaceChildren(...wanted);
    for (const id of [...this.tiles.keys()]) {
      if (!shown.some((p) => p.id === id)) {
        const gone = this.tiles.get(id);
        if (gone.video) gone.video.srcObject = null;
        this.tiles.delete(id);
      }
    }
    this.shown = shown.map((p) => p.id);
    if (this.view === 'tiles' || !this.video) this.grid(shown.length);
  }

  // The largest tiles that fit the stage, ratio kept: 3x3 at most (2x2 on phones).
  grid(count) {
    const n = Math.max(1, count);
    const box = this.box.getBoundingClientRect();
    const narrow = matchMedia(NARROW).matches;
    const gap = 8;
    const ratio = box.height > box.width * 1.2 ? 3 / 4 : 16 / 9;
    const most = narrow || box.height < 420 ? 2 : 3;
    let best = { cols: 1, width: 0 };
    for (let cols = 1; cols <= Math.min(n, most); cols += 1) {
      const rows = Math.ceil(n / cols);
      if (rows > most) continue;
      const width = Math.min((box.width - gap * (cols - 1)) / cols, ((box.height - gap * (rows - 1)) / rows) * ratio);
      if (width > best.width) best = { cols, width };
    }
    this.box.style.setProperty('--cols', String(best.cols));
    this.box.style.setProperty('--tile-w', `${Math.max(80, Math.floor(best.width))}px`);
    this.box.style.setProperty('--tile-ratio', ratio === 16 / 9 ? '16 / 9' : '3 / 4');
  }

  tile(p) {
    let t = this.tiles.get(p.id);
    if (!t) {
      const fig = el('figure', { class: 'tile', role: 'listitem', dataset: { tile: p.id } });
      const name = el('span');
      const micOff = icon('mic-off', 'mic-off');
      const hand = icon('hand', 'hand');
      const quality = qualityIcon();
      quality.setAttribute('role', 'img');
      const caption = el('figcaption', { class: 'tile-name' }, micOff, hand, name, quality);
      fig.append(caption);
      let pin = null;
      if (this.video && !p.self) {
        pin = el('button', { type: 'button', class: 'mini pin', dataset: { action: 'pin' } }, icon('pin'));
        pin.onclick = () => this.pin(this.pinned === p.id ? null : p.id);
        fig.append(pin);
      }
      t = { fig, name, micOff, hand, quality, pin, video: null, avatar: null };
      this.tiles.set(p.id, t);
    }
    const slot = this.video && !p.self ? this.cameraSlot(p.id) : null;
    if (slot) {
      if (!t.video) {
        t.video = el('video', { autoplay: true, playsInline: true, muted: true });
        t.fig.prepend(t.video);
      }
      const stream = this.stream(slot);
      if (stream && t.video.srcObject !== stream) t.video.srcObject = stream;
    } else if (t.video) {
      t.video.srcObject = null;
      t.video.remove();
      t.video = null;
    }
    const noPicture = !t.video || !p.video;
    if (noPicture && (!t.avatar || t.avatar.dataset.name !== p.name)) {
      if (t.avatar) t.avatar.remove();
      t.avatar = avatar(p.name, p.phone);
      t.avatar.dataset.name = p.name;
      t.fig.insertBefore(t.avatar, t.fig.querySelector('figcaption'));
    } else if (!noPicture && t.avatar) {
      t.avatar.remove();
      t.avatar = null;
    }
    const speaking = p.self ? this.meSpeaking : this.speaking.has(p.id);
    const states = {
      muted: String(!p.audio),
      hand: String(Boolean(p.hand)),
      speaking: String(Boolean(speaking)),
      camera: p.video ? 'on' : 'off',
    };
    Object.assign(t.fig.dataset, states, { person: p.name });
    if (!this.video) t.fig.dataset.participant = p.name; // audio rooms: the tile names them
    if (t.video) Object.assign(t.video.dataset, states, { participant: p.name });
    const q = this.quality.get(p.id);
    if (q) t.fig.dataset.quality = q; else delete t.fig.dataset.quality;
    t.quality.hidden = !q;
    if (q) t.quality.setAttribute('aria-label', this.t[`quality_${q}`]);
    t.name.textContent = p.self ? `${p.name} (${this.t.you})` : p.name;
    t.micOff.toggleAttribute('hidden', Boolean(p.audio));
    t.hand.toggleAttribute('hidden', !p.hand);
    const said = [p.name];
    if (p.phone) said.push(this.t.by_phone);
    if (!p.audio) said.push(this.t.muted);
    if (p.hand) said.push(this.t.hand_raised);
    if (speaking) said.push(this.t.speaking);
    t.fig.setAttribute('aria-label', said.join(', '));
    if (t.pin) {
      const pinned = this.pinned === p.id;
      t.pin.setAttribute('aria-pressed', String(pinned));
      t.pin.setAttribute('aria-label', fill(pinned ? this.t.unpin : this.t.pin, { name: p.name }));
      t.pin.title = t.pin.getAttribute('aria-label');
    }
    return t;
  }

  renderSelf() {
    const box = $('self-tile');
    if (!box || !this.me) return;
    box.dataset.speaking = String(Boolean(this.meSpeaking && this.me.audio));
    $('self-avatar').hidden = Boolean(this.me.video && $('self').srcObject);
    if (!$('self-avatar').firstChild) $('self-avatar').append(...avatar(this.me.name).childNodes);
  }

  setQuality(id, q) {
    if (this.quality.get(id) === q) return;
    this.quality.set(id, q);
    if (this.shown.includes(id)) this.tile(this.people.get(id) || { ...this.me, self: true });
  }

  // What the page shows now and how wide (CSS px): the server sends only that.
  shows() {
    let main = null;
    if (this.video && this.view === 'speaker') {
      const choice = this.mainChoice();
      const width = Math.round($('main-tile').getBoundingClientRect().width);
      if (choice) main = { id: choice.id, source: choice.source, width };
    }
    const tiles = this.video ? this.shown.filter((id) => this.tiles.has(id)).map((id) => ({
      id, width: Math.round(this.tiles.get(id).fig.getBoundingClientRect().width),
    })) : [];
    return { main, tiles };
  }
}

// The self view: mirrored, in a corner; moved to the next corner or hidden on request.
export function wireSelfView(t) {
  const box = $('self-tile');
  if (!box) return;
  const corners = ['bl', 'tl', 'tr', 'br'];
  const saved = sessionStorage.getItem('visio-self-corner');
  if (corners.includes(saved)) box.dataset.corner = saved;
  action('self-move').onclick = () => {
    const next = corners[(corners.indexOf(box.dataset.corner) + 1) % corners.length];
    box.dataset.corner = next;
    sessionStorage.setItem('visio-self-corner', next);
  };
  const showButton = action('self-show');
  action('self-hide').onclick = () => { box.hidden = true; showButton.hidden = false; showButton.focus(); };
  showButton.onclick = () => { box.hidden = false; showButton.hidden = true; action('self-hide').focus(); };
  showButton.textContent = t.self_show;
}
