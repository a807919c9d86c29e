"""`AccountingService`: the application service the servicer calls, one method per use case."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from slicebroker.accounting.domain.access import ADMIN, Caller, require_admin, scope
from slicebroker.accounting.domain.columns import ChargeColumns, rate_columns, rows_to_columns
from slicebroker.accounting.domain.exports import EncoderFactory, ExportContext, ExportEncoder, parse_format
from slicebroker.accounting.domain.ledger import (
    AdjustmentLine,
    ChargeRow,
    adjustment_rows,
    rate_line,
)
from slicebroker.accounting.domain.model import (
    IncomingEvent,
    IngestResult,
    LedgerRecord,
    Usage,
    UsageFilter,
)
from slicebroker.accounting.domain.periods import Period, day_name, parse_period
from slicebroker.accounting.domain.pricebook import PriceBook, PriceBookInput, parse_price_book
from slicebroker.accounting.domain.rate import RateQuery, RateResult, check_rate_query, rate_use
from slicebroker.accounting.domain.statements import Statement, StatementBuilder
from slicebroker.accounting.domain.store import UsageStore
from slicebroker.accounting.domain.usage import usage_row
from slicebroker.accounting.domain.validation import check_filter, check_sku, parse_events
from slicebroker.core.errors import FailedPrecondition, InvalidArgument, NotFound
from slicebroker.core.ids import check_name
from slicebroker.core.reasons import Reason

EMPTY_BOOK = PriceBook(entries=())
GROUP_KEYS = ("institution", "project", "user", "sku", "day")
MAX_QUERY_DAYS = 3660
EXPORT_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class LedgerQuery:
    start_ms: int
    end_ms: int
    group_by: Sequence[str]
    institution: str = ""
    project: str = ""
    user: str = ""
    sku: str = ""


@dataclass(frozen=True, slots=True)
class LedgerQueryRow:
    # Values of the grouping keys, in GROUP_KEYS order; "" for a key not grouped by.
    institution: str
    project: str
    user: str
    sku: str
    day: str
    quantity_micros: int
    units_micros: int
    billed_cents: int


@dataclass(frozen=True, slots=True)
class LedgerQueryResult:
    rows: tuple[LedgerQueryRow, ...]
    currency: str
    book_version: int


@dataclass(frozen=True, slots=True)
class RerateResult:
    period: str
    billed_in: str
    from_version: int
    to_version: int
    adjustments: tuple[AdjustmentLine, ...]


class AccountingService:
    def __init__(
        self,
        store: UsageStore,
        *,
        max_ingest_events: int = 10_000,
        currency: str = "KRW",
        encoders: EncoderFactory | None = None,
        provider: str = "slicebroker",
    ) -> None:
        self._store = store
        self._max_ingest_events = max_ingest_events
        self._currency = currency
        self._encoders = encoders
        self._provider = provider

    async def ingest(self, events: Sequence[IncomingEvent]) -> IngestResult:
        """Checks the whole batch first (a bad event refuses it all, nothing written), then applies
        it in one atomic store call."""
        checked = parse_events(events, self._max_ingest_events)
        if not checked:
            return IngestResult(applied=0, duplicates=0)
        return await self._store.ingest(checked)

    async def usage(self, usage_filter: UsageFilter, now_ms: int, caller: Caller = ADMIN) -> Usage:
        checked = check_filter(usage_filter)
        institution = scope(caller, checked.institution)
        if institution != checked.institution:
            checked = UsageFilter(institution=institution, project=checked.project, sku=checked.sku)
        totals = await self._store.totals(checked)
        rows = sorted((usage_row(t, now_ms) for t in totals), key=lambda r: (r.institution, r.project, r.sku))
        return Usage(rows=tuple(rows), as_of_ms=now_ms)

    async def ledger(self, after: str = "", limit: int = 1000) -> list[LedgerRecord]:
        return await self._store.ledger(after, limit)

    # Price book

    async def publish_book(self, book: PriceBookInput, expected_version: int, caller: Caller = ADMIN) -> PriceBook:
        """Checks the whole book, then stores it as the next version (compare-and-increment)."""
        require_admin(caller, "publishing a price book")
        checked = parse_price_book(book, self._currency)
        if expected_version < 0:
            raise InvalidArgument("expected_version", "must not be negative")
        version = await self._store.publish_book(checked, expected_version)
        found = await self._store.price_book(version)
        assert found is not None
        return found

    async def price_book(self, version: int = 0) -> PriceBook:
        if version < 0:
            raise InvalidArgument("version", "must not be negative")
        book = await self._store.price_book(version)
        if book is None:
            raise NotFound(f"no price book version {version}" if version else "no price book published yet")
        return book

    async def _book_or_empty(self, version: int = 0) -> PriceBook:
        book = await self._store.price_book(version)
        return book if book is not None else PriceBook(entries=(), currency=self._currency)

    async def _period_book(self, period: Period) -> PriceBook:
        """A closed period's own version; an open one's is the latest."""
        version = await self._store.rated_with(period.name)
        return await self._book_or_empty(version or 0)

    # Quotes

    async def rate(self, q: RateQuery, now_ms: int, caller: Caller = ADMIN) -> RateResult:
        """What a prospective use would cost with the latest book: for the caller's own institution
        (a tenant naming another is refused; one naming none is priced as itself)."""
        checked = check_rate_query(q, now_ms)
        institution = scope(caller, checked.institution)
        book = await self._store.price_book()
        if book is None:
            raise FailedPrecondition("no price book published yet: nothing can be priced", reason=Reason.NO_PRICE_BOOK)
        return rate_use(
            RateQuery(
                institution,
                checked.sku,
                checked.slice_kind,
                checked.count,
                checked.duration_ms,
                checked.priority_class,
                checked.at_ms,
            ),
            book,
        )

    # Queries

    async def query(self, q: LedgerQuery, now_ms: int, caller: Caller = ADMIN) -> LedgerQueryResult:
        """Usage and cost over [start, end), grouped by any of institution, project, user, SKU, day.
        Rated with the latest book: an estimate for open periods (statements are what is billed)."""
        if q.end_ms <= q.start_ms:
            raise InvalidArgument("end", "must be after start")
        for i, key in enumerate(q.group_by):
            if key not in GROUP_KEYS:
                raise InvalidArgument(f"group_by[{i}]", f"{key!r} is not one of {', '.join(GROUP_KEYS)}")
        if q.institution:
            check_name("institution", q.institution)
        if q.project:
            check_name("project", q.project)
        if q.sku:
            check_sku("sku", q.sku)
        institution = scope(caller, q.institution)
        book = await self._book_or_empty()
        keys = set(q.group_by)
        sums: dict[tuple[str, str, str, str, str], list[int]] = {}
        # Late lines are billed after their charge period, so every period up to now may hold some.
        period, last = Period.of_ms(q.start_ms), Period.of_ms(max(now_ms, q.end_ms))
        while period <= last:
            async for page in self._store.lines(period.name, institution):
                for line in page:
                    if line.end_ms <= q.start_ms or line.start_ms >= q.end_ms:
                        continue
                    if (q.project and line.project != q.project) or (q.sku and line.sku != q.sku):
                        continue
                    if q.user and line.attrs.user != q.user:
                        continue
                    for r in rate_line(line, book):
                        if r.charge_end_ms <= q.start_ms or r.charge_start_ms >= q.end_ms:
                            continue
                        # A day row cut by the query's own bounds is prorated by time.
                        lo, hi = max(r.charge_start_ms, q.start_ms), min(r.charge_end_ms, q.end_ms)
                        span, whole = hi - lo, r.charge_end_ms - r.charge_start_ms
                        group = (
                            r.institution if "institution" in keys else "",
                            r.project if "project" in keys else "",
                            r.user if "user" in keys else "",
                            r.sku if "sku" in keys else "",
                            day_name(lo) if "day" in keys else "",
                        )
                        acc = sums.setdefault(group, [0, 0, 0])
                        acc[0] += r.quantity_micros * span // whole
                        acc[1] += r.units_micros * span // whole
                        acc[2] += r.billed_cents * span // whole
            period = period.next()
        rows = tuple(LedgerQueryRow(*key, *acc) for key, acc in sorted(sums.items()))
        return LedgerQueryResult(rows=rows, currency=book.currency, book_version=book.version)

    # Statements

    async def close_period(self, period_name: str, now_ms: int, caller: Caller = ADMIN) -> list[Statement]:
        """Freezes a finished period into one statement per institution. Repeating it returns the
        same statements.

        1. Mark the period closed: from then on ingestion bills its late lines in the next open
           period, so the lines billed in it no longer change.
        2. Fix the book version it is rated with (the latest, unless a first close already did).
        3. Sum the lines with that version and store the statements, each written once.
        """
        require_admin(caller, "closing a billing period")
        period = parse_period("period", period_name)
        if now_ms < period.end_ms:
            raise FailedPrecondition(f"period {period.name} is not over yet", reason=Reason.PERIOD_NOT_OVER)
        latest = await self._store.price_book()
        version = await self._store.close_period(period.name, latest.version if latest else 0)
        stored = await self._store.statements(period.name)
        if stored:
            return stored
        book = await self._book_or_empty(version)
        builder = StatementBuilder(period.name, book.currency, version)
        async for rows in self._row_batches(period, "", book):
            builder.add(rows)
        await self._store.save_statements(period.name, builder.statements())
        return await self._store.statements(period.name)

    async def statement(self, period_name: str, institution: str, caller: Caller = ADMIN) -> list[Statement]:
        period = parse_period("period", period_name)
        if institution:
            check_name("institution", institution)
        who = scope(caller, institution)
        if await self._store.rated_with(period.name) is None:
            raise FailedPrecondition(f"period {period.name} is not closed", reason=Reason.PERIOD_NOT_CLOSED)
        return [s for s in await self._store.statements(period.name) if not who or s.institution == who]

    async def rerate(self, period_name: str, to_version: int, caller: Caller = ADMIN) -> RerateResult:
        """Re-rates a closed period with another book version: the differences become adjustment
        lines billed in the next open period; the closed statement itself never changes."""
        require_admin(caller, "re-rating")
        period = parse_period("period", period_name)
        from_version = await self._store.rated_with(period.name)
        if from_version is None:
            raise FailedPrecondition(
                f"period {period.name} is not closed: an open period is rated at close", reason=Reason.PERIOD_NOT_CLOSED
            )
        new_book = await self.price_book(to_version)
        if new_book.version == from_version:
            return RerateResult(period.name, "", from_version, from_version, ())
        old_book = await self._book_or_empty(from_version)
        deltas: dict[tuple[str, str, str, str, str, str, str], list[int]] = {}
        async for page in self._store.lines(period.name):
            for line in page:
                for old, new in zip(rate_line(line, old_book), rate_line(line, new_book), strict=True):
                    if old.billed_cents == new.billed_cents and old.list_cents == new.list_cents:
                        continue
                    key = (
                        old.institution,
                        old.charge_period,
                        old.project,
                        old.user,
                        old.sku,
                        old.slice_kind,
                        new.tier,
                    )
                    acc = deltas.setdefault(key, [0, 0])
                    acc[0] += new.list_cents - old.list_cents
                    acc[1] += new.billed_cents - old.billed_cents
        tag = f"v{from_version}->v{new_book.version}"
        adjustments = tuple(
            AdjustmentLine("", inst, charge, project, user, sku, kind, tier, lst, billed, tag)
            for (inst, charge, project, user, sku, kind, tier), (lst, billed) in sorted(deltas.items())
            if lst or billed
        )
        billed_in = await self._store.commit_rerate(period.name, from_version, new_book.version, adjustments)
        return RerateResult(period.name, billed_in, from_version, new_book.version, adjustments)

    # Exports

    async def _row_batches(self, period: Period, institution: str, book: PriceBook) -> AsyncIterator[list[ChargeRow]]:
        """Every charge row billed in `period`, in the export order, a page at a time: statements and
        exports both read them here, which is why they reconcile."""
        async for page in self._store.lines(period.name, institution):
            rows: list[ChargeRow] = []
            for line in page:
                rows.extend(rate_line(line, book))
            if rows:
                yield rows
        adjustments = list(adjustment_rows(await self._store.adjustments(period.name, institution)))
        if adjustments:
            yield adjustments

    async def export(
        self, period_name: str, institution: str, fmt: str, caller: Caller = ADMIN
    ) -> AsyncIterator[tuple[bytes, int]]:
        """The period's charge rows encoded in `fmt`, as (chunk, rows in it) pairs. Checked before the
        first chunk, so a refusal sends nothing."""
        period = parse_period("period", period_name)
        if institution:
            check_name("institution", institution)
        who = scope(caller, institution)
        export_format = parse_format("format", fmt)
        assert self._encoders is not None, "the composition root wires the encoders"
        book = await self._period_book(period)
        version = await self._store.rated_with(period.name)
        context = ExportContext(
            period=period.name,
            period_start_ms=period.start_ms,
            period_end_ms=period.end_ms,
            currency=book.currency,
            book_version=version if version is not None else book.version,
            provider=self._provider,
        )
        encoder = self._encoders(export_format, context)
        return self._stream(period, who, book, encoder)

    async def _column_batches(self, period: Period, institution: str, book: PriceBook) -> AsyncIterator[ChargeColumns]:
        """`_row_batches` as columns, rated column-wise (`rate_columns` equals `rate_line` row for
        row): the same rows in the same order, so exports reconcile with statements."""
        async for page in self._store.line_columns(period.name, institution):
            batch = rate_columns(page, book)
            if len(batch):
                yield batch
        adjustments = list(adjustment_rows(await self._store.adjustments(period.name, institution)))
        if adjustments:
            yield rows_to_columns(adjustments)

    async def _stream(
        self, period: Period, institution: str, book: PriceBook, encoder: ExportEncoder
    ) -> AsyncIterator[tuple[bytes, int]]:
        yield encoder.begin(), 0
        async for batch in self._column_batches(period, institution, book):
            data = encoder.encode(batch)
            if not data:
                yield b"", len(batch)
            # A page of FOCUS CSV is megabytes; gRPC messages stay well under the 4 MiB default.
            for i in range(0, len(data), EXPORT_CHUNK_BYTES):
                last = i + EXPORT_CHUNK_BYTES >= len(data)
                yield data[i : i + EXPORT_CHUNK_BYTES], len(batch) if last else 0
        yield encoder.end(), 0
