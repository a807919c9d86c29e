"""The quota service: who may use what. It keeps the tenant tree (cohorts of institutions, their
projects), quota per resource class (SKU, family, normalised unit) with guarantees, borrowing and
lending inside cohorts and hard caps, budgets of accelerator-hours, priority classes and fair-share
state, and the two-phase reservations (reserve → commit / cancel, with a TTL) through which the
broker takes capacity, checked against the whole tree in one atomic step."""
