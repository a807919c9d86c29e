"""JSON forms of what accounting stores whole: price books and statements."""

from __future__ import annotations

import json
from typing import Any

from slicebroker.accounting.domain.pricebook import PriceBook, PriceEntry, Tier
from slicebroker.accounting.domain.statements import Statement, StatementLine


def book_json(book: PriceBook) -> str:
    return json.dumps(
        {
            "currency": book.currency,
            "default_tier": book.default_tier.value,
            "institution_tiers": {k: v.value for k, v in sorted(book.institution_tiers.items())},
            "preemptible_discount_bp": book.preemptible_discount_bp,
            "entries": [
                [e.sku, e.slice_kind, e.tier.value, e.price_micros, e.units_micros, e.valid_from_ms, e.valid_until_ms]
                for e in book.entries
            ],
        },
        separators=(",", ":"),
    )


def book_from_json(raw: str, version: int) -> PriceBook:
    d: dict[str, Any] = json.loads(raw)
    return PriceBook(
        entries=tuple(PriceEntry(s, k, Tier(t), p, u, f, v) for s, k, t, p, u, f, v in d["entries"]),
        currency=d["currency"],
        default_tier=Tier(d["default_tier"]),
        institution_tiers={k: Tier(v) for k, v in d["institution_tiers"].items()},
        preemptible_discount_bp=d["preemptible_discount_bp"],
        version=version,
    )


def statement_json(st: Statement) -> str:
    return json.dumps(
        {
            "period": st.period,
            "institution": st.institution,
            "currency": st.currency,
            "book_version": st.book_version,
            "lines": [
                [
                    *(x.category, x.charge_period, x.project, x.sku, x.slice_kind, x.tier),
                    *(x.quantity_micros, x.units_micros, x.list_cents, x.billed_cents),
                ]
                for x in st.lines
            ],
        },
        separators=(",", ":"),
    )


def statement_from_json(raw: str) -> Statement:
    d: dict[str, Any] = json.loads(raw)
    return Statement(
        period=d["period"],
        institution=d["institution"],
        currency=d["currency"],
        book_version=d["book_version"],
        lines=tuple(StatementLine(*x) for x in d["lines"]),
    )
