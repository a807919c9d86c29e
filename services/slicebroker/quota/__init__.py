"""The quota service: who may use what. It keeps the tenant tree (institutions and their projects),
each project's per-SKU device caps, and the two-phase reservations (reserve → commit / cancel, with a
TTL) through which the broker takes devices out of a project's caps, so that no project ever holds
more devices of a SKU than its cap allows."""
