"""Kept upstream answers (``zarrdav.upstreams.answers``): what is kept, for how long, one load a key."""

from __future__ import annotations

import threading
import time

import pytest

from zarrdav.errors import UpstreamError
from zarrdav.upstreams.answers import MISSING, Answers
from zarrdav.upstreams.flights import UpstreamGate

TTL = 0.5  # seconds: long enough that two calls in a row fall within it on a loaded machine


class Loads:
    """A loader that counts its calls and answers what it is told."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        return self.value


def answers(max_entries: int = 100) -> Answers:
    return Answers("archive", UpstreamGate(), ttl=TTL, max_entries=max_entries)


def test_fixed_answers_outlive_the_ttl_others_do_not() -> None:
    kept = answers()
    fixed, fresh = Loads("fixed"), Loads("fresh")
    for _ in range(2):
        assert kept.get(("a",), True, fixed) == "fixed"
        assert kept.get(("b",), False, fresh) == "fresh"
    assert (fixed.calls, fresh.calls) == (1, 1)
    time.sleep(TTL * 2)
    assert kept.peek(("a",), True) == "fixed"
    assert kept.peek(("b",), False) is MISSING
    kept.get(("b",), False, fresh)
    assert fresh.calls == 2


@pytest.mark.parametrize("falsy", [None, [], {}])
def test_a_falsy_answer_is_kept_for_the_ttl_only_even_when_fixed(falsy: object) -> None:
    kept = answers()
    load = Loads(falsy)
    assert kept.get(("k",), True, load) == falsy
    assert kept.peek(("k",), True) == falsy  # None is an answer ("nothing there"), not a miss
    time.sleep(TTL * 2)
    assert kept.peek(("k",), True) is MISSING


def test_errors_are_not_kept() -> None:
    kept = answers()

    def failing() -> object:
        raise UpstreamError("archive: down")

    with pytest.raises(UpstreamError):
        kept.get(("k",), True, failing)
    assert kept.get(("k",), True, Loads("up")) == "up"


def test_concurrent_misses_make_one_load() -> None:
    kept = answers()
    started = threading.Event()
    calls = 0

    def slow() -> object:
        nonlocal calls
        calls += 1
        started.set()
        time.sleep(0.2)
        return "once"

    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(kept.get(("k",), False, slow))) for _ in range(8)]
    threads[0].start()
    started.wait(5)
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == ["once"] * 8
    assert calls == 1


def test_the_least_recently_used_fixed_answer_goes_first() -> None:
    kept = answers(max_entries=2)
    for key in ("a", "b"):
        kept.get((key,), True, Loads(key))
    assert kept.peek(("a",), True) == "a"  # a hit makes it the most recent
    kept.get(("c",), True, Loads("c"))
    assert kept.peek(("b",), True) is MISSING
    assert kept.peek(("a",), True) == "a" and kept.peek(("c",), True) == "c"
