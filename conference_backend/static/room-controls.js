// What the person presses: the pre-join screen, the toolbar (micro, caméra, partager,
// main, discussion, participants, vue, paramètres, quitter), its keyboard shortcuts,
// the recording buttons and the notice to accept before a recorded meeting.
import { $, action, show, notice, fill } from './room-ui.js';

export class Controls {
  constructor(t, cfg, devices, stage, panels, room) {
    this.t = t;
    this.cfg = cfg;
    this.video = cfg.kind === 'video';
    this.devices = devices;
    this.stage = stage;
    this.panels = panels;
    this.room = room; // { send, join, leave, publisher, media }
    this.audioOn = true;
    this.videoOn = true;
    this.screenTrack = null;
  }

  // What others are told: a muted microphone, a camera turned off (or missing).
  mediaState() {
    const s = this.devices.stream;
    return {
      audio: Boolean(s && s.getAudioTracks().length) && this.audioOn,
      video: Boolean(s && s.getVideoTracks().length) && this.video && this.videoOn,
    };
  }

  applyLocal() {
    const s = this.devices.stream;
    if (s) {
      s.getAudioTracks().forEach((tr) => { tr.enabled = this.audioOn; });
      s.getVideoTracks().forEach((tr) => { tr.enabled = this.videoOn; });
    }
    const { audio, video } = this.mediaState();
    const hasMic = Boolean(s && s.getAudioTracks().length);
    const hasCam = Boolean(s && s.getVideoTracks().length);
    this.toggleLook(action('mute'), audio, this.t.mute, this.t.unmute, 'mic', !hasMic);
    this.toggleLook(action('camera'), video, this.t.camera_off, this.t.camera_on, 'cam', !hasCam);
    for (const b of document.querySelectorAll('[data-action="prejoin-mic"]')) {
      this.toggleLook(b, audio, this.t.preview_mic_on, this.t.preview_mic_off, 'mic', !hasMic);
    }
    const cam = action('prejoin-camera');
    if (cam) this.toggleLook(cam, video, this.t.preview_cam_on, this.t.preview_cam_off, 'cam', !hasCam);
    const off = $('preview-off');
    if (off) off.hidden = video;
    if (this.stage.me) this.stage.renderSelf();
  }

  toggleLook(button, on, onText, offText, name, missing) {
    if (!button) return;
    button.dataset.on = String(on);
    // Not disabled (it would leave the Tab order): pressing it says what is missing.
    button.setAttribute('aria-disabled', String(Boolean(missing)));
    button.querySelector('.tip').firstChild.textContent = on ? onText : offText;
    button.querySelector('use').setAttribute('href', `#i-${name}${on ? '' : '-off'}`);
  }

  renderHand(up) {
    const b = action('hand');
    b.setAttribute('aria-pressed', String(up));
    b.querySelector('.tip').firstChild.textContent = up ? this.t.hand_lower : this.t.hand_raise;
  }

  // Before joining ------------------------------------------------------------
  async prejoin(waiting, then) {
    const instant = this.cfg.personal && sessionStorage.getItem(`visio-share:${this.cfg.socket}`);
    if (instant) { this.room.join({ type: 'join' }); return; } // the portal's "Réunion instantanée"
    show(waiting ? 'waiting' : 'prejoin');
    then();
    if (this.cfg.personal) {
      $('name-field').hidden = true;
      $('signin-form').hidden = true;
      const as = $('joining-as');
      as.textContent = fill(this.t.joining_as, { name: this.cfg.name });
      as.hidden = false;
      action('join').focus();
    } else {
      document.getElementById('guest-name').focus();
    }
    const local = await this.devices.open();
    if (local.notice) notice(this.t, local.notice);
    const preview = $('preview');
    if (preview && local.stream) preview.srcObject = local.stream;
    this.applyLocal();
  }

  askConsent(then) {
    // A recorded or streamed meeting: nothing is joined, and no camera or microphone
    // is opened, before the notice is acknowledged (once per page session).
    const key = `visio-consent:${this.cfg.socket}`;
    if (!this.cfg.recording || this.cfg.state === 'closed' || sessionStorage.getItem(key)) {
      then();
      return;
    }
    show(this.cfg.state === 'waiting' ? 'waiting' : 'prejoin');
    for (const role of ['prejoin', 'waiting']) $(role).hidden = true;
    document.body.dataset.consent = 'pending';
    const box = $('consent');
    box.hidden = false;
    const accept = action('accept-recording');
    accept.focus();
    accept.onclick = () => {
      sessionStorage.setItem(key, new Date().toISOString());
      box.hidden = true;
      document.body.dataset.consent = 'accepted';
      then();
    };
  }

  // The toolbar and the rest -------------------------------------------------------
  wire() {
    const { t } = this;
    $('guest-form').addEventListener('submit', (e) => {
      e.preventDefault();
      if (this.cfg.personal) { this.room.join({ type: 'join' }); return; }
      const name = String(new FormData(e.target).get('name') || '').trim();
      if (!name) { notice(t, 'err_name-required'); document.getElementById('guest-name').focus(); return; }
      this.room.join({ type: 'join', name });
    });
    $('signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const data = new FormData(e.target);
      this.room.join({ type: 'join', login: data.get('login'), password: data.get('password') });
    });
    $('chat-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const input = e.target.elements.text;
      const text = input.value.trim();
      if (text.length > this.cfg.chatMax) { notice(t, 'err_chat-too-long', '', { max: this.cfg.chatMax }); return; }
      if (text) this.room.send({ type: 'chat', text });
      input.value = '';
    });
    const missing = (b) => {
      if (b.getAttribute('aria-disabled') !== 'true') return false;
      const local = this.devices.local;
      notice(t, (local && local.notice) || 'no_devices');
      return true;
    };
    const flipAudio = (e) => {
      if (missing(e.currentTarget)) return;
      this.audioOn = !this.audioOn; this.applyLocal(); this.room.media();
    };
    const flipVideo = (e) => {
      if (missing(e.currentTarget)) return;
      this.videoOn = !this.videoOn; this.applyLocal(); this.room.media();
    };
    action('mute').onclick = flipAudio;
    for (const b of document.querySelectorAll('[data-action="prejoin-mic"]')) b.onclick = flipAudio;
    if (this.video) {
      action('camera').onclick = flipVideo;
      action('prejoin-camera').onclick = flipVideo;
      action('share').onclick = () => this.toggleShare();
      action('tiles').onclick = () => this.stage.setView(this.stage.view === 'tiles' ? 'speaker' : 'tiles');
    }
    action('hand').onclick = () => {
      const up = !(this.stage.me && this.stage.me.hand);
      this.room.send({ type: 'hand', up });
    };
    for (const name of ['chat', 'people', 'settings']) action(name).onclick = () => this.panels.toggle(name);
    action('leave').onclick = () => this.room.leave();
    action('rejoin').onclick = () => location.reload();
    for (const name of ['start-recording', 'stop-recording']) {
      const b = action(name);
      if (b) b.onclick = () => this.recordingControl(name.split('-')[0]);
    }
    const copy = action('copy-alone-link');
    const link = $('alone-link');
    if (this.cfg.personal) $('alone-personal').hidden = false;
    else {
      link.hidden = false;
      document.getElementById('alone-link-input').value = location.origin + location.pathname;
      copy.onclick = async () => {
        await navigator.clipboard.writeText(document.getElementById('alone-link-input').value).catch(() => {
          document.getElementById('alone-link-input').select();
          document.execCommand('copy');
        });
        copy.textContent = t.link_copied;
      };
    }
    // Shortcuts shown in each tooltip, and said by aria-keyshortcuts.
    for (const b of document.querySelectorAll('.toolbar [data-key]')) {
      b.setAttribute('aria-keyshortcuts', b.dataset.key);
      const k = document.createElement('kbd');
      k.setAttribute('aria-hidden', 'true');
      k.textContent = ` (${b.dataset.key})`;
      b.querySelector('.tip').append(k);
    }
    document.addEventListener('keydown', (e) => this.key(e));
    const clock = $('clock');
    const tick = () => {
      const now = new Date();
      clock.dateTime = now.toISOString();
      clock.textContent = now.toLocaleTimeString(this.cfg.lang, { hour: '2-digit', minute: '2-digit' });
    };
    tick();
    setInterval(tick, 15000);
  }

  key(e) {
    if (e.key === 'Escape') {
      if (this.panels.current) { e.preventDefault(); this.panels.close(); }
      return;
    }
    if (document.body.dataset.roomState !== 'joined' || e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const target = e.target;
    if (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName)) return;
    const b = document.querySelector(`.toolbar [data-key="${e.key.toUpperCase()}"]`);
    if (b) { e.preventDefault(); b.click(); }
  }

  async toggleShare() {
    if (this.screenTrack) { this.stopShare(true); return; }
    try {
      const s = await navigator.mediaDevices.getDisplayMedia({ video: true });
      this.screenTrack = s.getVideoTracks()[0];
      this.screenTrack.onended = () => this.stopShare(true);
      const pub = this.room.publisher();
      if (pub) await pub.share(this.screenTrack);
      this.room.send({ type: 'screen', on: true });
      this.shareLook(true);
    } catch (e) { this.screenTrack = null; }
  }

  stopShare(tell) {
    if (!this.screenTrack) return;
    this.screenTrack.stop();
    this.screenTrack = null;
    const pub = this.room.publisher();
    if (pub) pub.replace('screen', null);
    if (tell) this.room.send({ type: 'screen', on: false });
    this.shareLook(false);
  }

  shareLook(on) {
    const b = action('share');
    if (!b) return;
    b.setAttribute('aria-pressed', String(on));
    b.querySelector('.tip').firstChild.textContent = on ? this.t.unshare : this.t.share;
  }

  recording(on) {
    // The recorder started or stopped (always on from the opening, unless the
    // organizer starts it with the button).
    const indicator = $('recording-indicator');
    if (indicator) indicator.hidden = !on;
    const start = action('start-recording');
    const stop = action('stop-recording');
    if (start) start.hidden = on;
    if (stop) stop.hidden = !on;
    document.body.dataset.recording = on ? 'on' : 'off';
  }

  async recordingControl(what) {
    const saved = JSON.parse(sessionStorage.getItem(`visio-session:${this.cfg.socket}`) || 'null');
    const token = this.cfg.socket.split('/').pop();
    const r = await fetch(`/recordings/control/${token}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ session: saved && saved.session, action: what }),
    }).catch(() => null);
    if (!r || !r.ok) notice(this.t, 'recording_refused');
  }

  soundBlocked() {
    // Autoplay refused (no click on this page yet, e.g. after a reload): one click fixes it.
    const b = action('sound');
    b.hidden = false;
    b.onclick = () => {
      for (const a of $('audio-sink').querySelectorAll('audio')) a.play().catch(() => {});
      b.hidden = true;
    };
  }
}
