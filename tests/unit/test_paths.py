"""Path ids: any id is exactly one path segment and comes back unchanged."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import change, record_with_secret
from tests.fakes import FakeFailedRecords, FakeSecrets, FakeVercel, make_sync_service, sync_one
from vercel_sync.adapters.vercel import VercelClient
from vercel_sync.errors import PermanentSyncError
from vercel_sync.paths import decode_path_segment, encode_path_segment

CLIENT = VercelClient("https://api.vercel.com")  # building one costs an SSL context: share it
BASE = "https://api.vercel.test"


def request_path(installation_id: str, resource_id: str) -> str:
    # httpx.URL parses (and would normalise) the URL exactly as the request will.
    url = httpx.URL(CLIENT.resource_url(installation_id, resource_id))
    return url.raw_path.decode("ascii")


@pytest.mark.parametrize(
    "resource_id",
    ["a/b", "a?b=c", "a#frag", "100%", "with space", "../../admin", "...", "ü-unicode", "a%2Fb", "+&=;"],
)
def test_awkward_ids_stay_one_segment(resource_id: str) -> None:
    path = request_path("icfg/1", resource_id)
    prefix, installation, resources, segment = path.rsplit("/", 3)
    assert prefix == "/v1/installations"[: len(prefix)]
    assert resources == "resources"
    assert decode_path_segment(installation) == "icfg/1"
    assert decode_path_segment(segment) == resource_id
    assert "?" not in path
    assert "#" not in path


ids = st.text(min_size=1, max_size=80).filter(lambda text: text not in {".", ".."})


@settings(max_examples=500, deadline=None)
@given(installation_id=ids, resource_id=ids)
def test_ids_round_trip_through_the_request_path(installation_id: str, resource_id: str) -> None:
    path = request_path(installation_id, resource_id)
    parts = path.split("/")
    assert parts[:3] == ["", "v1", "installations"]
    assert parts[4] == "resources"
    assert len(parts) == 6
    assert decode_path_segment(parts[3]) == installation_id
    assert decode_path_segment(parts[5]) == resource_id


def test_empty_id_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode_path_segment("")


@pytest.mark.parametrize("dots", [".", ".."])
def test_dot_segments_are_refused(dots: str) -> None:
    with pytest.raises(ValueError, match=r"'\.\.'"):
        encode_path_segment(dots)


@pytest.mark.parametrize("resource_id", [".", ".."])
def test_dot_segment_ids_are_invalid_records(resource_id: str) -> None:
    failed = FakeFailedRecords()
    vercel = FakeVercel()
    service = make_sync_service(vercel=vercel, secrets=FakeSecrets(), failed_records=failed)

    assert sync_one(service, change(record_with_secret(resourceId=resource_id))) == "parked"
    assert failed.reasons() == ["invalid_record"]
    assert vercel.calls == []


def test_client_refuses_dot_segment_ids() -> None:
    client = VercelClient(BASE)
    with pytest.raises(PermanentSyncError) as caught:
        client.resource_url("icfg_1", "..")
    assert caught.value.reason == "invalid_record"
