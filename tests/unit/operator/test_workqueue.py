"""The controller's work queue: a key is queued once, never handed to two workers at once, and
re-queued when it changed while being processed."""

from __future__ import annotations

import threading
import time

from slicebroker.operator.workqueue import WorkQueue


def test_duplicates_collapse_and_a_busy_key_waits_for_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert queue.get() == "a"
    queue.add("a")  # changed while being processed: not handed out again yet
    assert queue.get() == "b"
    queue.done("b")
    queue.done("a")
    assert queue.get() == "a"
    queue.done("a")
    assert queue.idle()


def test_delayed_add_and_shutdown() -> None:
    queue: WorkQueue[str] = WorkQueue()
    start = time.monotonic()
    queue.add_after("later", 0.05)
    assert queue.get() == "later"
    assert time.monotonic() - start >= 0.05
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    queue.shutdown()
    worker.join(2)
    assert got == [None]
