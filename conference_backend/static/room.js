// The room page: signalling over WebSocket (docs/signaling.md), states, reconnection.
// What is shown lives in room-stage.js (stage), room-panels.js (panels) and
// room-controls.js (toolbar, pre-join screen, keyboard).
import { Publisher, Subscriber } from './room-media.js';
import { Devices } from './room-devices.js';
import { Stage, wireSelfView } from './room-stage.js';
import { Panels } from './room-panels.js';
import { Controls } from './room-controls.js';
import { watchQuality, grade } from './room-stats.js';
import { $, show, notice, announce, fill } from './room-ui.js';

const cfg = JSON.parse(document.getElementById('room-config').textContent);
const t = cfg.t;
const video = cfg.kind === 'video';
const storeKey = `visio-session:${cfg.socket}`;

const devices = new Devices(t, video);
const stage = new Stage(t, cfg, () => renderAll());
let viewSent = '';
let viewTimer = null;
// What this page shows, for the server to send only that (docs/signaling.md, "view"):
// again after every change, a little later so that a resize sends one message.
stage.onRender = () => {
  clearTimeout(viewTimer);
  viewTimer = setTimeout(() => {
    const msg = document.hidden || !joined ? { type: 'view', main: null, tiles: [] } : { type: 'view', ...stage.shows() };
    const text = JSON.stringify(msg);
    if (text !== viewSent && ws && ws.readyState === WebSocket.OPEN && joined) { viewSent = text; send(msg); }
  }, 150);
};
document.addEventListener('visibilitychange', () => stage.onRender());
const panels = new Panels(t, video, {
  admit: (id) => send({ type: 'admit', id }),
  refuse: (id) => send({ type: 'refuse', id }),
  remove: (id) => send({ type: 'remove', id }),
  pin: (id) => { stage.pin(stage.pinned === id ? null : id); panels.close(); },
  lowerHand: (id) => send({ type: 'hand', up: false, id }),
  raiseHand: (up) => send({ type: 'hand', up }),
});

let ws = null;
let joinMsg = null; // what (re)connecting sends
let joined = false;
let finished = false; // closed for good: never reconnect
let backoff = 500;
let clockOffset = 0; // server time minus local time, ms
let waitTimer = null;
let publisher = null;
let subscriber = null;
let host = false;
const handSince = new Map(); // id -> when the hand went up (the list's order)

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

const controls = new Controls(t, cfg, devices, stage, panels, {
  send,
  join: (msg) => join(msg),
  leave: () => { send({ type: 'leave' }); finish('left'); if (ws) ws.close(); },
  publisher: () => publisher,
  media: () => {
    if (stage.me) Object.assign(stage.me, controls.mediaState());
    send({ type: 'media', ...controls.mediaState() });
    renderAll();
  },
});

function connect() {
  if (finished) return;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  ws = new WebSocket(`${scheme}://${location.host}${cfg.socket}`);
  ws.onopen = () => { if (joinMsg) send(joinMsg); };
  ws.onmessage = (e) => handle(JSON.parse(e.data));
  ws.onclose = (e) => {
    dropPeers();
    // Nothing to say (no join asked yet, or a refused one): reconnect when there is.
    if (finished || e.code === 4000 || !joinMsg) return;
    if (joined) { notice(t, 'reconnecting'); document.body.dataset.connection = 'reconnecting'; }
    // Backoff with jitter: a restarted backend is not hit by every page at once.
    setTimeout(connect, backoff + Math.random() * backoff / 2);
    backoff = Math.min(backoff * 2, 2000); // a lost node or worker: back within seconds
  };
}

function dropPeers() {
  if (publisher) publisher.close();
  if (subscriber) subscriber.close();
  publisher = null;
  subscriber = null;
}

function join(msg) {
  joinMsg = msg;
  if (ws && ws.readyState === WebSocket.OPEN) send(msg); else if (!ws || ws.readyState > 1) connect();
}

function countdown(opensAt) {
  const target = new Date(opensAt).getTime();
  clearInterval(waitTimer);
  const tick = () => {
    const left = Math.max(0, target - (Date.now() + clockOffset));
    const s = Math.ceil(left / 1000);
    const text = s >= 3600 ? `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, '0')} min`
      : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
    $('countdown').textContent = fill(t.opens_in, { countdown: text });
    $('countdown').dataset.seconds = String(s);
    // Re-ask now and then: a reschedule moves the opening, and the server knows.
    if (joinMsg && s > 0 && s % 30 === 0) send(joinMsg);
    if (left <= 0) {
      clearInterval(waitTimer);
      if (joinMsg) send(joinMsg); else show('prejoin');
    }
  };
  tick();
  waitTimer = setInterval(tick, 1000);
}

async function startMedia(iceServers) {
  // The subscriber first: the server's offer may arrive while the camera starts.
  subscriber = new Subscriber(iceServers, send, () => { renderAudio(); stage.render(); });
  stage.setSlots(stage.slots, subscriber);
  const local = await devices.open();
  // Closed (removed, ended…) while the camera started: keep the closing notice.
  if (finished) { devices.stop(); return; }
  if (local.notice) notice(t, local.notice);
  if (local.stream && video) $('self').srcObject = local.stream;
  if (!local.stream) return; // listen only
  publisher = new Publisher(iceServers, send);
  const mic = local.stream.getAudioTracks()[0];
  const cam = local.stream.getVideoTracks()[0];
  if (mic) publisher.add('microphone', mic);
  if (cam && video) { publisher.add('camera', cam); publisher.addLow(cam); }
  if (controls.screenTrack) publisher.add('screen', controls.screenTrack);
  await publisher.negotiate();
  controls.applyLocal();
  send({ type: 'media', ...controls.mediaState() });
}

function finish(reason) {
  finished = true;
  joined = false;
  clearInterval(waitTimer);
  sessionStorage.removeItem(storeKey);
  dropPeers();
  devices.stop();
  controls.stopShare(false);
  panels.close();
  show('closed');
  document.body.dataset.closedReason = reason;
  notice(t, `closed_${reason}`);
  const again = document.querySelector('[data-action="rejoin"]');
  again.hidden = reason !== 'left';
  if (reason === 'changed') setTimeout(() => location.reload(), 1500);
}

function renderAudio() {
  if (!subscriber) return;
  const sink = $('audio-sink');
  for (const slot of stage.slots) {
    if (slot.kind !== 'audio') continue;
    const stream = subscriber.stream(slot.mid);
    let a = sink.querySelector(`audio[data-mid="${slot.mid}"]`);
    if (!a) {
      a = document.createElement('audio');
      a.autoplay = true;
      a.dataset.mid = slot.mid;
      sink.append(a);
      devices.applySink(a);
    }
    if (stream && a.srcObject !== stream) {
      a.srcObject = stream;
      a.play().catch(() => controls.soundBlocked());
    }
  }
}

function renderAll() {
  stage.render();
  panels.renderPeople(stage.me, stage.people, stage.speaking, { host, pinned: stage.pinned, handSince });
  const hostInside = [...stage.people.values()].some((p) => p.host);
  panels.setCanAdmit(host || !hostInside);
  controls.renderHand(Boolean(stage.me && stage.me.hand));
}

function upsert(p) {
  if (stage.me && p.id === stage.me.id) {
    // Our own state as the server sees it: the hand (media flags are ours to say).
    stage.me.hand = Boolean(p.hand);
    renderAll();
    return;
  }
  const before = stage.people.get(p.id);
  if (p.hand && !(before && before.hand)) {
    handSince.set(p.id, Date.now());
    announce(fill(t.announce_hand, { name: p.name }));
  }
  if (!p.hand) handSince.delete(p.id);
  if (!before) announce(fill(t.announce_joined, { name: p.name }));
  stage.people.set(p.id, p);
  renderAll();
}

function removePerson(id) {
  const p = stage.people.get(id);
  stage.people.delete(id);
  stage.speaking.delete(id);
  handSince.delete(id);
  if (stage.pinned === id) stage.pinned = null;
  if (p) announce(fill(t.announce_left, { name: p.name }));
  renderAll();
}

async function handle(msg) {
  switch (msg.type) {
    case 'waiting':
      clockOffset = new Date(msg.serverTime).getTime() - Date.now();
      show('waiting');
      countdown(msg.opensAt);
      break;
    case 'lobby':
      show('knocking');
      break;
    case 'joined':
      joined = true;
      backoff = 500;
      clearInterval(waitTimer);
      sessionStorage.setItem(storeKey, JSON.stringify({ session: msg.session }));
      viewSent = ''; // a new connection: the server knows nothing of this page's view yet
      joinMsg = { type: 'join', resume: msg.session };
      host = Boolean(msg.host); // may remove others (the organizer, invitees)
      stage.me = { ...msg.you, ...controls.mediaState(), hand: false, host };
      stage.people = new Map(msg.participants.map((p) => [p.id, p]));
      for (const p of msg.participants) if (p.hand && !handSince.has(p.id)) handSince.set(p.id, Date.now());
      stage.speaker = msg.speaker;
      stage.screen = msg.screen || null;
      stage.speaking = new Set(msg.speaking || []);
      panels.clearKnocks();
      msg.knocks.forEach((k) => panels.knock(k));
      panels.clearChat();
      msg.chat.forEach((line) => panels.chat(line, msg.you.id, false));
      devices.moveToSettings();
      show('joined');
      if (document.body.dataset.connection === 'reconnecting') {
        notice(t, null);
        document.body.dataset.connection = 'up';
      }
      renderAll();
      await startMedia(msg.iceServers);
      break;
    case 'offer':
      if (subscriber) subscriber.offer(msg.sdp);
      break;
    case 'publish-answer':
      if (publisher) publisher.answered(msg.sdp);
      break;
    case 'slots':
      stage.setSlots(msg.slots, subscriber);
      renderAudio();
      break;
    case 'layers':
      if (publisher) publisher.layers(Boolean(msg.high), Boolean(msg.low));
      break;
    case 'participant-joined':
    case 'participant-updated':
      upsert(msg.participant);
      break;
    case 'participant-left':
      removePerson(msg.id);
      break;
    case 'speaker':
      stage.speaker = msg.id;
      stage.render();
      break;
    case 'speaking':
      stage.speaking = new Set(msg.ids);
      renderAll();
      break;
    case 'screen':
      stage.screen = msg.id || null;
      // Someone shares: the screen takes the main window (as Jitsi and Meet do).
      if (msg.id && stage.me && msg.id !== stage.me.id) {
        stage.pinned = null;
        if (stage.view === 'tiles') stage.setView('speaker'); else renderAll();
      } else renderAll();
      break;
    case 'knock':
      panels.knock(msg);
      break;
    case 'knock-resolved':
      panels.knockResolved(msg.id);
      break;
    case 'chat':
      panels.chat(msg, stage.me && stage.me.id);
      break;
    case 'recording':
      controls.recording(Boolean(msg.on));
      break;
    case 'closed':
      finish(msg.reason);
      break;
    case 'error': {
      const key = msg.reason === 'not-allowed' && msg.what && msg.what !== 'remove'
        ? `err_not-allowed-${msg.what}` : `err_${msg.reason}`;
      notice(t, key, '', { seconds: msg.retryAfter, max: msg.max });
      const again = ['bad-credentials', 'name-required', 'cool-down', 'busy', 'unavailable'];
      if (!joined && again.includes(msg.reason)) {
        joinMsg = null;
        show('prejoin');
      }
      break;
    }
    default:
      break;
  }
}

watchQuality(
  () => ({ subscriber, publisher }),
  (mid, r) => {
    const slot = stage.slots.find((s) => s.mid === mid);
    const p = slot && slot.participant ? stage.people.get(slot.participant) : null;
    if (!p || (slot.kind === 'video' && slot.role !== 'camera' && slot.source !== 'camera')) return;
    const expected = r.kind !== 'video' || !p.video ? 0 : slot.layer === 'low' ? 15 : 30;
    stage.setQuality(p.id, grade(r.loss, r.fps, expected));
  },
  (loss) => { if (stage.me) stage.setQuality(stage.me.id, grade(loss, null, 0)); },
);

function start() {
  const saved = JSON.parse(sessionStorage.getItem(storeKey) || 'null');
  if (cfg.state === 'closed') {
    finish('ended');
  } else if (saved && saved.session) {
    join({ type: 'join', resume: saved.session }); // a reload: straight back in
  } else {
    controls.prejoin(cfg.state === 'waiting', () => {
      if (cfg.state === 'waiting' && cfg.opensAt) {
        clockOffset = new Date(cfg.serverTime).getTime() - Date.now();
        countdown(cfg.opensAt);
      }
    });
  }
}

wireSelfView(t);
devices.onSwitch = async (source, track) => { if (publisher) await publisher.replace(source, track); };
devices.onLevel = (level) => {
  const speaking = level > 0.45;
  if (speaking !== stage.meSpeaking) { stage.meSpeaking = speaking; stage.render(); }
};
controls.wire();
controls.askConsent(start);
