// What the person sees: people, thumbnails, the main window, knocks, chat, notices.

const $ = (role) => document.querySelector(`[data-role="${role}"]`);

export class RoomView {
  constructor(t, video, actions) {
    this.t = t;
    this.video = video;
    this.actions = actions; // { admit(id), refuse(id), remove(id) }
    this.host = false; // the organizer or an invitee: may remove others
    this.people = new Map(); // id -> {id, name, audio, video}
    this.me = null;
    this.slots = [];
    this.speaking = new Set();
    this.soundBlocked = false;
  }

  notice(key, extra = '', vars = {}) {
    const el = $('notice');
    let text = key ? (this.t[key] || key) + extra : '';
    for (const [name, value] of Object.entries(vars)) {
      if (value !== undefined) text = text.replace(`{${name}}`, String(value));
    }
    el.textContent = text;
    el.hidden = !text;
    el.dataset.notice = key || '';
  }

  reset(me, participants) {
    this.me = me;
    this.people = new Map(participants.map((p) => [p.id, p]));
    this.renderPeople();
  }

  upsert(p) { this.people.set(p.id, p); this.renderPeople(); this.renderSlots(); }

  remove(id) { this.people.delete(id); this.speaking.delete(id); this.renderPeople(); this.renderSlots(); }

  renderPeople() {
    // Rows are kept and updated in place: speaking changes re-render often, and a
    // row (or its "remove" button) rebuilt under the pointer would lose the click.
    const list = $('people');
    this.rows = this.rows || new Map(); // id -> { li, label, remove }
    let mine = list.querySelector('li.me');
    if (!mine) { mine = document.createElement('li'); mine.className = 'me'; }
    mine.textContent = `${this.me ? this.me.name : ''} (${this.t.you})`;
    const wanted = [mine];
    for (const id of [...this.rows.keys()]) if (!this.people.has(id)) this.rows.delete(id);
    for (const p of this.people.values()) {
      let row = this.rows.get(p.id);
      if (!row) {
        const li = document.createElement('li');
        const label = document.createElement('span');
        li.append(label);
        row = { li, label, remove: null };
        this.rows.set(p.id, row);
      }
      const { li } = row;
      // Audio rooms have no video: the tile itself names the participant.
      li.dataset[this.video ? 'person' : 'participant'] = p.name;
      li.dataset.speaking = String(this.speaking.has(p.id));
      li.dataset.muted = String(!p.audio);
      li.classList.toggle('speaking', this.speaking.has(p.id));
      const state = [];
      if (!p.audio) state.push(this.t.muted);
      if (this.speaking.has(p.id)) state.push(this.t.speaking);
      row.label.textContent = p.name + (state.length ? ` — ${state.join(', ')}` : '');
      if (this.host && !p.organizer && !row.remove) {
        const remove = document.createElement('button');
        remove.type = 'button';
        remove.dataset.action = 'remove';
        remove.textContent = this.t.remove;
        remove.onclick = () => this.actions.remove(p.id);
        li.append(' ', remove);
        row.remove = remove;
      }
      if (row.remove) {
        row.remove.setAttribute('aria-label', this.t.remove_label.replace('{name}', p.name));
      }
      wanted.push(li);
    }
    if (!this.people.size) {
      const li = list.querySelector('li.alone') || document.createElement('li');
      li.className = 'alone';
      li.textContent = this.t.alone;
      wanted.push(li);
    }
    const same = wanted.length === list.children.length
      && wanted.every((el, i) => list.children[i] === el);
    if (!same) list.replaceChildren(...wanted);
  }

  setSpeaking(ids) { this.speaking = new Set(ids); this.renderPeople(); }

  setSlots(slots, subscriber) {
    this.slots = slots;
    this.subscriber = subscriber;
    this.renderSlots();
  }

  renderSlots() {
    const sub = this.subscriber;
    if (!sub) return;
    const sink = $('audio-sink');
    for (const slot of this.slots) {
      const stream = sub.stream(slot.mid);
      if (slot.kind === 'audio') {
        let el = sink.querySelector(`audio[data-mid="${slot.mid}"]`);
        if (!el) {
          el = document.createElement('audio');
          el.autoplay = true;
          el.dataset.mid = slot.mid;
          sink.append(el);
        }
        if (stream && el.srcObject !== stream) {
          el.srcObject = stream;
          el.play().catch(() => this.blockSound());
        }
      }
    }
    if (!this.video) return;
    const main = $('main');
    const mainSlot = this.slots.find((s) => s.role === 'main');
    if (mainSlot) {
      const stream = sub.stream(mainSlot.mid);
      if (stream && main.srcObject !== stream) main.srcObject = stream;
      main.dataset.speaker = mainSlot.name || '';
      main.dataset.source = mainSlot.source || ''; // "camera" or "screen"
      $('speaker-name').textContent = mainSlot.name || '';
    }
    const thumbs = $('thumbs');
    const shown = new Set();
    // The camera in the main window comes once: its thumbnail shows the main stream.
    const tiles = this.slots.filter((s) => s.role === 'camera' && s.participant);
    if (mainSlot && mainSlot.participant && mainSlot.source === 'camera'
        && !tiles.some((s) => s.participant === mainSlot.participant)) tiles.push(mainSlot);
    for (const slot of tiles) {
      shown.add(slot.participant);
      let fig = thumbs.querySelector(`figure[data-id="${slot.participant}"]`);
      if (!fig) {
        fig = document.createElement('figure');
        fig.dataset.id = slot.participant;
        const v = document.createElement('video');
        v.autoplay = true; v.playsInline = true; v.muted = true;
        fig.append(v, document.createElement('figcaption'));
        thumbs.append(fig);
      }
      const v = fig.querySelector('video');
      const p = this.people.get(slot.participant);
      v.dataset.participant = slot.name;
      // What others see of this person's controls (mute, camera off), readable by tests too.
      v.dataset.muted = String(Boolean(p && !p.audio));
      v.dataset.camera = p && !p.video ? 'off' : 'on';
      fig.querySelector('figcaption').textContent = slot.name;
      fig.classList.toggle('camera-off', Boolean(p && !p.video));
      const stream = sub.stream(slot.mid);
      if (stream && v.srcObject !== stream) v.srcObject = stream;
    }
    for (const fig of thumbs.querySelectorAll('figure[data-id]')) {
      if (!shown.has(fig.dataset.id)) fig.remove();
    }
  }

  blockSound() {
    // Autoplay refused (no click on this page yet, e.g. after a reload): one click fixes it.
    const btn = document.querySelector('[data-action="sound"]');
    btn.hidden = false;
    btn.onclick = () => {
      for (const a of $('audio-sink').querySelectorAll('audio')) a.play().catch(() => {});
      btn.hidden = true;
    };
  }

  knock(k) {
    const box = $('knocks');
    if (box.querySelector(`[data-knock="${k.id}"]`)) return;
    const div = document.createElement('div');
    div.dataset.knock = k.id;
    div.dataset.name = k.name;
    const p = document.createElement('span');
    p.textContent = this.t.knock.replace('{name}', k.name);
    const admit = document.createElement('button');
    admit.type = 'button'; admit.dataset.action = 'admit'; admit.textContent = this.t.admit;
    admit.onclick = () => this.actions.admit(k.id);
    const refuse = document.createElement('button');
    refuse.type = 'button'; refuse.dataset.action = 'refuse'; refuse.textContent = this.t.refuse;
    refuse.onclick = () => this.actions.refuse(k.id);
    div.append(p, admit, refuse);
    box.append(div);
  }

  knockResolved(id) {
    const el = $('knocks').querySelector(`[data-knock="${id}"]`);
    if (el) el.remove();
  }

  chat(line) {
    const li = document.createElement('li');
    const who = document.createElement('strong');
    who.textContent = `${line.name} `;
    const time = document.createElement('time');
    time.dateTime = line.at;
    time.textContent = new Date(line.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const text = document.createElement('span');
    text.textContent = ` ${line.text}`;
    li.append(who, time, text);
    $('chat').append(li);
    li.scrollIntoView({ block: 'nearest' });
  }

  fillDevices(list, current) {
    for (const [role, kind] of [['mic-select', 'audioinput'], ['cam-select', 'videoinput']]) {
      const sel = $(role);
      if (!sel) continue;
      sel.replaceChildren();
      for (const d of list.filter((x) => x.kind === kind)) {
        const o = document.createElement('option');
        o.value = d.deviceId;
        o.textContent = d.label || d.deviceId.slice(0, 8);
        o.selected = d.deviceId === current[kind];
        sel.append(o);
      }
    }
  }
}

export function show(state) {
  // "knocking" is the lobby's second step: the contract only knows "lobby".
  document.body.dataset.roomState = state === 'knocking' ? 'lobby' : state;
  document.body.dataset.lobby = { lobby: 'form', knocking: 'knocking' }[state] || '';
  const visible = {
    waiting: ['waiting', 'prejoin'],
    lobby: ['prejoin'],
    knocking: ['lobby-wait'],
    joined: ['room'],
    closed: [],
    error: [],
  }[state] || [];
  for (const role of ['waiting', 'prejoin', 'lobby-wait', 'room']) {
    const el = $(role);
    if (el) el.hidden = !visible.includes(role);
  }
  const intro = $('intro');
  if (intro) intro.hidden = state === 'joined';
}

export { $ };
