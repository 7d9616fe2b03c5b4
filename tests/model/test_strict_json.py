"""The reference stack's one strict JSON reader: what it refuses, with which reason, and what it still accepts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.model import strict_json
from harness.model.strict_json import JsonBodyError


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": NaN}', "non_finite"),
        (b"[Infinity]", "non_finite"),
        (b"-Infinity", "non_finite"),
        (b'{"a": 1e400}', "non_finite"),
        (b'{"a": -2.5e999}', "non_finite"),
        (b'{"a": "\\ud800"}', "lone_surrogate"),
        (b'{"\\udfff": 1}', "lone_surrogate"),
        (b'["x\\uDBFF"]', "lone_surrogate"),
        (b'"\\ude00\\ud83d"', "lone_surrogate"),  # a pair in the wrong order is two lone halves
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "too_deep"),
        (b"[" * 513 + b"]" * 513, "too_deep"),
        (b'{"a": "\xff"}', "not_utf8"),
        (b'"\xed\xa0\x80"', "not_utf8"),  # U+D800 encoded as UTF-8 bytes
        ("[1]".encode("utf-16"), "not_utf8"),
        (b"", "syntax"),
        (b'{"a": 1', "syntax"),
        (b"1" + b"0" * 5000, "syntax"),  # more digits than Python converts
        (b'{"a": "\x01"}', "syntax"),  # a raw control character in a string
    ],
    ids=lambda v: repr(v[:30]) if isinstance(v, bytes) else None,
)
def test_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(JsonBodyError) as refused:
        strict_json.loads(raw)
    assert refused.value.reason == reason
    assert isinstance(refused.value, ValueError) and str(refused.value)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"a": "\\ud83d\\ude00"}', {"a": "\U0001f600"}),  # a valid pair is one character
        (b'"\\\\ud800"', "\\ud800"),  # an escaped backslash, then the text ud800: not a surrogate
        (b'{"n": 1.7976931348623157e308}', {"n": 1.7976931348623157e308}),
        (b'{"n": 1e-400}', {"n": 0.0}),  # underflow is a finite zero
        (b"[" * 512 + b"]" * 512, json.loads("[" * 512 + "]" * 512)),
        (b'"a\\u0000b"', "a\x00b"),
        ('"é"'.encode(), "é"),
    ],
)
def test_accepted(raw: bytes, value: object) -> None:
    assert strict_json.loads(raw) == value


def test_nul_refused_only_when_asked() -> None:
    with pytest.raises(JsonBodyError) as refused:
        strict_json.loads(b'{"k\\u0000": 1}', allow_nul=False)
    assert refused.value.reason == "nul"
    assert strict_json.loads(b'"\\\\u0000"', allow_nul=False) == "\\u0000"


def test_big_floats_for_callers_that_pass_the_text_on() -> None:
    assert strict_json.loads(b'{"n": 1e400}', big_floats=True) == {"n": float("inf")}
    with pytest.raises(JsonBodyError):
        strict_json.loads(b'{"n": NaN}', big_floats=True)


def test_a_smaller_depth_bound() -> None:
    assert strict_json.loads("[[[]]]", max_depth=3) == [[[]]]
    with pytest.raises(JsonBodyError) as refused:
        strict_json.loads('{"a":[[[]]]}', max_depth=3)
    assert refused.value.reason == "too_deep"


finite = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=finite)
def test_whatever_json_dumps_writes_from_unicode_text_reads_back(value: object) -> None:
    for ascii_only in (True, False):
        text = json.dumps(value, ensure_ascii=ascii_only)
        assert strict_json.loads(text.encode("utf-8", "surrogatepass")) == json.loads(text)


def test_depth_is_decided_before_parsing_whatever_the_callers_stack() -> None:
    """Refused at max_depth + 1 even with little stack left, where json.loads alone would fail at random depths."""

    def nested_calls(n: int) -> JsonBodyError:
        if n:
            return nested_calls(n - 1)
        with pytest.raises(JsonBodyError) as refused:
            strict_json.loads("[" * 990 + "]" * 990, max_depth=100)
        return refused.value

    assert nested_calls(900).reason == "too_deep"


@pytest.mark.parametrize(
    ("text", "members"),
    [
        ('{"topic":"realtime:x","ref":"7","payload":{"n":NaN}}', {"topic": "realtime:x", "ref": "7"}),
        ('{"payload":' + "[" * 5000 + "]" * 5000 + ',"ref":3,"topic":"t"}', {"topic": "t", "ref": 3}),
        ('{"topic":"a\\"b,}","event":"e"}', {"topic": 'a"b,}'}),
        ('{"topic":"\\ud800","ref":NaN}', {}),  # neither value is strict JSON
        ('{"topic":{"nested":1},"ref":null}', {"ref": None}),  # only scalars
        ('{"topic":"t","ref":"1"', {"topic": "t"}),  # truncated before the last value ended
        ('["topic","t"]', {}),
        ('"topic"', {}),
        ('{"x":{"topic":"inner"}}', {}),  # only the top level counts
        ('{"topic":"t"} {"topic":"u"}', {"topic": "t"}),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_top_level_members_read_only_what_is_asked(text: str, members: dict[str, object]) -> None:
    assert strict_json.top_level_members(text, frozenset({"topic", "ref"})) == members


@pytest.mark.parametrize(
    "text",
    ["[" * 200 + '"\\"' * 200_000, '{"a":"' + "\\" * 400_001, '"' * 400_001],
    ids=["escaped-quotes", "backslashes", "quotes"],
)
def test_scanning_hostile_text_is_linear(text: str) -> None:
    """Unterminated strings full of escaped quotes: a scan restarting at every quote would be quadratic (hours)."""
    with pytest.raises(JsonBodyError):
        strict_json.loads(text, max_depth=100)
    strict_json.top_level_members(text, frozenset({"topic"}))
