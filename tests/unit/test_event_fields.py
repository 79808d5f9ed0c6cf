"""Lambda's own fields of an event record (``event_fields.py``): what a missing one is taken as."""

from __future__ import annotations

import pytest

from vercel_sync.event_fields import sqs_receive_count


@pytest.mark.parametrize(
    ("attributes", "count"),
    [({"ApproximateReceiveCount": "3"}, 3), ({}, 1), ({"ApproximateReceiveCount": ""}, 1), (None, 1)],
)
def test_a_missing_receive_count_is_taken_as_the_first_delivery(attributes: object, count: int) -> None:
    assert sqs_receive_count({"attributes": attributes}) == count
