// Network quality per tile, from the statistics the peer connections already keep:
// packet loss over the last period and, for cameras, the frame rate.

const PERIOD_MS = 2000;

// `expected`: the frame rate the stream is sent at (30 high layer, 15 thumbnails' low
// layer); 0 for audio, where only the loss counts.
export function grade(loss, fps, expected) {
  const slow = (share) => expected > 0 && fps !== null && fps < expected * share;
  if (loss > 0.08 || slow(0.3)) return 'poor';
  if (loss > 0.02 || slow(0.55)) return 'fair';
  return 'good';
}

// Calls `report(mid, {loss, fps, kind})` for each received stream and `self(loss)` for ours.
export function watchQuality(connections, report, self) {
  const last = new Map(); // mid -> {lost, received}
  const tick = async () => {
    const { subscriber, publisher } = connections();
    if (subscriber) {
      const stats = await subscriber.pc.getStats().catch(() => null);
      stats?.forEach((s) => {
        if (s.type !== 'inbound-rtp' || !s.mid) return;
        const before = last.get(s.mid) || { lost: 0, received: 0 };
        const lost = Math.max(0, (s.packetsLost || 0) - before.lost);
        const received = Math.max(0, (s.packetsReceived || 0) - before.received);
        last.set(s.mid, { lost: s.packetsLost || 0, received: s.packetsReceived || 0 });
        if (!received && !lost) return; // nothing flowed: a paused or silent stream says nothing
        const fps = s.kind === 'video' && typeof s.framesPerSecond === 'number' ? s.framesPerSecond : null;
        report(s.mid, { loss: lost / (lost + received), fps, kind: s.kind });
      });
    }
    if (publisher) {
      const stats = await publisher.pc.getStats().catch(() => null);
      let worst = null;
      stats?.forEach((s) => {
        if (s.type === 'remote-inbound-rtp' && typeof s.fractionLost === 'number') {
          worst = Math.max(worst ?? 0, s.fractionLost);
        }
      });
      if (worst !== null) self(worst);
    }
  };
  const timer = setInterval(tick, PERIOD_MS);
  return () => clearInterval(timer);
}
