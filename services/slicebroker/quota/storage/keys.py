"""Every Redis key (and hash field name) the quota service uses; the only place they are built.

All keys share the hash tag "{<prefix>}" so that they live in one Redis Cluster slot, which the
multi-key Lua scripts need.

    {p}:institution:<id>   hash   display_name, generation
    {p}:institutions       zset   institution ids (score 0: listed in name order)
    {p}:project:<id>       hash   institution, display_name, generation, cap:<SKU> per capped SKU
    {p}:projects           zset   project ids (score 0)
    {p}:in-use             hash   "<project>/<SKU>" -> devices held now (reserved + committed)
    {p}:reservations       hash   grant id -> reservation record (see `records`)
    {p}:expiries           zset   grant id -> expiry (epoch ms) of reservations not yet committed
    {p}:lapsed             zset   grant id -> when its reservation lapsed (epoch ms), kept for an hour
                                  so a late Commit says RESERVATION_EXPIRED whether or not the
                                  sweep got there first

The in-use counters sit in one hash rather than in the project hashes so that Commit, Cancel and
the sweep touch a fixed set of keys known before the call (Lua must not build key names), while
Reserve passes the project hashes of its items in KEYS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QuotaKeys:
    prefix: str

    def _key(self, *parts: str) -> str:
        return ":".join((f"{{{self.prefix}}}", *parts))

    def institution(self, institution_id: str) -> str:
        return self._key("institution", institution_id)

    @property
    def institutions(self) -> str:
        return self._key("institutions")

    def project(self, project_id: str) -> str:
        return self._key("project", project_id)

    @property
    def projects(self) -> str:
        return self._key("projects")

    @property
    def in_use(self) -> str:
        return self._key("in-use")

    @property
    def reservations(self) -> str:
        return self._key("reservations")

    @property
    def expiries(self) -> str:
        return self._key("expiries")

    @property
    def lapsed(self) -> str:
        return self._key("lapsed")

    @property
    def ledger(self) -> list[str]:
        """The keys every reservation script takes first, in this order."""
        return [self.reservations, self.expiries, self.in_use, self.lapsed]


CAP_FIELD_PREFIX = "cap:"


def cap_field(sku: str) -> str:
    """The project-hash field holding the project's cap for `sku`."""
    return CAP_FIELD_PREFIX + sku


def in_use_field(project: str, sku: str) -> str:
    """The in-use hash field of one project and SKU. Names and SKUs never contain '/'."""
    return f"{project}/{sku}"


def split_in_use_field(field: str) -> tuple[str, str]:
    project, _, sku = field.partition("/")
    return project, sku
