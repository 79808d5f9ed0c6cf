"""The stream image decoder (``sources.change_from_stream_record``) against the library's reading.

The fast decoder must give exactly what Powertools' ``DynamoDBRecord`` image deserializer followed
by ``transform.json_safe`` gives (values and their types), and the same error for an image it cannot
read: it is an optimisation, not a second definition.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from vercel_sync.errors import InvalidRecordError
from vercel_sync.sources import change_from_stream_record
from vercel_sync.transform import MAX_NESTING, json_safe


def library_reading(image: Any, *, removed: bool = False) -> tuple[str, Any]:
    """("ok", item) or ("error", the decode error) as the handler read images before."""
    record = DynamoDBRecord({"eventName": "REMOVE" if removed else "INSERT", "dynamodb": _stream(image, removed)})
    stream = record.dynamodb
    assert stream is not None
    try:
        decoded = stream.old_image if removed else stream.new_image
    except Exception as exc:  # noqa: BLE001
        return "error", f"unreadable stream image ({type(exc).__name__})"
    if not decoded:
        return "error", "no image"
    try:
        return "ok", json_safe(decoded)
    except InvalidRecordError as error:
        return "error", error.message


def _stream(image: Any, removed: bool) -> dict[str, Any]:
    stream: dict[str, Any] = {"SequenceNumber": "100", "ApproximateCreationDateTime": 1_700_000_000}
    if image is not None:
        stream["OldImage" if removed else "NewImage"] = image
    return stream


def our_reading(image: Any, *, removed: bool = False) -> tuple[str, Any]:
    change = change_from_stream_record(
        {"eventName": "REMOVE" if removed else "INSERT", "dynamodb": _stream(image, removed)}
    )
    if change.decode_error is not None:
        if "has no" in change.decode_error:
            return "error", "no image"
        return "error", change.decode_error
    assert change.json_ready
    return "ok", change.item


def typed(value: Any) -> Any:
    """The value with its types spelled out, so 1 == 1.0 == True do not pass for each other."""
    if isinstance(value, dict):
        return ("dict", [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    return (type(value).__name__, value)


def same(image: Any, *, removed: bool = False) -> None:
    theirs, ours = library_reading(image, removed=removed), our_reading(image, removed=removed)
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "ok":
        assert typed(ours[1]) == typed(theirs[1])
    else:
        assert ours[1] == theirs[1]


def nested(depth: int, leaf: dict[str, Any]) -> dict[str, Any]:
    value = leaf
    for _ in range(depth):
        value = {"M": {"k": value}}
    return value


NUMBERS = ["0", "7", "007", "-3", "-0", "1.5", "1e3", "1E-2", "2.50", "", ".", "NaN", "Infinity", "-Infinity",
           "not-a-number", "1" * 18, "1" * 19, "1" * 38, "1" * 39, "1" + "0" * 45, "9" * 40, "1e200", "1e-200",
           "١٢", "²", " 5", "5 "]  # fmt: skip


@pytest.mark.parametrize("number", NUMBERS)
def test_numbers(number: str) -> None:
    same({"n": {"N": number}})
    same({"m": {"M": {"n": {"N": number}}}, "l": {"L": [{"N": number}]}})


@pytest.mark.parametrize(
    "attribute",
    [
        {"S": "text"},
        {"S": "a\ud800b"},
        {"S": 5},
        {"S": None},
        {"S": {"nested": [1, 2]}},
        {"BOOL": True},
        {"BOOL": "yes"},
        {"NULL": True},
        {"NULL": False},
        {"B": "AP/+"},
        {"SS": ["b", "a", "c"]},
        {"NS": ["30", "1", "2.5", "10", "1.0"]},
        {"NS": ["NaN"]},
        {"BS": ["Ag==", "AQ=="]},
        {"L": []},
        {"M": {}},
        {"L": [{"S": "a"}, {"N": "1"}, {"M": {"x": {"NULL": True}}}]},
        {"M": "not a map"},
        {"L": "not a list"},
        {"Q": "x"},
        {},
        {"S": "a", "N": "1"},
        "plain",
        None,
        ["S", "a"],
    ],
)
def test_attribute_shapes(attribute: Any) -> None:
    same({"a": attribute})
    same({"a": attribute}, removed=True)


@pytest.mark.parametrize("image", [None, {}, [], "text", {"a": {"S": "x"}}])
def test_images(image: Any) -> None:
    same(image)
    same(image, removed=True)


@pytest.mark.parametrize("depth", [MAX_NESTING - 2, MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1, 500])
@pytest.mark.parametrize(
    "leaf", [{"S": "x"}, {"N": "1"}, {"NULL": True}, {"BOOL": False}, {"M": {}}, {"L": []}, {"SS": ["a"]}]
)
def test_nesting_limits(depth: int, leaf: dict[str, Any]) -> None:
    same({"deep": nested(depth, leaf)})


def test_a_deep_image_with_an_unknown_tag_is_unreadable_first() -> None:
    same({"deep": nested(MAX_NESTING + 5, {"S": "x"}), "bad": {"Q": "x"}})


attribute_values = st.recursive(
    st.one_of(
        st.text(max_size=5).map(lambda s: {"S": s}),
        st.booleans().map(lambda b: {"BOOL": b}),
        st.just({"NULL": True}),
        st.integers(min_value=-(10**40), max_value=10**40).map(lambda n: {"N": str(n)}),
        st.decimals(allow_nan=False, allow_infinity=False, places=3).map(lambda d: {"N": str(d)}),
        st.lists(st.text(max_size=3), min_size=1, max_size=3, unique=True).map(lambda v: {"SS": v}),
        st.lists(st.integers(-5, 5).map(str), min_size=1, max_size=3, unique=True).map(lambda v: {"NS": v}),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(st.text(max_size=4), children, max_size=3).map(lambda v: {"M": v}),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=6), attribute_values, min_size=1, max_size=5))
def test_generated_images(image: dict[str, Any]) -> None:
    same(image)
