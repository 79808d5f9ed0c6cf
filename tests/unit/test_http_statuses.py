"""Which HTTP statuses a later try may fix, written out: DESIGN.md's rule is
429, 5xx and timeouts are retried; 400, 404, 409, 410, 422 are not."""

from __future__ import annotations

from vercel_sync.errors import INSTALLATION_HTTP_STATUSES, is_transient_http_status

TRANSIENT = {408, 425, 429, *range(500, 600)}


def test_each_status_is_transient_or_not_as_written_here() -> None:
    wrong = [status for status in range(100, 600) if is_transient_http_status(status) is not (status in TRANSIENT)]
    assert wrong == []


def test_the_statuses_that_refuse_a_whole_installation() -> None:
    assert set(INSTALLATION_HTTP_STATUSES) == {403, 404, 410}
    assert not any(is_transient_http_status(status) for status in INSTALLATION_HTTP_STATUSES)
