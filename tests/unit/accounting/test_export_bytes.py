"""The exported bytes are pinned: the column-wise exporter writes exactly what the row-by-row one
wrote (digests taken from it), and column-wise rating equals `rate_line` row for row."""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slicebroker.accounting.domain.columns import columns_to_rows, lines_to_columns, rate_columns, rows_to_columns
from slicebroker.accounting.domain.exports import ExportContext, ExportFormat
from slicebroker.accounting.domain.ledger import AdjustmentLine, LedgerLine, adjustment_rows, rate_lines
from slicebroker.accounting.domain.model import GrantAttrs
from slicebroker.accounting.domain.periods import DAY_MS, HOUR_MS, Period
from slicebroker.accounting.domain.pricebook import PriceBook, PriceEntry, Tier
from slicebroker.accounting.exports.encoders import encoder

NOV = Period(2026, 11)
SKUS = ("H100-SXM-80GB", "RNGD", "UNPRICED-SKU")
KINDS = ("whole", "mig-1g.10gb", "fraction-0.25")
BOOK = PriceBook(
    entries=(
        PriceEntry("H100-SXM-80GB", "whole", Tier.ACADEMIC, 3_000_000_000, 1_000_000, 0, NOV.start_ms + 14 * DAY_MS),
        PriceEntry("H100-SXM-80GB", "whole", Tier.ACADEMIC, 2_500_000_000, 1_000_000, NOV.start_ms + 14 * DAY_MS),
        PriceEntry("H100-SXM-80GB", "whole", Tier.INDUSTRY, 9_000_123_456, 1_000_000, 0),
        PriceEntry("H100-SXM-80GB", "mig-1g.10gb", Tier.ACADEMIC, 500_000_001, 142_857, 0),
        PriceEntry("H100-SXM-80GB", "fraction-0.25", Tier.ACADEMIC, 777_777_777, 250_000, 0),
        PriceEntry("RNGD", "whole", Tier.ACADEMIC, 1_000_000_000, 259_000, 0),
        PriceEntry("RNGD", "whole", Tier.INDUSTRY, 1_500_000_000, 259_000, 0),
    ),
    institution_tiers={"samsung": Tier.INDUSTRY},
    preemptible_discount_bp=3333,
    version=4,
)


def ledger_lines(seed: int, n: int) -> list[LedgerLine]:
    """Lines billed in November: some late from October (corrections), some across midnights and
    the month's ends, slices, preemptible, unpriced SKUs, attributes that CSV has to quote."""
    rnd = random.Random(seed)
    lines = []
    for i in range(n):
        charge = "2026-10" if i % 9 == 0 else "2026-11"
        start = NOV.start_ms + rnd.randrange(-3 * DAY_MS, 31 * DAY_MS)
        end = start + rnd.randrange(0, 3 * DAY_MS) if i % 13 else start - 5
        attrs = GrantAttrs(
            user=rnd.choice(["", "kim", 'lee, "jr"', "park\u00e9"]),
            slice_kind=rnd.choice(KINDS),
            priority_class="preemptible" if i % 4 == 0 else rnd.choice(["", "standard"]),
            isolation_class=rnd.choice(["", "hardware", "soft"]),
            node=rnd.choice(["", "h100-r001-n01", "n,02"]),
            site=rnd.choice(["", "daejeon", "gwangju"]),
        )
        lines.append(
            LedgerLine(
                "2026-11",
                rnd.choice(["kaist", "snu", "samsung"]),
                charge,
                start,
                f"gr_{i:026d}",
                rnd.choice(["llm", "vision"]),
                rnd.choice(SKUS),
                rnd.randint(1, 64),
                end,
                "released",
                attrs,
            )
        )
    lines.sort(key=lambda x: (x.institution, x.charge_period, x.start_ms, x.grant_id))
    return lines


ADJUSTMENTS = [
    AdjustmentLine(
        "2026-11", "kaist", "2026-10", "llm", "kim", "H100-SXM-80GB", "whole", "academic", -120, -99, "v3->v4"
    ),
    AdjustmentLine("2026-11", "snu", "2026-10", "vision", "", "RNGD", "whole", "industry", 5, 5, "v3->v4"),
]

# sha256 of each format's bytes for ledger_lines(11, 3000) + ADJUSTMENTS in pages of 700, taken from
# the row-by-row exporter before the column-wise one replaced it. Parquet bytes depend on the
# pinned pyarrow (its version is in the file footer).
DIGESTS = {
    "csv": "3615702b89930ab9e675291d3c27fc55a70012ef77e259c0a9041bde553b899b",
    "jsonl": "1454b9af7fbb70d768479c3661d224fe4b5fa010238c19fde0a855b4d544023c",
    "focus-csv": "3aa299535c275ee094fb14e984eac79d32406cbaaa7539d1f7b026dda4698cca",
    "focus-parquet": "42d7dc09bc54a898eb9fc02367936f9875b1b46674c3ec0f4c2ce55e4ffd4eaa",
}


def export_bytes(fmt: ExportFormat, lines: list[LedgerLine], page: int = 700) -> bytes:
    ctx = ExportContext(NOV.name, NOV.start_ms, NOV.end_ms, "KRW", 4, "test-centre")
    enc = encoder(fmt, ctx)
    parts = [enc.begin()]
    for i in range(0, len(lines), page):
        parts.append(enc.encode(rate_columns(lines_to_columns(lines[i : i + page]), BOOK)))
    parts.append(enc.encode(rows_to_columns(list(adjustment_rows(ADJUSTMENTS)))))
    parts.append(enc.end())
    return b"".join(parts)


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_exported_bytes_are_what_the_row_by_row_exporter_wrote(fmt: ExportFormat) -> None:
    digest = hashlib.sha256(export_bytes(fmt, ledger_lines(11, 3000))).hexdigest()
    assert digest == DIGESTS[fmt.value]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 60))
def test_column_wise_rating_equals_rate_line_row_for_row(seed: int, n: int) -> None:
    lines = ledger_lines(seed, n)
    expected = list(rate_lines(lines, BOOK))
    got = columns_to_rows(rate_columns(lines_to_columns(lines), BOOK))
    assert [asdict(r) for r in got] == [asdict(r) for r in expected]


def test_money_past_int64_products_stays_exact() -> None:
    # 100,000 slices for a day at 999,999,999 per hour: slice-ms x price is ~8.6e24.
    book = PriceBook(entries=(PriceEntry("H100-SXM-80GB", "whole", Tier.ACADEMIC, 999_999_999_000_000, 999_999, 0),))
    line = LedgerLine(
        "2026-11", "kaist", "2026-11", NOV.start_ms + HOUR_MS, "gr_1", "llm", "H100-SXM-80GB", 100_000,
        NOV.start_ms + 3 * DAY_MS, "released", GrantAttrs(priority_class="preemptible"),
    )  # fmt: skip
    expected = list(rate_lines([line], book))
    assert columns_to_rows(rate_columns(lines_to_columns([line]), book)) == expected
