"""The fake mesh, fresh for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.client.fakemesh import FakeMesh, serve_fake_mesh


@pytest.fixture
def mesh() -> Iterator[FakeMesh]:
    with serve_fake_mesh() as running:
        yield running
