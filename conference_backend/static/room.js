// The room page: signalling over WebSocket (docs/signaling.md), states, reconnection.
import { localMedia, devices, Publisher, Subscriber } from './room-media.js';
import { RoomView, show, $ } from './room-ui.js';

const cfg = JSON.parse(document.getElementById('room-config').textContent);
const t = cfg.t;
const video = cfg.kind === 'video';
const storeKey = `visio-session:${cfg.socket}`;
const view = new RoomView(t, video, {
  admit: (id) => send({ type: 'admit', id }),
  refuse: (id) => send({ type: 'refuse', id }),
  remove: (id) => send({ type: 'remove', id }),
});

let ws = null;
let joinMsg = null; // what (re)connecting sends
let joined = false;
let finished = false; // closed for good: never reconnect
let backoff = 500;
let clockOffset = 0; // server time minus local time, ms
let waitTimer = null;
let local = null; // { stream, notice }
let publisher = null;
let subscriber = null;
let audioOn = true;
let videoOn = true;
let screenTrack = null;

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

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
    if (joined) view.notice('reconnecting');
    // Backoff with jitter: a restarted backend is not hit by every page at once.
    setTimeout(connect, backoff + Math.random() * backoff / 2);
    backoff = Math.min(backoff * 2, 4000);
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
    $('countdown').textContent = t.opens_in.replace('{countdown}', text);
    $('countdown').dataset.seconds = String(s);
    // Re-ask now and then: a reschedule moves the opening, and the server knows.
    if (joinMsg && s > 0 && s % 30 === 0) send(joinMsg);
    if (left <= 0) {
      clearInterval(waitTimer);
      if (joinMsg) send(joinMsg); else show('lobby');
    }
  };
  tick();
  waitTimer = setInterval(tick, 1000);
}

async function startMedia(iceServers) {
  // The subscriber first: the server's offer may arrive while the camera starts.
  subscriber = new Subscriber(iceServers, send, () => view.renderSlots());
  view.setSlots(view.slots, subscriber);
  if (!local) {
    local = await localMedia(video);
    // Closed (removed, ended…) while the camera started: keep the closing notice.
    if (finished) { stopLocal(); return; }
    view.notice(local.notice);
    if (local.stream && video) $('self').srcObject = local.stream;
    view.fillDevices(await devices(), currentDevices());
  }
  if (finished || !local.stream) return; // closed meanwhile, or listen only
  publisher = new Publisher(iceServers, send);
  const mic = local.stream.getAudioTracks()[0];
  const cam = local.stream.getVideoTracks()[0];
  if (mic) { mic.enabled = audioOn; publisher.add('microphone', mic); }
  if (cam && video) { cam.enabled = videoOn; publisher.add('camera', cam); }
  if (screenTrack) publisher.add('screen', screenTrack);
  await publisher.negotiate();
  send({ type: 'media', audio: Boolean(mic) && audioOn, video: Boolean(cam) && videoOn });
}

function stopLocal() {
  if (local && local.stream) local.stream.getTracks().forEach((tr) => tr.stop());
}

function currentDevices() {
  const out = {};
  if (!local || !local.stream) return out;
  for (const tr of local.stream.getTracks()) {
    out[tr.kind === 'audio' ? 'audioinput' : 'videoinput'] = tr.getSettings().deviceId;
  }
  return out;
}

function finish(reason) {
  finished = true;
  joined = false;
  clearInterval(waitTimer);
  sessionStorage.removeItem(storeKey);
  dropPeers();
  stopLocal();
  if (screenTrack) screenTrack.stop();
  show('closed');
  document.body.dataset.closedReason = reason;
  view.notice(`closed_${reason}`);
  if (reason === 'changed') setTimeout(() => location.reload(), 1500);
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
      joinMsg = { type: 'join', resume: msg.session };
      view.host = Boolean(msg.host); // may remove others (the organizer, invitees)
      view.reset(msg.you, msg.participants);
      view.setSpeaking(msg.speaking || []);
      $('knocks').replaceChildren();
      msg.knocks.forEach((k) => view.knock(k));
      $('chat').replaceChildren();
      msg.chat.forEach((line) => view.chat(line));
      show('joined');
      if (view.t && $('notice').dataset.notice === 'reconnecting') view.notice(null);
      await startMedia(msg.iceServers);
      break;
    case 'offer':
      if (subscriber) subscriber.offer(msg.sdp);
      break;
    case 'publish-answer':
      if (publisher) publisher.answered(msg.sdp);
      break;
    case 'slots':
      view.setSlots(msg.slots, subscriber);
      break;
    case 'participant-joined':
    case 'participant-updated':
      view.upsert(msg.participant);
      break;
    case 'participant-left':
      view.remove(msg.id);
      break;
    case 'speaking':
      view.setSpeaking(msg.ids);
      break;
    case 'knock':
      view.knock(msg);
      break;
    case 'knock-resolved':
      view.knockResolved(msg.id);
      break;
    case 'chat':
      view.chat(msg);
      break;
    case 'recording': {
      // The recorder started or stopped (always on from the opening, unless the
      // organizer starts it with the button).
      const indicator = $('recording-indicator');
      if (indicator) indicator.hidden = !msg.on;
      const start = document.querySelector('[data-action="start-recording"]');
      const stop = document.querySelector('[data-action="stop-recording"]');
      if (start) start.hidden = msg.on;
      if (stop) stop.hidden = !msg.on;
      document.body.dataset.recording = msg.on ? 'on' : 'off';
      break;
    }
    case 'closed':
      finish(msg.reason);
      break;
    case 'error':
      view.notice(`err_${msg.reason}`, '', { seconds: msg.retryAfter, max: msg.max });
      const again = ['bad-credentials', 'name-required', 'cool-down', 'busy', 'unavailable'];
      if (!joined && again.includes(msg.reason)) {
        joinMsg = null;
        show('lobby');
      }
      break;
    default:
      break;
  }
}

// Controls -----------------------------------------------------------------
function wire() {
  $('guest-form').addEventListener('submit', (e) => {
    e.preventDefault();
    join({ type: 'join', name: new FormData(e.target).get('name') });
  });
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const data = new FormData(e.target);
    join({ type: 'join', login: data.get('login'), password: data.get('password') });
  });
  $('chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = e.target.elements.text;
    const text = input.value.trim();
    if (text.length > cfg.chatMax) {
      view.notice('err_chat-too-long', '', { max: cfg.chatMax });
      return;
    }
    if (text) send({ type: 'chat', text });
    input.value = '';
  });
  const button = (action) => document.querySelector(`[data-action="${action}"]`);
  button('mute').onclick = () => {
    audioOn = !audioOn;
    if (local && local.stream) local.stream.getAudioTracks().forEach((tr) => { tr.enabled = audioOn; });
    button('mute').textContent = audioOn ? t.mute : t.unmute;
    button('mute').setAttribute('aria-pressed', String(!audioOn));
    send({ type: 'media', audio: audioOn, video: videoOn });
  };
  if (video) {
    button('camera').onclick = () => {
      videoOn = !videoOn;
      if (local && local.stream) local.stream.getVideoTracks().forEach((tr) => { tr.enabled = videoOn; });
      button('camera').textContent = videoOn ? t.camera_off : t.camera_on;
      button('camera').setAttribute('aria-pressed', String(!videoOn));
      send({ type: 'media', audio: audioOn, video: videoOn });
    };
    button('share').onclick = async () => {
      if (screenTrack) { stopShare(); return; }
      try {
        const s = await navigator.mediaDevices.getDisplayMedia({ video: true });
        screenTrack = s.getVideoTracks()[0];
        screenTrack.onended = stopShare;
        if (publisher) await publisher.share(screenTrack);
        send({ type: 'screen', on: true });
        button('share').textContent = t.unshare;
      } catch (e) { screenTrack = null; }
    };
  }
  for (const [role, kind] of [['mic-select', 'audio'], ['cam-select', 'video']]) {
    const sel = $(role);
    if (sel) sel.onchange = () => switchDevice(kind, sel.value);
  }
  for (const action of ['start-recording', 'stop-recording']) {
    const b = button(action);
    if (!b) continue;
    b.onclick = async () => {
      const saved = JSON.parse(sessionStorage.getItem(storeKey) || 'null');
      const token = cfg.socket.split('/').pop();
      const r = await fetch(`/recordings/control/${token}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ session: saved && saved.session, action: action.split('-')[0] }),
      }).catch(() => null);
      if (!r || !r.ok) view.notice('recording_refused');
    };
  }
  button('leave').onclick = () => {
    send({ type: 'leave' });
    finish('left');
    if (ws) ws.close();
  };
}

function stopShare() {
  if (screenTrack) screenTrack.stop();
  screenTrack = null;
  if (publisher) publisher.replace('screen', null);
  send({ type: 'screen', on: false });
  document.querySelector('[data-action="share"]').textContent = t.share;
}

async function switchDevice(kind, deviceId) {
  if (!local || !local.stream) return;
  const constraints = kind === 'audio' ? { audio: { deviceId: { exact: deviceId } } }
    : { video: { deviceId: { exact: deviceId }, width: 640, height: 480 } };
  const fresh = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks()[0];
  const old = kind === 'audio' ? local.stream.getAudioTracks()[0] : local.stream.getVideoTracks()[0];
  fresh.enabled = kind === 'audio' ? audioOn : videoOn;
  if (old) { local.stream.removeTrack(old); old.stop(); }
  local.stream.addTrack(fresh);
  if (publisher) await publisher.replace(kind === 'audio' ? 'microphone' : 'camera', fresh);
}

function start() {
  const saved = JSON.parse(sessionStorage.getItem(storeKey) || 'null');
  if (cfg.state === 'closed') {
    finish('ended');
  } else if (saved && saved.session) {
    join({ type: 'join', resume: saved.session });
  } else if (cfg.personal) {
    join({ type: 'join' });
  } else {
    show(cfg.state);
    if (cfg.state === 'waiting' && cfg.opensAt) {
      clockOffset = new Date(cfg.serverTime).getTime() - Date.now();
      countdown(cfg.opensAt);
    }
  }
}

// A recorded or streamed meeting: nothing is joined, and no camera or microphone
// is opened, before the notice is acknowledged (once per page session).
function askConsent(then) {
  const consentKey = `visio-consent:${cfg.socket}`;
  if (!cfg.recording || cfg.state === 'closed' || sessionStorage.getItem(consentKey)) {
    then();
    return;
  }
  document.body.dataset.consent = 'pending';
  const box = $('consent');
  box.hidden = false;
  const accept = document.querySelector('[data-action="accept-recording"]');
  accept.focus();
  accept.onclick = () => {
    sessionStorage.setItem(consentKey, new Date().toISOString());
    box.hidden = true;
    document.body.dataset.consent = 'accepted';
    then();
  };
}

wire();
askConsent(start);
