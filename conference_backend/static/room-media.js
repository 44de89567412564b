// Camera, microphone and the two peer connections (publish: we offer; subscribe: the server offers).

const GATHER_LIMIT_MS = 3000;

function gum(constraints) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return Promise.reject(new DOMException('no media devices', 'NotFoundError'));
  }
  return navigator.mediaDevices.getUserMedia(constraints);
}

// Camera and microphone if possible, else whatever exists; `notice` says what is missing.
export async function localMedia(wantVideo, ids = {}) {
  const audio = ids.mic ? { deviceId: { exact: ids.mic } } : true;
  const video = wantVideo
    ? (ids.cam ? { deviceId: { exact: ids.cam }, width: 640, height: 480 } : { width: 640, height: 480 })
    : false;
  try {
    return { stream: await gum({ audio, video }), notice: null };
  } catch (e) {
    if (e.name === 'NotAllowedError' || e.name === 'SecurityError') {
      // Often only the camera was refused: take part with the microphone then.
      if (wantVideo) {
        try { return { stream: await gum({ audio }), notice: 'camera_denied' }; } catch (e2) { /* both refused */ }
      }
      return { stream: null, notice: 'denied' };
    }
  }
  if (wantVideo) {
    try { return { stream: await gum({ audio }), notice: 'no_camera' }; } catch (e) { /* try video alone */ }
    try { return { stream: await gum({ video }), notice: 'no_microphone' }; } catch (e) { /* nothing */ }
  }
  return { stream: null, notice: 'no_devices' };
}

export async function devices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return [];
  return navigator.mediaDevices.enumerateDevices();
}

// aiortc takes no trickled candidates: send the description once gathering is done.
function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, GATHER_LIMIT_MS);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
    });
  });
}

function preferCodec(transceiver, kind) {
  // The server forwards frames as encoded: everyone sends VP8 video and Opus audio.
  if (!transceiver.setCodecPreferences || !RTCRtpSender.getCapabilities) return;
  const wanted = kind === 'video' ? 'video/vp8' : 'audio/opus';
  const codecs = RTCRtpSender.getCapabilities(kind).codecs.filter((c) => {
    const m = c.mimeType.toLowerCase();
    return m === wanted || m === `${kind}/rtx`;
  });
  if (codecs.length) transceiver.setCodecPreferences(codecs);
}

export class Publisher {
  constructor(iceServers, signal) {
    this.pc = new RTCPeerConnection({ iceServers });
    this.signal = signal;
    this.sources = {};
    this.transceivers = {};
    this.pending = null;
    this.chain = Promise.resolve();
    this.wanted = null; // the camera layers the server last asked for (layers())
    this.layerChain = Promise.resolve();
  }

  add(source, track, sendEncodings = undefined) {
    const init = { direction: 'sendonly' };
    if (sendEncodings) init.sendEncodings = sendEncodings;
    const t = this.pc.addTransceiver(track, init);
    preferCodec(t, track.kind);
    this.transceivers[source] = t;
  }

  // The camera's second, small encoding from the same capture: at most 320x180,
  // 15 frames/s, 180 kbit/s, for thumbnails (the server picks a layer per viewer).
  addLow(track) {
    const s = track.getSettings();
    const scale = Math.max(1, (s.width || 640) / 320, (s.height || 480) / 180);
    this.add('camera-low', track, [{ scaleResolutionDownBy: scale, maxFramerate: 15, maxBitrate: 180000 }]);
  }

  // Dynacast: the server says which camera layers someone receives; the others pause.
  // One change at a time, always towards the latest word: while a setParameters is in
  // flight getParameters can still say the old state, so a second word handled alongside
  // (pause, then resume at once) was skipped and left a layer paused that someone waits for.
  layers(high, low) {
    this.wanted = { camera: high, 'camera-low': low };
    this.layerChain = this.layerChain.then(() => this.applyLayers());
    return this.layerChain;
  }

  async applyLayers() {
    for (const [source, on] of Object.entries(this.wanted || {})) {
      const t = this.transceivers[source];
      if (!t) continue;
      const params = t.sender.getParameters();
      if (!params.encodings || !params.encodings.length) continue;
      if (params.encodings.every((e) => e.active === on)) continue;
      params.encodings.forEach((e) => { e.active = on; });
      await t.sender.setParameters(params).catch((e) => console.warn('layer change failed', e));
    }
  }

  negotiate() {
    this.chain = this.chain.then(async () => {
      await this.pc.setLocalDescription(await this.pc.createOffer());
      await gathered(this.pc);
      for (const [source, t] of Object.entries(this.transceivers)) this.sources[t.mid] = source;
      const answered = new Promise((resolve) => { this.pending = resolve; });
      this.signal({ type: 'publish', sdp: this.pc.localDescription.sdp, sources: this.sources });
      const sdp = await answered;
      await this.pc.setRemoteDescription({ type: 'answer', sdp });
    }).catch((e) => console.warn('publish failed', e));
    return this.chain;
  }

  answered(sdp) { if (this.pending) { this.pending(sdp); this.pending = null; } }

  async replace(source, track) {
    const t = this.transceivers[source];
    if (t) await t.sender.replaceTrack(track);
    if (source === 'camera' && this.transceivers['camera-low']) {
      await this.transceivers['camera-low'].sender.replaceTrack(track);
    }
  }

  async share(track) {
    if (this.transceivers.screen) {
      await this.transceivers.screen.sender.replaceTrack(track);
    } else {
      this.add('screen', track);
      await this.negotiate();
    }
  }

  close() { this.pc.close(); }
}

export class Subscriber {
  constructor(iceServers, signal, changed) {
    this.pc = new RTCPeerConnection({ iceServers });
    this.signal = signal;
    this.streams = {};
    this.firstFrameAt = null;
    this.pc.ontrack = (e) => {
      this.streams[e.transceiver.mid] = new MediaStream([e.track]);
      changed();
    };
    this.chain = Promise.resolve();
  }

  offer(sdp) {
    this.chain = this.chain.then(async () => {
      await this.pc.setRemoteDescription({ type: 'offer', sdp });
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      await gathered(this.pc);
      this.signal({ type: 'answer', sdp: this.pc.localDescription.sdp });
    }).catch((e) => console.warn('subscribe failed', e));
    return this.chain;
  }

  stream(mid) { return this.streams[mid] || null; }

  close() { this.pc.close(); }
}
