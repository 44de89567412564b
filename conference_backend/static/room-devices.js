// Camera, microphone and speaker as the person chose them: the pre-join preview, the
// live microphone level, the device lists (pre-join screen, then the Paramètres panel).
import { localMedia, devices } from './room-media.js';
import { $, el } from './room-ui.js';

export class Devices {
  constructor(t, video) {
    this.t = t;
    this.video = video;
    this.local = null; // { stream, notice }
    this.level = 0; // 0..1, the microphone's loudness now
    this.sinkId = '';
    this.onSwitch = null; // (kind, track) → the publisher takes the new track
    this.onLevel = null; // (level) → the self view's speaking ring
    this.meterTimer = null;
  }

  get stream() { return this.local ? this.local.stream : null; }

  // Once per page: the pre-join screen asks, joining reuses what it got.
  open() {
    if (!this.opening) {
      this.opening = (async () => {
        this.local = await localMedia(this.video);
        await this.fill();
        this.meter();
        return this.local;
      })();
    }
    return this.opening;
  }

  stop() {
    clearInterval(this.meterTimer);
    if (this.stream) this.stream.getTracks().forEach((tr) => tr.stop());
  }

  current() {
    const out = {};
    if (!this.stream) return out;
    for (const tr of this.stream.getTracks()) out[tr.kind === 'audio' ? 'audioinput' : 'videoinput'] = tr.getSettings().deviceId;
    return out;
  }

  async fill() {
    const list = await devices();
    const now = this.current();
    const selects = [['mic-select', 'audioinput'], ['cam-select', 'videoinput'], ['speaker-select', 'audiooutput']];
    for (const [role, kind] of selects) {
      const sel = $(role);
      if (!sel) continue;
      const found = list.filter((d) => d.kind === kind);
      sel.replaceChildren(...found.map((d, i) => el('option', {
        value: d.deviceId,
        text: d.label || `${kind === 'audiooutput' ? this.t.speaker_out : kind === 'audioinput' ? this.t.microphone : this.t.camera} ${i + 1}`,
        selected: d.deviceId === (kind === 'audiooutput' ? this.sinkId : now[kind]),
      })));
      sel.onchange = () => (kind === 'audiooutput' ? this.setSink(sel.value) : this.switch(kind, sel.value));
      sel.disabled = !found.length;
    }
    // Choosing the speaker needs setSinkId (not every browser has it) and a list of outputs.
    const canSink = 'setSinkId' in HTMLMediaElement.prototype && list.some((d) => d.kind === 'audiooutput');
    $('speaker-choice').hidden = !canSink;
  }

  async switch(kind, deviceId) {
    if (!this.stream) return;
    const constraints = kind === 'audioinput' ? { audio: { deviceId: { exact: deviceId } } }
      : { video: { deviceId: { exact: deviceId }, width: 640, height: 480 } };
    const fresh = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks()[0];
    const old = kind === 'audioinput' ? this.stream.getAudioTracks()[0] : this.stream.getVideoTracks()[0];
    if (old) { fresh.enabled = old.enabled; this.stream.removeTrack(old); old.stop(); }
    this.stream.addTrack(fresh);
    if (kind === 'audioinput') this.meter();
    for (const role of ['preview', 'self']) {
      const v = $(role);
      if (v) { v.srcObject = null; v.srcObject = this.stream; }
    }
    if (this.onSwitch) await this.onSwitch(kind === 'audioinput' ? 'microphone' : 'camera', fresh);
  }

  async setSink(id) {
    this.sinkId = id;
    for (const a of $('audio-sink').querySelectorAll('audio')) await this.applySink(a);
  }

  async applySink(audio) {
    if (this.sinkId && audio.setSinkId) await audio.setSinkId(this.sinkId).catch(() => {});
  }

  // The microphone's level from an analyser: the meters and the speaking ring follow it.
  meter() {
    clearInterval(this.meterTimer);
    const track = this.stream && this.stream.getAudioTracks()[0];
    if (!track || !window.AudioContext) return;
    if (!this.ctx) {
      this.ctx = new AudioContext();
      // Autoplay rules may hold the context until the first click or key press.
      const wake = () => { if (this.ctx.state === 'suspended') this.ctx.resume(); };
      document.addEventListener('pointerdown', wake);
      document.addEventListener('keydown', wake);
    }
    const source = this.ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = this.ctx.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    this.meterTimer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const rms = Math.sqrt(sum / samples.length);
      // -60 dBFS → 0, 0 dBFS → 1: what a level meter usually shows.
      const level = track.enabled && rms > 0 ? Math.max(0, Math.min(1, (20 * Math.log10(rms) + 60) / 60)) : 0;
      this.level = level;
      const m = $('mic-level');
      if (m) m.value = level;
      if (this.onLevel) this.onLevel(level);
    }, 100);
  }

  // After joining, the same lists and meter live in the Paramètres panel.
  moveToSettings() {
    const box = $('devices');
    const target = $('settings-devices');
    if (box && target && box.parentElement !== target) target.append(box);
  }
}
