"""The keyed hash personal data is replaced by: vectorised HMAC-SHA256 equal to Python's hmac."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

import polars as pl
import pytest

from assets.ingest.privacy import pseudonymise

KEY = b"govmetrics-test-key"


def expected(value: str | None, key: bytes = KEY) -> str | None:
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", value).strip()
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest() if text else None


VALUES = [
    "21010219900101123X",  # an 18-digit ID ending in X
    "210102199001011234",
    "13800138000",
    "１３８００１３８０００",  # full-width digits: NFKC first
    "  张三  ",
    "沈阳市和平区南京北街1号",
    "a" * 300,  # longer than a hash block
    "",
    "   ",
    None,
]


def test_equals_python_hmac() -> None:
    frame = pl.DataFrame({"id": VALUES, "other": list(range(len(VALUES)))})
    out = pseudonymise(frame, ["id"], KEY)
    assert out.columns == ["id", "other"]
    assert out["other"].to_list() == list(range(len(VALUES)))
    assert out["id"].to_list() == [expected(v) for v in VALUES]
    hashed = [h for h in out["id"].to_list() if h is not None]
    assert all(len(h) == 64 and h == h.lower() for h in hashed)


def test_nfkc_and_trim_make_equal_values_hash_alike() -> None:
    out = pseudonymise(
        pl.DataFrame({"p": ["13800138000", "１３８００１３８０００", " 13800138000 "]}), ["p"], KEY
    )
    assert out["p"].n_unique() == 1


def test_empty_and_missing_stay_null() -> None:
    out = pseudonymise(pl.DataFrame({"p": ["", "  ", None]}, schema={"p": pl.String}), ["p"], KEY)
    assert out["p"].to_list() == [None, None, None]


@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"y" * 65, ("沈阳市大数据局" * 10).encode()])
def test_any_key_length(key: bytes) -> None:
    out = pseudonymise(pl.DataFrame({"id": VALUES}), ["id"], key)
    assert out["id"].to_list() == [expected(v, key) for v in VALUES]


def test_placeholders_are_no_ones_identity() -> None:
    frame = pl.DataFrame({"p": ["-", " 无 ", "N/A", "13800138000", None]})
    out = pseudonymise(frame, ["p"], KEY, missing=["-", "无", "N/A"])
    assert out["p"].to_list() == [None, None, None, expected("13800138000"), None]
    assert pseudonymise(frame, ["p"], KEY)["p"].to_list()[:3] == [expected("-"), expected("无"), expected("N/A")]


def test_different_keys_differ_and_several_columns() -> None:
    frame = pl.DataFrame({"a": ["21010219900101123X"], "b": ["13800138000"], "c": ["keep"]})
    one = pseudonymise(frame, ["a", "b"], KEY)
    two = pseudonymise(frame, ["a", "b"], b"another key")
    assert one["a"][0] != two["a"][0]
    assert one["a"][0] == expected("21010219900101123X")
    assert one["b"][0] == expected("13800138000")
    assert one["c"][0] == "keep"


def test_non_string_columns_and_unknown_names() -> None:
    frame = pl.DataFrame({"n": [12345, None]})
    out = pseudonymise(frame, ["n", "not_there"], KEY)
    assert out.schema["n"] == pl.String
    assert out["n"].to_list() == [expected("12345"), None]


def test_vectorised_on_many_rows() -> None:
    n = 50_000
    ids = [f"2101021990{i:08d}" for i in range(n)]
    out = pseudonymise(pl.DataFrame({"id": ids}), ["id"], KEY)
    assert out.height == n
    assert out["id"].n_unique() == n
    for i in (0, 1234, n - 1):  # order preserved
        assert out["id"][i] == expected(ids[i])


def test_empty_frame_and_bad_key() -> None:
    empty = pl.DataFrame({"id": []}, schema={"id": pl.String})
    assert pseudonymise(empty, ["id"], KEY).height == 0
    with pytest.raises(ValueError):
        pseudonymise(pl.DataFrame({"id": ["x"]}), ["id"], b"")


def test_a_key_that_is_not_text_is_refused_without_being_echoed() -> None:
    with pytest.raises(ValueError, match="UTF-8") as raised:
        pseudonymise(pl.DataFrame({"id": ["x"]}), ["id"], b"\xff\xfesecret")
    assert "secret" not in str(raised.value)
