"""Spoken prompts, synthesised from text with espeak-ng and converted to 8 kHz with sox.

Nothing recorded is shipped: each text is synthesised the first time it is
needed (the fixed ones at gateway start) and cached as a WAV file under the
data dir, named by a hash of voice and text. Dynamic texts ("the meeting opens
on ... at ...") go through the same cache.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import shutil
import tempfile
import wave
from collections import OrderedDict
from pathlib import Path

import numpy as np

from conference_backend.phone.g711 import Pcm

log = logging.getLogger("visio.phone")
RATE = 8000
MEMORY = 64  # decoded prompts kept in memory

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "welcome": "Bienvenue. Veuillez saisir le numéro de la réunion, suivi de la touche dièse.",
        "retry": "Ce numéro n'est pas valide. Veuillez réessayer, puis appuyez sur dièse.",
        "goodbye": "Ce numéro n'est pas valide. Au revoir.",
        "blocked": "Trop de tentatives. Veuillez rappeler plus tard. Au revoir.",
        "joined": "Vous entrez dans la réunion. Appuyez sur étoile six pour couper votre micro.",
        "recorded": "Attention, cette réunion est enregistrée.",
        "streamed": "Attention, cette réunion est diffusée en direct.",
        "muted": "Micro coupé.",
        "unmuted": "Micro rétabli.",
        "ended": "La réunion est terminée. Au revoir.",
        "cancelled": "La réunion a été annulée. Au revoir.",
        "closed": "Cette réunion n'est pas ouverte. Au revoir.",
        "full": "La réunion est complète. Au revoir.",
        "opens": "La réunion ouvrira le {date} à {time}. Au revoir.",
        "lobby": "Veuillez patienter : l'organisateur est prévenu et va vous faire entrer "
        "dans la réunion.",
        "refused": "Votre demande d'entrée a été refusée. Au revoir.",
        "removed": "Vous avez été retiré de la réunion. Au revoir.",
        "lobby_full": "Trop de personnes attendent déjà d'entrer. Veuillez rappeler dans "
        "quelques minutes. Au revoir.",
        "lost": "La liaison avec la réunion a été perdue. Veuillez rappeler. Au revoir.",
    },
    "en": {
        "welcome": "Welcome. Please enter the meeting number, followed by the hash key.",
        "retry": "This number is not valid. Please try again, then press hash.",
        "goodbye": "This number is not valid. Goodbye.",
        "blocked": "Too many attempts. Please call again later. Goodbye.",
        "joined": "You are now in the meeting. Press star six to mute your microphone.",
        "recorded": "Please note, this meeting is recorded.",
        "streamed": "Please note, this meeting is streamed live.",
        "muted": "You are muted.",
        "unmuted": "You are unmuted.",
        "ended": "The meeting has ended. Goodbye.",
        "cancelled": "The meeting was cancelled. Goodbye.",
        "closed": "This meeting is not open. Goodbye.",
        "full": "The meeting is full. Goodbye.",
        "opens": "The meeting opens on {date} at {time}. Goodbye.",
        "lobby": "Please wait: the organizer has been told and will let you into the meeting.",
        "refused": "Your request to join was declined. Goodbye.",
        "removed": "You were removed from the meeting. Goodbye.",
        "lobby_full": "Too many people are already waiting to join. Please call again in a "
        "few minutes. Goodbye.",
        "lost": "The connection to the meeting was lost. Please call again. Goodbye.",
    },
}
FIXED = [k for k in TEXTS["fr"] if k != "opens"]
_MONTHS_FR = "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"


def opening_text(lang: str, when: dt.datetime) -> str:
    if lang == "fr":
        month = _MONTHS_FR.split()[when.month - 1]
        day = "premier" if when.day == 1 else str(when.day)
        time = f"{when.hour} heures" + (f" {when.minute}" if when.minute else "")
        return TEXTS["fr"]["opens"].format(date=f"{day} {month}", time=time)
    return TEXTS["en"]["opens"].format(
        date=when.strftime("%B ") + str(when.day), time=when.strftime("%H:%M")
    )


def _read_wav(path: Path) -> Pcm:
    with wave.open(str(path), "rb") as w:
        if w.getframerate() != RATE or w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path} is not 8 kHz 16-bit mono")
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()


def tone(seconds: float = 0.4, hz: float = 440.0) -> Pcm:
    """What plays when espeak-ng is missing: a beep rather than silence."""
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * hz * t) * 6000).astype(np.int16)


class Prompts:
    def __init__(self, cache_dir: Path, lang: str) -> None:
        self.dir = cache_dir
        self.lang = lang if lang in TEXTS else "fr"
        self._memory: OrderedDict[str, Pcm] = OrderedDict()
        self._lock = asyncio.Lock()
        self.available = bool(shutil.which("espeak-ng") and shutil.which("sox"))
        if not self.available:
            log.warning("phone prompts: espeak-ng or sox missing, callers will hear beeps")

    async def prepare(self) -> None:
        for key in FIXED:
            await self.text(TEXTS[self.lang][key])

    async def get(self, key: str) -> Pcm:
        return await self.text(TEXTS[self.lang][key])

    async def opening(self, when: dt.datetime) -> Pcm:
        return await self.text(opening_text(self.lang, when))

    async def text(self, text: str) -> Pcm:
        name = hashlib.sha256(f"{self.lang}\0{text}".encode()).hexdigest()[:24]
        cached = self._memory.get(name)
        if cached is not None:
            self._memory.move_to_end(name)
            return cached
        async with self._lock:
            path = self.dir / f"{self.lang}-{name}.wav"
            if not path.exists():
                if not self.available:
                    return tone()
                try:
                    await self._synthesise(text, path)
                except (OSError, RuntimeError) as e:
                    log.error("phone prompts: cannot synthesise %r: %s", text, e)
                    return tone()
            pcm = _read_wav(path)
        self._memory[name] = pcm
        while len(self._memory) > MEMORY:
            self._memory.popitem(last=False)
        return pcm

    async def _synthesise(self, text: str, path: Path) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        voice = "fr" if self.lang == "fr" else "en-us"
        with tempfile.TemporaryDirectory(dir=self.dir) as tmp:
            raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
            for argv in (
                ["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text],
                ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out), "gain", "-3"],
            ):
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
                )
                try:
                    _, err = await proc.communicate()
                except asyncio.CancelledError:  # the gateway stopping: leave no process behind
                    proc.kill()
                    await proc.wait()
                    raise
                if proc.returncode != 0:
                    raise RuntimeError(f"{argv[0]} failed: {err.decode(errors='replace')[:200]}")
            out.replace(path)
