"""Layer and visible-set decisions of large meetings on sequences of events (issue 14)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping

from visio_rooms.sfu.selection import (
    BIG_TILE_WIDTH,
    CAMERA,
    CAMERA_LOW,
    DEGRADE,
    EMPTY_VIEW,
    HIGH_BPS,
    LOW_BPS,
    MAX_TILES,
    RECOVER,
    SCREEN,
    Choice,
    Dynacast,
    View,
    Want,
    choose,
    demand,
    layer_of,
    parse_view,
)

BOTH = frozenset({CAMERA, CAMERA_LOW})
PEOPLE = ["ann", "bob", "cat", "dan", "eve"]


def msg(main: object = None, tiles: object = (), **extra: object) -> dict[str, object]:
    return {
        "type": "view",
        "main": main,
        "tiles": list(tiles) if isinstance(tiles, tuple) else tiles,
        **extra,
    }


def filmstrip(main: str | None, shown: list[str], width: int = 160) -> View:
    """A page as the room page sends it: main window 960 px, thumbnails `width` px."""
    raw = msg(
        {"id": main, "source": "camera", "width": 960} if main else None,
        tuple({"id": pid, "width": width} for pid in shown),
    )
    return parse_view(raw, PEOPLE)


class Page:
    """One subscriber over time: `degraded` carried from one decision to the next."""

    def __init__(self, published: Mapping[str, Collection[str]] | None = None) -> None:
        self.published = published if published is not None else dict.fromkeys(PEOPLE, BOTH)
        self.view = EMPTY_VIEW
        self.estimate: float | None = None
        self.choice = Choice()

    def decide(self) -> Choice:
        self.choice = choose(self.view, self.published, self.estimate, self.choice.degraded)
        return self.choice


# parse_view ----------------------------------------------------------------


def test_a_well_formed_view_is_read_in_page_order() -> None:
    view = parse_view(
        msg(
            {"id": "ann", "source": "screen", "width": 1280.6},
            ({"id": "cat", "width": 200}, {"id": "bob", "width": 500}),
        ),
        PEOPLE,
    )
    assert view == View(
        Want("ann", "screen", 1281), (Want("cat", "camera", 200), Want("bob", "camera", 500))
    )


def test_the_view_survives_a_json_round_trip_from_a_page() -> None:
    raw = json.loads(
        '{"type":"view","main":{"id":"bob","source":"camera","width":800},"tiles":[{"id":"ann","width":120}]}'
    )
    assert parse_view(raw, PEOPLE) == View(
        Want("bob", "camera", 800), (Want("ann", "camera", 120),)
    )


def test_hostile_messages_give_an_empty_view_and_never_raise() -> None:
    hostile: list[object] = [
        None,
        42,
        "view",
        [],
        {},
        {"type": "hello"},
        {"type": ["view"]},
        msg(main="ann"),
        msg(main=["ann"]),
        msg(tiles="ann"),
        msg(tiles={"id": "ann"}),
        msg(tiles=None),
        msg(main=42, tiles=[{"id": "ann", "width": 10}]),
    ]
    for raw in hostile:
        assert parse_view(raw, PEOPLE) == EMPTY_VIEW, raw


def test_bad_entries_are_dropped_and_the_rest_kept() -> None:
    tiles = (
        {"id": "nobody", "width": 100},  # not in the room
        {"id": ["ann"], "width": 100},  # unhashable id
        {"id": {"x": 1}},
        {"id": 5, "width": 100},
        "bob",
        None,
        {"id": "cat", "width": "wide"},
        {"id": "cat", "width": True},
        {"id": "cat", "width": float("nan")},
        {"id": "dan", "width": 300},
    )
    assert parse_view(msg(None, tiles), PEOPLE).tiles == (Want("dan", "camera", 300),)


def test_main_with_a_bad_source_or_unknown_id_is_dropped_but_tiles_stay() -> None:
    tiles = ({"id": "bob", "width": 100},)
    for main in (
        {"id": "ann", "source": "microphone", "width": 900},
        {"id": "ann", "source": ["camera"], "width": 900},
        {"id": "ann", "source": None, "width": 900},
        {"id": "zed", "source": "camera", "width": 900},
        {"id": "ann", "width": {}},
    ):
        view = parse_view(msg(main, tiles), PEOPLE)
        assert view.main is None, main
        assert view.tiles == (Want("bob", "camera", 100),)
    # A missing source means the camera; a missing width 0.
    assert parse_view(msg({"id": "ann"}), PEOPLE).main == Want("ann", "camera", 0)


def test_widths_are_clamped() -> None:
    tiles = tuple(
        {"id": pid, "width": w}
        for pid, w in zip(PEOPLE, [-5, 10**100, float("inf"), float("-inf"), 1e300], strict=True)
    )
    assert [t.width for t in parse_view(msg(None, tiles), PEOPLE).tiles] == [
        0,
        10000,
        10000,
        0,
        10000,
    ]


def test_duplicates_are_kept_once_and_huge_lists_capped() -> None:
    tiles = ({"id": "bob", "width": 100}, {"id": "ann", "width": 100}, {"id": "bob", "width": 900})
    assert [t.id for t in parse_view(msg(None, tiles), PEOPLE).tiles] == ["bob", "ann"]
    crowd = [f"p{i}" for i in range(200)]
    huge = msg(None, [{"id": pid, "width": 100} for pid in crowd] * 500)
    assert len(parse_view(huge, crowd).tiles) == MAX_TILES
    # A long run of garbage before valid entries is not scanned forever.
    junk = msg(None, [{"id": "zed"}] * 100_000 + [{"id": "ann", "width": 1}])
    assert parse_view(junk, PEOPLE).tiles == ()


def test_a_tile_is_always_a_camera() -> None:
    view = parse_view(msg(None, ({"id": "ann", "source": "screen", "width": 100},)), PEOPLE)
    assert view.tiles == (Want("ann", "camera", 100),)


# choose: windows and layers -------------------------------------------------


def test_main_gets_high_thumbnails_low_the_rest_nothing() -> None:
    page = Page()
    page.view = filmstrip("ann", ["bob", "cat"])
    choice = page.decide()
    assert choice.main == ("ann", CAMERA)
    assert choice.tiles == (("bob", CAMERA_LOW), ("cat", CAMERA_LOW))
    assert choice.need == HIGH_BPS + 2 * LOW_BPS
    assert not choice.degraded
    assert "dan" not in {pid for pid, _ in choice.uses()}


def test_speaker_change_moves_the_main_window() -> None:
    page = Page()
    page.view = filmstrip("ann", ["bob", "cat"])
    page.decide()
    # bob speaks: the page puts bob in the main window, ann in the filmstrip.
    page.view = filmstrip("bob", ["ann", "cat"])
    choice = page.decide()
    assert choice.main == ("bob", CAMERA)
    assert choice.tiles == (("ann", CAMERA_LOW), ("cat", CAMERA_LOW))


def test_pin_of_someone_not_shown_brings_them_into_the_main_window() -> None:
    page = Page()
    page.view = filmstrip("ann", ["bob", "cat"])
    assert "eve" not in {pid for pid, _ in page.decide().uses()}
    page.view = filmstrip("eve", ["ann", "bob"])  # pinned from the participants panel
    choice = page.decide()
    assert choice.main == ("eve", CAMERA)
    assert ("cat", CAMERA_LOW) not in choice.tiles


def test_the_main_person_may_also_be_a_thumbnail_at_the_low_layer() -> None:
    page = Page()
    page.view = filmstrip("ann", ["ann", "bob"], width=600)  # even a big tile: main has it big
    choice = page.decide()
    assert choice.main == ("ann", CAMERA)
    assert choice.tiles == (("ann", CAMERA_LOW), ("bob", CAMERA))


def test_the_main_stream_is_not_sent_twice_for_its_thumbnail() -> None:
    # ann has no low layer: her thumbnail would be the main window's own stream.
    page = Page({"ann": {CAMERA}, "bob": BOTH})
    page.view = filmstrip("ann", ["ann", "bob"])
    choice = page.decide()
    assert choice.main == ("ann", CAMERA)
    assert choice.tiles == (("bob", CAMERA_LOW),)


def test_resize_across_400_px_switches_the_layer_both_ways() -> None:
    page = Page()
    sizes = [160, BIG_TILE_WIDTH, BIG_TILE_WIDTH + 1, 900, BIG_TILE_WIDTH, 200]
    layers = []
    for w in sizes:
        page.view = parse_view(
            msg(None, ({"id": "ann", "width": w}, {"id": "bob", "width": w})), PEOPLE
        )
        choice = page.decide()
        assert choice.main is None
        assert {s for _, s in choice.tiles} == {choice.tiles[0][1]}
        layers.append(layer_of(choice.tiles[0][1]))
    assert layers == ["low", "low", "high", "high", "low", "low"]


def test_tab_hidden_chooses_nothing_and_dynacast_pauses_everyone() -> None:
    pages = {"ann": Page(), "bob": Page()}
    pages["ann"].view = filmstrip("bob", ["cat"])
    pages["bob"].view = filmstrip("ann", ["cat"])
    dyn = Dynacast()
    publishers = ["ann", "bob", "cat"]
    first = dyn.changes(demand((p.decide() for p in pages.values()), publishers=publishers))
    assert first == {"ann": (True, False), "bob": (True, False), "cat": (False, True)}
    # bob hides his tab: only ann's page still watches.
    pages["bob"].view = parse_view({"type": "view", "main": None, "tiles": []}, PEOPLE)
    hidden = pages["bob"].decide()
    assert hidden == Choice(None, (), False, 0)
    change = dyn.changes(demand((p.choice for p in pages.values()), publishers=publishers))
    assert change == {"ann": (False, False)}
    # ann hides too: nobody watches anything.
    pages["ann"].view = EMPTY_VIEW
    change = dyn.changes(demand((p.decide() for p in pages.values()), publishers=publishers))
    assert change == {"bob": (False, False), "cat": (False, False)}
    # bob comes back: ann's high layer resumes; unchanged ones are not told again.
    pages["bob"].view = filmstrip("ann", [])
    change = dyn.changes(demand((p.decide() for p in pages.values()), publishers=publishers))
    assert change == {"ann": (True, False)}


def test_people_without_a_low_layer_get_their_high_one_and_without_camera_nothing() -> None:
    published = {"ann": {CAMERA}, "bob": {CAMERA_LOW}, "cat": set(), "dan": {"microphone"}}
    page = Page(published)
    page.view = filmstrip("cat", ["ann", "bob", "cat", "dan"])
    choice = page.decide()
    assert choice.main is None  # cat has no camera: the page shows initials
    assert choice.tiles == (("ann", CAMERA), ("bob", CAMERA_LOW))
    assert choice.need == HIGH_BPS + LOW_BPS
    page.view = filmstrip("bob", ["ann"], width=800)
    assert page.decide().main == ("bob", CAMERA_LOW)  # only a low layer: better than nothing


def test_someone_not_in_the_room_any_more_is_not_chosen() -> None:
    page = Page({"ann": BOTH})
    page.view = filmstrip("bob", ["ann", "cat"])  # parsed before bob and cat left
    choice = page.decide()
    assert choice.main is None
    assert choice.tiles == (("ann", CAMERA_LOW),)


def test_screen_share_in_main_is_high_and_never_degraded() -> None:
    published = {"ann": {CAMERA, CAMERA_LOW, SCREEN}, "bob": BOTH}
    page = Page(published)
    page.view = parse_view(
        msg(
            {"id": "ann", "source": "screen", "width": 1200},
            ({"id": "ann", "width": 160}, {"id": "bob", "width": 160}),
        ),
        PEOPLE,
    )
    choice = page.decide()
    assert choice.main == ("ann", SCREEN)
    assert choice.tiles == (("ann", CAMERA_LOW), ("bob", CAMERA_LOW))
    assert choice.need == HIGH_BPS + 2 * LOW_BPS
    assert layer_of(SCREEN) == "high"
    page.estimate = 100_000  # far too little for anything
    choice = page.decide()
    assert choice.degraded
    assert choice.main == ("ann", SCREEN)
    # The share stops before the page's next view: the person's camera meanwhile.
    page.published = {"ann": BOTH, "bob": BOTH}
    page.estimate = None
    assert page.decide().main == ("ann", CAMERA)


def test_estimate_drop_takes_the_main_low_and_recovery_needs_headroom() -> None:
    page = Page()
    page.view = parse_view(
        msg(
            {"id": "ann", "source": "camera", "width": 960},
            ({"id": "bob", "width": 600}, {"id": "cat", "width": 160}),
        ),
        PEOPLE,
    )
    need = 2 * HIGH_BPS + LOW_BPS
    high = (("ann", CAMERA), (("bob", CAMERA), ("cat", CAMERA_LOW)))
    low = (("ann", CAMERA_LOW), (("bob", CAMERA_LOW), ("cat", CAMERA_LOW)))
    trace = []
    for estimate in [
        None,
        5e6,
        need * DEGRADE,  # a REMB trailing what is received: not weak yet
        need * DEGRADE - 1,
        need * DEGRADE,
        need * 0.6,
        need * RECOVER - 1,
        need * RECOVER,
        need * DEGRADE,
    ]:
        page.estimate = estimate
        c = page.decide()
        assert c.need == need  # the undegraded cost, whatever was chosen
        assert (c.main, c.tiles) == (low if c.degraded else high)
        trace.append(c.degraded)
    assert trace == [False, False, False, True, True, True, True, False, False]


def test_an_unknown_estimate_lifts_the_limit() -> None:
    page = Page()
    page.view = filmstrip("ann", [])
    page.estimate = 1000
    assert page.decide().degraded
    page.estimate = None
    assert page.decide() == Choice(("ann", CAMERA), (), False, HIGH_BPS)


def test_a_smaller_view_can_end_degradation() -> None:
    page = Page()
    page.view = filmstrip("ann", ["bob", "cat", "dan"])
    page.estimate = 500_000  # under half of HIGH_BPS + 2 * LOW_BPS (+ the main's own)
    assert page.decide().degraded
    page.view = filmstrip(None, ["bob", "cat", "dan"])  # tile page of thumbnails only
    choice = page.decide()
    assert not choice.degraded
    assert choice.need == 3 * LOW_BPS


# demand and dynacast --------------------------------------------------------


def test_demand_counts_every_subscriber_and_the_recorder() -> None:
    a = Choice(("ann", CAMERA), (("bob", CAMERA_LOW),))
    b = Choice(("ann", SCREEN), (("ann", CAMERA_LOW), ("cat", CAMERA)))
    recorder = [("dan", CAMERA), ("eve", "microphone")]
    got = demand([a, b], recorder, publishers=PEOPLE)
    assert got == {
        "ann": (True, True),
        "bob": (False, True),
        "cat": (True, False),
        "dan": (True, False),
        "eve": (False, False),  # only audio wanted: the camera is paused
    }
    assert demand([]) == {}
    assert demand([], [("ann", SCREEN)]) == {}


def test_dynacast_reports_only_changes() -> None:
    dyn = Dynacast()
    assert dyn.changes({"ann": (True, True), "bob": (False, False)}) == {
        "ann": (True, True),
        "bob": (False, False),  # a new publisher is told, whatever its page does by default
    }
    assert dyn.changes({"ann": (True, True), "bob": (False, False)}) == {}
    assert dyn.changes({"ann": (False, True), "bob": (False, False)}) == {"ann": (False, True)}
    # ann missing from the demand (nobody lists her): paused, once.
    assert dyn.changes({"bob": (True, False)}) == {"ann": (False, False), "bob": (True, False)}
    assert dyn.changes({"bob": (True, False)}) == {}
    # bob reloads his page: told again even though the demand did not change.
    dyn.forget("bob")
    assert dyn.changes({"bob": (True, False)}) == {"bob": (True, False)}
    dyn.forget("nobody")


def test_a_room_of_fifty_with_nine_thumbnails_pauses_the_unwatched() -> None:
    people = [f"p{i:02}" for i in range(50)]
    published = dict.fromkeys(people, BOTH)
    choices = []
    for i, me in enumerate(people):
        others = [p for p in people if p != me]
        speaker = "p00" if me != "p00" else "p01"
        shown = others[i % 5 : i % 5 + 9]
        raw = msg({"id": speaker, "width": 960}, tuple({"id": p, "width": 150} for p in shown))
        choices.append(choose(parse_view(raw, others), published, 3e6, False))
    # Each receives one high stream and at most nine low ones, whatever the room's size.
    for c in choices:
        layers = [layer_of(source) for _, source in c.uses()]
        assert layers.count("high") == 1
        assert layers.count("low") <= 9
        assert c.need <= HIGH_BPS + 9 * LOW_BPS
    wanted = demand(choices, publishers=people)
    paused = [p for p, (h, low) in wanted.items() if not h and not low]
    assert wanted["p00"][0] and wanted["p01"][0]
    # Everyone's filmstrip shows some of p00..p13: the 36 others are paused at the source.
    assert set(people) - set(paused) == {f"p{i:02}" for i in range(14)}
    assert Dynacast().changes(wanted).keys() == set(people)
