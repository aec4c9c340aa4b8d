"""`common.webapp.RepeatFilter`: a message repeated in a loop is written once, then once more with its count.

The filter sits on a real `logging` handler that writes to a list; a settable clock moves time, and the
timer thread is tested separately with the real clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from common.webapp import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {self.format(record)}")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def setup(clock: Clock) -> Iterator[tuple[logging.Logger, ListHandler, RepeatFilter]]:
    logger = logging.getLogger("test.repeat")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = ListHandler()
    repeats = RepeatFilter(10.0, clock=clock, timer=False)
    handler.addFilter(repeats)
    logger.addHandler(handler)
    yield logger, handler, repeats
    logger.removeHandler(handler)
    logger.propagate = True


def test_first_passes_at_once_and_repeats_are_counted(
    setup: tuple[logging.Logger, ListHandler, RepeatFilter], clock: Clock
) -> None:
    logger, handler, _ = setup
    for _ in range(500):
        logger.error("Unable connect to node with id %s: %s", 1, "Connect call failed")
        assert len(handler.lines) == 1, "the first occurrence is written as it happens, the repeats are not"
        clock.now += 0.01
    clock.now += 6.0
    logger.error("Unable connect to node with id %s: %s", 1, "Connect call failed")  # the window has closed
    line = "ERROR test.repeat: Unable connect to node with id 1: Connect call failed"
    assert handler.lines == [line, f"{line} (repeated 499 times in the last 11 s)", line]


def test_a_different_message_is_never_swallowed(setup: tuple[logging.Logger, ListHandler, RepeatFilter]) -> None:
    logger, handler, _ = setup
    logger.error("Unable to update metadata from %s", [1])
    logger.error("Unable to update metadata from %s", [1])
    logger.error("Unable to update metadata from %s", ["bootstrap"])  # other arguments: another message
    logger.warning("Unable to update metadata from %s", [1])  # another level
    logging.getLogger("test.repeat.other").error("Unable to update metadata from %s", [1])  # propagates: passes
    logger.error("article %s rejected", "abc")
    logger.error("article %s rejected", "abd")
    try:
        raise ValueError("x")
    except ValueError:
        logger.exception("Unable to update metadata from %s", [1])  # with an exception of its own
    assert [line.split(": ", 1)[1].split("\n")[0] for line in handler.lines] == [
        "Unable to update metadata from [1]",
        "Unable to update metadata from ['bootstrap']",
        "Unable to update metadata from [1]",
        "Unable to update metadata from [1]",
        "article abc rejected",
        "article abd rejected",
        "Unable to update metadata from [1]",
    ]


def test_numbers_alone_make_a_repeat_and_the_summary_has_the_last(
    setup: tuple[logging.Logger, ListHandler, RepeatFilter], clock: Clock
) -> None:
    logger, handler, repeats = setup
    for size in range(1001, 1101):
        logger.warning(f"producer buffer full size {size}")  # faust formats the size into the message
    clock.now += 10.0
    repeats.flush(clock.now)
    assert handler.lines == [
        "WARNING test.repeat: producer buffer full size 1001",
        "WARNING test.repeat: producer buffer full size 1100 (repeated 99 times in the last 10 s)",
    ]


def test_flush_writes_held_back_counts_and_a_lone_message_gets_no_summary(
    setup: tuple[logging.Logger, ListHandler, RepeatFilter], clock: Clock
) -> None:
    logger, handler, repeats = setup
    logger.info("lone")
    logger.info("twice")
    logger.info("twice")
    clock.now += 2.0
    repeats.flush()  # at exit: every window, closed or not
    assert handler.lines == [
        "INFO test.repeat: lone",
        "INFO test.repeat: twice",
        "INFO test.repeat: twice (repeated 1 times in the last 2 s)",
    ]
    logger.info("twice")
    assert handler.lines[-1] == "INFO test.repeat: twice", "after a flush a message starts a new window"


def test_memory_is_bounded_and_an_evicted_kind_keeps_its_count(
    setup: tuple[logging.Logger, ListHandler, RepeatFilter],
) -> None:
    logger, handler, repeats = setup
    repeats.max_kinds = 4
    logger.error("kind %s", "a")
    logger.error("kind %s", "a")
    for name in "bcde":  # max_kinds=4: the fifth kind evicts the oldest, "a", whose count is written then
        logger.error("kind %s", name)
    assert len(repeats._kinds) == 4
    assert handler.lines == [
        "ERROR test.repeat: kind a",
        "ERROR test.repeat: kind b",
        "ERROR test.repeat: kind c",
        "ERROR test.repeat: kind d",
        "ERROR test.repeat: kind a (repeated 1 times in the last 0 s)",
        "ERROR test.repeat: kind e",
    ]


def test_one_filter_on_two_handlers_counts_a_record_once(clock: Clock) -> None:
    logger = logging.getLogger("test.repeat.two")
    logger.propagate = False
    repeats = RepeatFilter(10.0, clock=clock, timer=False)
    first, second = ListHandler(), ListHandler()
    for handler in (first, second):
        handler.addFilter(repeats)
        logger.addHandler(handler)
    try:
        for _ in range(3):
            logger.warning("again")
        clock.now += 10.0
        repeats.flush(clock.now)
    finally:
        logger.removeHandler(first)
        logger.removeHandler(second)
        logger.propagate = True
    expected = ["WARNING test.repeat.two: again", "WARNING test.repeat.two: again (repeated 2 times in the last 10 s)"]
    assert first.lines == expected
    assert second.lines == expected


def test_the_timer_writes_the_count_when_no_later_record_comes() -> None:
    logger = logging.getLogger("test.repeat.timer")
    logger.propagate = False
    handler = ListHandler()
    handler.addFilter(RepeatFilter(0.3))
    logger.addHandler(handler)
    try:
        for _ in range(5):
            logger.error("broker away")
        deadline = time.monotonic() + 5.0
        while len(handler.lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert handler.lines[0] == "ERROR test.repeat.timer: broker away"
    assert handler.lines[1].startswith("ERROR test.repeat.timer: broker away (repeated 4 times in the last 0 s)")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        RepeatFilter(0)
