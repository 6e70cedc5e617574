"""The `design` query parameter: zlib-compressed design JSON, base64url without padding."""

from __future__ import annotations

import base64
import json
import re
import zlib

import pytest

from builder.design import DesignError, design_from_dict, dump_design
from builder.share import decode_design, encode_design

SEED = {
    "version": 1,
    "name": "seed-mlp",
    "input": {"shape": [2, 20]},
    "layers": [
        {"type": "LazyLinear", "params": {"out_features": 256}},
        {"type": "ReLU"},
        {"type": "LazyLinear", "params": {"out_features": 10}},
    ],
}


@pytest.fixture
def seed():
    return design_from_dict(SEED)


def test_round_trip_keeps_the_design(seed):
    assert decode_design(encode_design(seed)) == seed


def test_text_is_url_safe_without_padding(seed):
    text = encode_design(seed)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", text)


def test_encoding_is_the_documented_one(seed):
    """What the README documents: base64url(zlib(design JSON)), padding stripped; anyone can decode it by hand."""
    text = encode_design(seed)
    raw = zlib.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    assert raw.decode() == dump_design(seed)
    assert json.loads(raw)["layers"][0]["type"] == "LazyLinear"


def test_padded_text_is_accepted(seed):
    text = encode_design(seed)
    assert decode_design(text + "=" * (-len(text) % 4)) == seed


def test_a_hand_made_link_is_read():
    text = base64.urlsafe_b64encode(zlib.compress(json.dumps(SEED).encode())).decode().rstrip("=")
    assert [layer.type for layer in decode_design(text).layers] == ["LazyLinear", "ReLU", "LazyLinear"]


def _encode_bytes(raw: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(raw)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("not base64!", "not base64url"),
        ("A", "not base64url"),
        ("aGVsbG8gd29ybGQ", "corrupted"),
        (_encode_bytes(b"\xff\xfe"), "does not hold design JSON"),
        (_encode_bytes(b"{not json"), "not valid JSON"),
        (_encode_bytes(b"[1, 2]"), "JSON object"),
        (_encode_bytes(json.dumps({**SEED, "layers": [{"type": "Linar"}]}).encode()), "did you mean 'Linear'"),
    ],
)
def test_a_broken_link_says_what_is_wrong(text, message):
    with pytest.raises(DesignError, match=message) as info:
        decode_design(text)
    assert str(info.value).startswith("design link:")


def test_a_cut_link_is_refused(seed):
    text = encode_design(seed)
    with pytest.raises(DesignError, match="design link"):
        decode_design(text[: len(text) // 2])


def test_a_zip_bomb_is_refused():
    with pytest.raises(DesignError, match="larger than"):
        decode_design(_encode_bytes(b" " * 3_000_000))
