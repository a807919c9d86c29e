"""The SKU catalogue file every service reads: one data file, so that inventory (which serves it),
quota (which caps by it) and the rest never disagree on which accelerator models exist."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml


@cache
def catalogue_text() -> str:
    return resources.files("slicebroker.core").joinpath("catalogue.yaml").read_text(encoding="utf-8")


@cache
def sku_names() -> tuple[str, ...]:
    """Canonical SKU names, in catalogue order."""
    return tuple(str(entry["name"]) for entry in yaml.safe_load(catalogue_text())["skus"])
