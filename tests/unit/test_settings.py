"""Configuration from the environment: defaults, parsing, and clear refusals."""

from __future__ import annotations

import pytest

from vercel_sync.errors import ConfigurationError
from vercel_sync.settings import RateLimit, Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.vercel_api_url == "https://api.vercel.com"
    assert settings.token_secret_id_for("icfg_1") == "vercel/installations/icfg_1"
    assert settings.max_concurrency == 16
    assert settings.rate_limit == RateLimit(calls=100, seconds=60)
    assert settings.failed_records_queue_url is None
    assert settings.sync_state_table is None


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "VERCEL_API_URL": "http://127.0.0.1:8787/",
            "VERCEL_TOKEN_SECRET_ID": "t/{integrationConfigurationId}/token",
            "FAILED_RECORDS_QUEUE_URL": "http://localhost:5000/123456789012/failed",
            "SYNC_STATE_TABLE": "",
            "MAX_CONCURRENCY": "32",
            "VERCEL_RATE_LIMIT": "50/5",
            "HTTP_TIMEOUT_SECONDS": "2.5",
        }
    )
    assert settings.vercel_api_url == "http://127.0.0.1:8787"
    assert settings.token_secret_id_for("a{b}") == "t/a{b}/token"
    assert settings.sync_state_table is None
    assert settings.max_concurrency == 32
    assert settings.rate_limit == RateLimit(calls=50, seconds=5)
    assert settings.http_timeout_seconds == 2.5


@pytest.mark.parametrize(
    "url", ["http://localhost:1", "http://[::1]:8080", "http://127.0.0.2", "https://api.vercel.com"]
)
def test_allowed_api_urls(url: str) -> None:
    assert Settings.from_env({"VERCEL_API_URL": url}).vercel_api_url == url


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"VERCEL_API_URL": "http://api.vercel.com"},
            "VERCEL_API_URL: Value error, plain http is allowed only for loopback",
        ),
        ({"VERCEL_API_URL": "ftp://x"}, "VERCEL_API_URL: Value error, must be an absolute http(s) URL"),
        ({"VERCEL_API_URL": "https://u:p@api.vercel.com"}, "must not carry a query, fragment or credentials"),
        ({"VERCEL_TOKEN_SECRET_ID": "vercel/token"}, "VERCEL_TOKEN_SECRET_ID: Value error, must contain"),
        ({"MAX_CONCURRENCY": "0"}, "MAX_CONCURRENCY: Input should be greater than or equal to 1"),
        ({"VERCEL_RATE_LIMIT": "100"}, "VERCEL_RATE_LIMIT: Value error, expected CALLS/SECONDS"),
        ({"VERCEL_RATE_LIMIT": "0/60"}, "VERCEL_RATE_LIMIT"),
        ({"HTTP_TIMEOUT_SECONDS": "soon"}, "HTTP_TIMEOUT_SECONDS: Input should be a valid number"),
    ],
)
def test_invalid_configuration_names_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(environ)
    assert message in str(caught.value)


def test_each_slow_step_has_a_least_time_worth_starting_with() -> None:
    from vercel_sync.wiring import time_budget

    budget = time_budget(Settings(http_timeout_seconds=10))
    # An AWS call at its shortest timeouts (parking a record is one): 0.5 s connect + 1.5 s read, once.
    assert budget.aws_call_ms == 2_000
    assert budget.park_ms == 2_000
    # The shortest Vercel call worth making.
    assert budget.vercel_call_ms == 1_000
    # A record starts with 2 + 2 s and the 1 s margin, whatever HTTP_TIMEOUT_SECONDS is.
    assert budget.record_ms == 5_000
    assert budget.least_function_timeout_ms == 6_000
    assert time_budget(Settings(http_timeout_seconds=15)) == budget


def test_a_secret_is_looked_up_under_each_name_an_import_may_have_kept() -> None:
    from vercel_sync.settings import secret_names_of

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:partner/resources/icfg_a/orders"
    assert secret_names_of(arn + "-AbC123") == (
        "partner/resources/icfg_a/orders-AbC123",
        "partner/resources/icfg_a/orders",
    )
    # A partial ARN of a name that ends like a suffix: kept as given, never read as another secret's.
    assert secret_names_of(arn + "-backup")[0] == "partner/resources/icfg_a/orders-backup"
    assert secret_names_of("partner/resources/icfg_a/orders-backup") == ("partner/resources/icfg_a/orders-backup",)


def test_the_removal_mode_is_uninstalled_or_delete() -> None:
    from vercel_sync.settings import SyncSettings

    assert SyncSettings.from_env({}).removal_mode == "uninstalled"
    assert SyncSettings.from_env({"REMOVAL_MODE": "delete"}).removal_mode == "delete"
    with pytest.raises(ConfigurationError, match="REMOVAL_MODE"):
        SyncSettings.from_env({"REMOVAL_MODE": "purge"})
