"""`make security` checks what SECURITY.md says: each cfn-lint security rule fires on a template
broken the way it forbids (after the SAM transform, as .ci/security runs it), and bandit's
exclusions leave out exactly the folders named, so a planted module anywhere else is reported."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.decode.cfn_yaml import loads
from cfnlint.rules import RulesCollection

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / ".ci" / "cfn-lint-security.rules"
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
Template = dict[str, Any]


def rule_messages() -> list[str]:
    """Each rule's message (the quoted text at the end of its line)."""
    lines = [line for line in RULES.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [line.split(' ERROR "', 1)[1].removesuffix('"') for line in lines]


def properties(template: Template, name: str) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"][name]["Properties"]
    return found


def statement_of(template: Template, role: str, action: str) -> dict[str, Any]:
    for policy in properties(template, role)["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement.get("Action") == action or action in statement.get("Action", []):
                found: dict[str, Any] = statement
                return found
    raise LookupError(action)


def set_effect_deny(statement: dict[str, Any]) -> None:
    statement["Effect"] = "Deny"


# Per rule (by its message): how to break template.yaml so that the rule must report it.
MUTATIONS: dict[str, Callable[[Template], None]] = {
    "every queue is encrypted at rest (SSE-SQS), said explicitly": lambda t: properties(t, "FailedRecordsQueue").pop(
        "SqsManagedSseEnabled"
    ),
    "every queue is encrypted at rest (SSE-SQS)": lambda t: properties(t, "StreamFailureQueue").update(
        SqsManagedSseEnabled=False
    ),
    "every table is encrypted at rest (KMS), said explicitly": lambda t: properties(t, "SyncStateTable").pop(
        "SSESpecification"
    ),
    "every table is encrypted at rest": lambda t: properties(t, "SyncStateTable").update(
        SSESpecification={"SSEEnabled": False}
    ),
    "logs are kept for a bounded time": lambda t: properties(t, "StreamSyncLogGroup").pop("RetentionInDays"),
    "each function logs to its own log group (its role may write there only)": lambda t: properties(
        t, "QueueSyncFunction"
    ).pop("LoggingConfig"),
    "each function has its own role, naming what it touches: no managed policy (SAM adds one to the role it "
    "makes for a function without Role)": lambda t: properties(t, "StreamSyncFunction").pop("Role"),
    "a function may be invoked only from the one source named": lambda t: properties(
        t, "RotationSyncInvokePermission"
    ).pop("SourceArn"),
    # BackfillFunction's too: it had no on-failure destination before this rule saw SAM's functions.
    "failed asynchronous invocations are kept, not dropped": lambda t: properties(t, "BackfillFunction")[
        "EventInvokeConfig"
    ].pop("DestinationConfig"),
    "events EventBridge cannot deliver are kept, not dropped": lambda t: properties(t, "RotationEventsRule")["Targets"][
        0
    ].pop("DeadLetterConfig"),
    "a queue policy admits its one source only": lambda t: properties(t, "RotationFailureQueuePolicy")[
        "PolicyDocument"
    ]["Statement"][0].pop("Condition"),
    "no Deny statements to reason about: the roles grant exactly what each function needs": lambda t: set_effect_deny(
        statement_of(t, "QueueSyncRole", "sqs:SendMessage")
    ),
    "no Deny statements to reason about, in a role's separate policies either": lambda t: set_effect_deny(
        properties(t, "BackfillSelfInvokePolicy")["PolicyDocument"]["Statement"][0]
    ),
}


def test_every_rule_has_a_mutation() -> None:
    assert sorted(rule_messages()) == sorted(MUTATIONS)


@pytest.fixture(scope="module")
def transformed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The template and each mutation, through the SAM transform (tools/sam_transform.py with the
    SAM CLI's Python, as .ci/security runs it), in one process."""
    if not SAM_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail("no .venv-sam: CI makes it before the tests (make sam-venv)")
        pytest.skip("needs the SAM CLI's Python for the SAM transform: make sam-venv")
    folder = tmp_path_factory.mktemp("templates")
    source: Template = loads((ROOT / "template.yaml").read_text())
    arguments: list[str] = []
    for index, message in enumerate([None, *MUTATIONS]):
        template = copy.deepcopy(source)
        if message is not None:
            MUTATIONS[message](template)
        (folder / f"{index}.json").write_text(json.dumps(template))
        arguments += [str(folder / f"{index}.json"), str(folder / f"{index}.out.yaml")]
    subprocess.run(  # noqa: S603 - the SAM CLI's Python on our own script
        [str(SAM_PYTHON), str(ROOT / "tools" / "sam_transform.py"), *arguments], check=True, timeout=120
    )
    return {
        message or "": (folder / f"{index}.out.yaml").read_text() for index, message in enumerate([None, *MUTATIONS])
    }


def security_findings(template: str) -> list[str]:
    """What the security rules report (cfn-lint's own rules run in make security, not here)."""
    rules = RulesCollection()
    rules.create_from_custom_rules_file(str(RULES))
    return [match.message for match in lint(template, rules=rules, regions=["us-east-1"])]


def test_the_template_passes_the_rules(transformed: dict[str, str]) -> None:
    assert security_findings(transformed[""]) == []


@pytest.mark.parametrize("message", list(MUTATIONS))
def test_each_rule_reports_the_mutation_it_forbids(transformed: dict[str, str], message: str) -> None:
    assert message in security_findings(transformed[message])


# -- bandit -----------------------------------------------------------------------------------------

PLANTED = "import subprocess\n\n\ndef run(text):\n    eval(text)\n    subprocess.run(text, shell=True)\n"
# Paths that only contain an excluded folder's name: scanned like any other module.
OUTSIDE = [
    "operations/tests_helper.py",
    "layers/sync_core/vercel_sync/build_x.py",
    "tools/bench_report.py",
    "tools/tests/helper.py",
    "functions/venv_check/app.py",
    "testsuite/x.py",
    "benchmarks/x.py",
    "x.aws-sam/y.py",
]
# The excluded folders themselves (pyproject.toml [tool.bandit] exclude_dirs).
INSIDE = ["tests/x.py", "bench/x.py", "build/x.py", ".venv/lib/x.py", ".venv-sam/x.py", ".aws-sam/build/x.py"]


def test_bandit_reports_a_planted_module_anywhere_but_the_excluded_folders(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for relative in OUTSIDE + INSIDE:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(PLANTED)
    # The command .ci/security runs, in a copy of the repository's layout.
    assert "-m bandit -q -c pyproject.toml -r . " in (ROOT / ".ci" / "security").read_text()
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-c", "pyproject.toml", "-r", ".", "-f", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    found: dict[str, set[str]] = {}
    for issue in json.loads(result.stdout)["results"]:
        found.setdefault(issue["filename"].removeprefix("./"), set()).add(issue["test_id"])
    assert sorted(found) == sorted(OUTSIDE)
    for relative, tests in found.items():
        assert {"B307", "B602"} <= tests, relative  # eval, and subprocess with shell=True
