"""Every partner status word and the Vercel status it becomes.

The table is written out here, as docs/configuration.md documents it, not read from the code's own table:
a word mapped to the wrong status (``degraded`` -> ``ready``) fails here, not only in a chaos run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fakes import build_import_payload
from vercel_sync.errors import InvalidRecordError
from vercel_sync.partner_schema import STATUS_TABLE
from vercel_sync.transform import parse_partner_record

WORDS: dict[str, str] = {
    "ready": "ready",
    "active": "ready",
    "available": "ready",
    "running": "ready",
    "healthy": "ready",
    "pending": "pending",
    "creating": "pending",
    "provisioning": "pending",
    "starting": "pending",
    "updating": "pending",
    "onboarding": "onboarding",
    "suspended": "suspended",
    "paused": "suspended",
    "stopped": "suspended",
    "disabled": "suspended",
    "resumed": "resumed",
    "uninstalled": "uninstalled",
    "deleted": "uninstalled",
    "removed": "uninstalled",
    "terminated": "uninstalled",
    "error": "error",
    "failed": "error",
    "degraded": "error",
}

CONFIGURATION_PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def imported_status(word: str) -> str:
    item = {"integrationConfigurationId": "icfg_1", "resourceId": "r", "productId": "p", "name": "n", "status": word}
    return build_import_payload(parse_partner_record(item)).status


@pytest.mark.parametrize(("word", "status"), sorted(WORDS.items()))
def test_each_partner_word_is_imported_with_its_vercel_status(word: str, status: str) -> None:
    assert imported_status(word) == status
    # Case and surrounding spaces do not matter.
    assert imported_status(f" {word.upper()} ") == status
    assert imported_status(word.capitalize()) == status


def test_the_words_are_exactly_the_documented_ones() -> None:
    assert sorted(STATUS_TABLE) == sorted(WORDS)


@pytest.mark.parametrize("word", ["", "unknown", "ready!", "readyy", "act ive"])
def test_other_words_are_invalid_records(word: str) -> None:
    with pytest.raises(InvalidRecordError, match="unknown partner status"):
        imported_status(word)


def test_the_configuration_page_documents_the_same_table() -> None:
    rows = re.findall(r"^\| `(\w+)` \| ([a-z, ]+) \|$", CONFIGURATION_PAGE.read_text(), flags=re.MULTILINE)
    documented = {word.strip(): status for status, words in rows for word in words.split(",")}
    assert documented == WORDS
