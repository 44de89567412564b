"""The page's camera layers follow the server's latest word (Dynacast), in real Chromium.

The server may pause a layer and resume it a moment later (someone's view changed
twice). The page's Publisher (static/room-media.js) must end with the layer
sending: a layer left paused is a thumbnail that never shows its picture.
"""

from __future__ import annotations

from tests.browser.conftest import Browsers
from tests.support.stack import Stack

# The page's own module, with a fake camera: two layers on a real RTCPeerConnection.
# `words` are the server's {"type":"layers"} messages, given back to back as the
# socket delivers them (no waiting in between); the result is each layer's state.
SEND_WORDS = """async (words) => {
  const { Publisher } = await import('/static/room-media.js');
  const cam = (await navigator.mediaDevices.getUserMedia({ video: true })).getVideoTracks()[0];
  const publisher = new Publisher([], () => {});
  publisher.add('camera', cam);
  publisher.addLow(cam);
  // Negotiated, as in a room (an answerer in the page stands for the server): before
  // that, Chromium applies a change at once and the race below does not show.
  const when = (pc, event, ready) => new Promise((ok) => {
    if (ready()) ok();
    pc.addEventListener(event, () => ready() && ok());
  });
  const gathered = (pc) =>
    when(pc, 'icegatheringstatechange', () => pc.iceGatheringState === 'complete');
  await publisher.pc.setLocalDescription(await publisher.pc.createOffer());
  await gathered(publisher.pc);
  const server = new RTCPeerConnection();
  await server.setRemoteDescription(publisher.pc.localDescription);
  await server.setLocalDescription(await server.createAnswer());
  await gathered(server);
  await publisher.pc.setRemoteDescription(server.localDescription);
  const pc = publisher.pc;
  await when(pc, 'connectionstatechange', () => pc.connectionState === 'connected');
  // Every word's handling over (whatever order they finish in), then the state.
  await Promise.all(words.map(([high, low]) => publisher.layers(high, low)));
  const active = (source) =>
    publisher.transceivers[source].sender.getParameters().encodings.every((e) => e.active);
  const out = { camera: active('camera'), low: active('camera-low') };
  publisher.close();
  server.close();
  cam.stop();
  return out;
}"""


def layers_after(stack: Stack, browsers: Browsers, words: list[tuple[bool, bool]]) -> dict:
    page = browsers.launch().new_page()
    page.goto(stack.web_url + "healthz")  # same origin as the module
    return dict(page.evaluate(SEND_WORDS, [list(w) for w in words]))


def test_a_layer_paused_then_resumed_at_once_ends_up_sending(
    stack: Stack, browsers: Browsers
) -> None:
    # Ten times over: how fast a page handles two words depends on the machine.
    assert layers_after(stack, browsers, [(True, False), (True, True)] * 10) == {
        "camera": True,
        "low": True,
    }


def test_the_last_word_wins_whatever_came_before(stack: Stack, browsers: Browsers) -> None:
    words = [(True, False), (False, True), (True, True), (False, False), (True, False)]
    assert layers_after(stack, browsers, words) == {"camera": True, "low": False}
