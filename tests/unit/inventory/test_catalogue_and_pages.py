"""The SKU catalogue shipped as package data, and the opaque page tokens of ListNodes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import NAME_RE
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.catalogue import load_catalogue
from slicebroker.inventory.domain.model import DeviceKind
from slicebroker.inventory.domain.service import decode_page_token, encode_page_token


def test_catalogue_holds_the_seven_canonical_skus() -> None:
    catalogue = load_catalogue()
    assert catalogue.names == (
        "H100-SXM-80GB",
        "H200-SXM-141GB",
        "A100-SXM-80GB",
        "B200-SXM-180GB",
        "RNGD",
        "ATOM",
        "REBEL",
    )
    kinds = {sku.name: (sku.vendor, sku.kind) for sku in catalogue}
    assert kinds["H200-SXM-141GB"] == ("nvidia", DeviceKind.GPU)
    assert kinds["RNGD"] == ("furiosa", DeviceKind.NPU)
    assert kinds["ATOM"] == ("rebellions", DeviceKind.NPU)
    assert kinds["REBEL"] == ("rebellions", DeviceKind.NPU)
    assert all(sku.memory_gib > 0 and sku.model for sku in catalogue)


def test_unknown_sku_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidArgument) as caught:
        load_catalogue().require("sku", "h100-sxm-80gb")  # names are case-sensitive
    assert caught.value.field == "sku"
    assert caught.value.reason == Reason.UNKNOWN_SKU
    assert "H100-SXM-80GB, H200-SXM-141GB" in caught.value.message


names = st.from_regex(NAME_RE, fullmatch=True)


@given(names, st.sampled_from(["", *load_catalogue().names]))
def test_page_tokens_round_trip(after: str, sku: str) -> None:
    token = encode_page_token(after, sku)
    assert token.isascii() and "=" not in token
    assert decode_page_token(token, sku) == after


@pytest.mark.parametrize("token", ["x", "!!!", "eyJ9", "bnVsbA", "W10", encode_page_token("", "")])
def test_foreign_page_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token, "")
    assert caught.value.field == "page_token"


def test_a_token_cannot_change_the_filter() -> None:
    with pytest.raises(InvalidArgument, match="issued for sku filter 'RNGD'"):
        decode_page_token(encode_page_token("n1", "RNGD"), "ATOM")
