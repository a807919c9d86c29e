"""The batcher coalesces concurrent submissions and answers each in order."""

from __future__ import annotations

import asyncio

import pytest

from slicebroker.core.batching import Batcher


async def test_concurrent_submissions_share_batches_and_get_their_own_answers() -> None:
    sizes: list[int] = []

    async def flush(items: list[int]) -> list[int | BaseException]:
        sizes.append(len(items))
        await asyncio.sleep(0.01)
        return [ValueError(i) if i % 7 == 0 else i * 2 for i in items]

    batcher: Batcher[int, int] = Batcher(flush, max_in_flight=1)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(1, 101)), return_exceptions=True)
    for i, result in enumerate(results, start=1):
        if i % 7 == 0:
            assert isinstance(result, ValueError)
        else:
            assert result == i * 2
    assert sum(sizes) == 100
    assert len(sizes) < 10, "100 concurrent submissions went out in a few batches"
    await batcher.close()


async def test_a_failed_flush_fails_every_item_of_its_batch_only() -> None:
    calls = 0

    async def flush(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")
        return items

    batcher: Batcher[str, str] = Batcher(flush)
    with pytest.raises(ConnectionError):
        await batcher.submit("a")
    assert await batcher.submit("b") == "b"
    await batcher.close()


async def test_max_batch_bounds_a_batch() -> None:
    sizes: list[int] = []

    async def flush(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    batcher: Batcher[int, int] = Batcher(flush, max_batch=10)
    await asyncio.gather(*(batcher.submit(i) for i in range(35)))
    assert max(sizes) <= 10 and sum(sizes) == 35
    await batcher.close()
