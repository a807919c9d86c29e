"""The operator is a client of the public SDK (`slicebroker.client`): no private module of the SDK
and no private method of its clients."""

from __future__ import annotations

import ast
from pathlib import Path

import slicebroker.operator

OPERATOR = Path(slicebroker.operator.__file__).parent


def private_uses(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("slicebroker.client"):
            if node.module.startswith("slicebroker.client._"):
                found.append(node.module)
            else:
                found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("slicebroker.client._")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            # A private member of the SDK client (held as `sb` / `self.sb`).
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id == "sb") or (
                isinstance(owner, ast.Attribute) and owner.attr == "sb"
            ):
                found.append(node.attr)
    return found


def test_operator_uses_only_the_public_sdk() -> None:
    offenders = {
        path.name: uses
        for path in sorted(OPERATOR.glob("*.py"))
        if (uses := private_uses(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_the_check_sees_private_uses() -> None:
    assert private_uses("from slicebroker.client import _ops as ops\nsb._run(x)") == [
        "slicebroker.client._ops",
        "_run",
    ]
    assert private_uses("from slicebroker.client._sync import Client") == ["slicebroker.client._sync"]
    assert private_uses("from slicebroker.client import Client, Shape") == []
