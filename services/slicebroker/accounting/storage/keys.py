"""The only place accounting's Redis key strings (and the row and field names inside them) are built.

Layout, all under the hash tag "{<key_prefix>}" so that one script may touch every key:

- `{p}:applied`        SET of event ids already ingested.
- `{p}:grant:<id>`     HASH per grant: state ("open", "closed", or "ended_first" for an ENDED that
                       came before its GRANTED), institution, project, sku, row, count, start (ms),
                       cs (size x start, device-ms), size (count x slice size in SIZE_DEN-ths of a
                       device), end (ms), reason, device_ms, attrs.
- `{p}:usage`          HASH of integer totals, field "<row>|<metric>" (metrics below). One hash for
                       all rows, so closing a grant needs no key derived from what the grant stored.
- `{p}:rows`           SET of row names "<institution>|<project>|<sku>" that have any usage.
- `{p}:ledger`         STREAM, one entry per closed grant, in closing order (append-only).
- `{p}:lines`          ZSET, lex-ordered ledger lines by billing period (see ingest.lua).
- `{p}:closed`         SET of closed billing periods.
- `{p}:books`          HASH version -> price book JSON (versions 1, 2, … never change).
- `{p}:rated_with`     HASH closed period -> book version it is rated with.
- `{p}:statements:<period>`  HASH institution -> statement JSON, each field written once.
- `{p}:adjustments`    ZSET, lex-ordered re-rating adjustment lines by billing period.
- `{p}:burn_cursor`    STRING, ledger position up to which budget burn was pushed to quota.
"""

from __future__ import annotations

from collections.abc import Sequence

# Usage-hash metrics per row. storage/lua/ingest.lua joins row names the same way (institution,
# project and SKU with '|') and appends the same suffixes.
DEVICE_MS = "dm"  # device-ms of closed grants (a slice counts its share of the device)
GRANTS = "n"  # closed grants
RUNNING_GRANTS = "rn"  # open grants
RUNNING_DEVICES = "rc"  # devices held by open grants, in slices.SIZE_DEN-ths of a device
RUNNING_START_SUM = "rs"  # sum of size x start-ms over open grants, in device-ms
METRICS: Sequence[str] = (DEVICE_MS, GRANTS, RUNNING_GRANTS, RUNNING_DEVICES, RUNNING_START_SUM)

_SEP = "|"
# Fields of index members (ledger lines, adjustments); names and attributes never contain it.
FIELD_SEP = "\x1f"
ATTR_SEP = "\x1e"


def row_name(institution: str, project: str, sku: str) -> str:
    # Names cannot contain '|' (validation forbids it), so the join is reversible.
    return f"{institution}{_SEP}{project}{_SEP}{sku}"


def split_row(row: str) -> tuple[str, str, str]:
    institution, project, sku = row.split(_SEP, 2)
    return institution, project, sku


def usage_fields(row: str) -> list[str]:
    return [f"{row}{_SEP}{metric}" for metric in METRICS]


def lex_range(*prefix: str) -> tuple[str, str]:
    """ZRANGEBYLEX bounds of every member whose leading fields are `prefix`: the separator is the
    lowest byte any field holds, and the next byte up closes the range."""
    head = FIELD_SEP.join(prefix) + FIELD_SEP
    return "[" + head, "(" + head[:-1] + chr(ord(FIELD_SEP) + 1)


class AccountingKeys:
    def __init__(self, prefix: str) -> None:
        self._p = "{" + prefix + "}"
        self.applied = f"{self._p}:applied"
        self.usage = f"{self._p}:usage"
        self.rows = f"{self._p}:rows"
        self.ledger = f"{self._p}:ledger"
        self.lines = f"{self._p}:lines"
        self.closed = f"{self._p}:closed"
        self.books = f"{self._p}:books"
        self.rated_with = f"{self._p}:rated_with"
        self.adjustments = f"{self._p}:adjustments"
        self.burn_cursor = f"{self._p}:burn_cursor"
        self._grant = f"{self._p}:grant:"
        self._statements = f"{self._p}:statements:"

    def grant(self, grant_id: str) -> str:
        return self._grant + grant_id

    def statements(self, period: str) -> str:
        return self._statements + period
