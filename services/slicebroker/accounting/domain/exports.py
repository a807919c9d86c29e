"""Export formats and the `ExportEncoder` port: charge columns in, file bytes out, batch by batch.

Encoders keep no more than one batch: an export of a million rows streams in constant memory. The
bytes depend only on the rows (no timestamps of the export itself), so the same ledger always
exports byte for byte the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from slicebroker.accounting.domain.columns import ChargeColumns
from slicebroker.core.errors import InvalidArgument


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    FOCUS_CSV = "focus-csv"
    FOCUS_PARQUET = "focus-parquet"


def parse_format(field: str, value: str) -> ExportFormat:
    try:
        return ExportFormat(value)
    except ValueError:
        known = ", ".join(f.value for f in ExportFormat)
        raise InvalidArgument(field, f"{value!r} is not an export format: one of {known}") from None


@dataclass(frozen=True, slots=True)
class ExportContext:
    """What every row of one export shares."""

    period: str
    period_start_ms: int
    period_end_ms: int
    currency: str
    book_version: int
    provider: str


class ExportEncoder(Protocol):
    def begin(self) -> bytes: ...
    def encode(self, batch: ChargeColumns) -> bytes: ...
    def end(self) -> bytes: ...


EncoderFactory = Callable[[ExportFormat, ExportContext], ExportEncoder]
