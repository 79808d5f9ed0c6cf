"""How one installation's resources at Vercel compare with the partner's (pure: no AWS, no HTTP).

The partner's side is the Import Resource body its record makes (``None``: the partner removed it);
Vercel's is what ``GET .../resources`` reports. Secret values cannot be read back: only names compare.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from vercel_sync.settings import RemovalMode

Kind = Literal["in_step", "missing", "different", "orphaned"]
KINDS: tuple[Kind, ...] = ("in_step", "missing", "different", "orphaned")
DRIFT_KINDS: tuple[Kind, ...] = ("missing", "different", "orphaned")
COMPARED_FIELDS = ("name", "status", "productId", "billingPlan", "metadata", "secrets")
UNINSTALLED = "uninstalled"


@dataclass(frozen=True)
class Finding:
    resource_id: str
    kind: Kind
    fields: tuple[str, ...] = ()  # "different": which of COMPARED_FIELDS differ


@dataclass
class InstallationReport:
    installation_id: str
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None  # why the installation could not be compared (its token, Vercel's answer)

    def counts(self) -> dict[Kind, int]:
        found = Counter(finding.kind for finding in self.findings)
        return {kind: found[kind] for kind in KINDS}

    @property
    def drift(self) -> int:
        return sum(1 for finding in self.findings if finding.kind != "in_step")

    def of_kind(self, *kinds: Kind) -> list[Finding]:
        return [finding for finding in self.findings if finding.kind in kinds]


def partner_id(held: Mapping[str, Any]) -> str | None:
    """The partner's id of a resource Vercel lists: ``partnerId`` only. The list's ``id``, if any, is not
    documented as the partner's (the SDK's list model has none), and a guess could make an orphan."""
    value = held.get("partnerId")
    return value if isinstance(value, str) else None


def _plan_id(resource: Mapping[str, Any]) -> str | None:
    plan = resource.get("billingPlan")
    if isinstance(plan, Mapping) and isinstance(plan.get("id"), str):
        return str(plan["id"])
    plan_id = resource.get("billingPlanId")
    return plan_id if isinstance(plan_id, str) else None


def _secret_names(resource: Mapping[str, Any]) -> list[str] | None:
    secrets = resource.get("secrets")
    if not isinstance(secrets, list):
        return None
    return sorted(str(secret.get("name")) for secret in secrets if isinstance(secret, Mapping))


def differing_fields(expected: Mapping[str, Any], held: Mapping[str, Any]) -> tuple[str, ...]:
    """The compared fields where Vercel's view differs from the partner's body. Secret names are compared
    only when Vercel reports secrets at all (the official SDK's read model leaves them out)."""
    differ = [name for name in ("name", "status", "productId") if expected.get(name) != held.get(name)]
    if _plan_id(expected) != _plan_id(held):
        differ.append("billingPlan")
    if (expected.get("metadata") or {}) != (held.get("metadata") or {}):
        differ.append("metadata")
    held_names = _secret_names(held)
    if held_names is not None and (_secret_names(expected) or []) != held_names:
        differ.append("secrets")
    return tuple(differ)


def compare_installation(
    installation_id: str,
    expected: Mapping[str, Mapping[str, Any] | None],
    held: Iterable[Mapping[str, Any]],
    *,
    removal_mode: RemovalMode = "uninstalled",
    unreadable: Collection[str] = (),
) -> InstallationReport:
    """Each resource of the installation, classified. ``expected``: partner id -> the body its record
    makes, ``None`` when the partner removed it (a ``deleted`` record). ``unreadable``: partner ids whose
    items cannot be read; left out (counted apart), so never taken for orphans."""
    at_vercel = {pid: resource for resource in held if (pid := partner_id(resource)) is not None}
    report = InstallationReport(installation_id)
    for resource_id in sorted((set(expected) | set(at_vercel)) - set(unreadable)):
        report.findings.append(_classify(resource_id, expected, at_vercel.get(resource_id), removal_mode))
    return report


def _classify(
    resource_id: str,
    expected: Mapping[str, Mapping[str, Any] | None],
    held: Mapping[str, Any] | None,
    removal_mode: RemovalMode,
) -> Finding:
    body = expected.get(resource_id)
    partner_has_it = resource_id in expected and (body is not None and body.get("status") != UNINSTALLED)
    if held is None:
        # A removal Vercel no longer shows (or never saw) is in step in both modes.
        return Finding(resource_id, "missing" if partner_has_it else "in_step")
    if not partner_has_it:
        # Removed by the partner (or never theirs): in uninstalled mode Vercel should show it uninstalled;
        # in delete mode it should be gone.
        if removal_mode == "uninstalled" and held.get("status") == UNINSTALLED:
            return Finding(resource_id, "in_step")
        return Finding(resource_id, "orphaned")
    assert body is not None
    differ = differing_fields(body, held)
    return Finding(resource_id, "different", differ) if differ else Finding(resource_id, "in_step")


def totals(reports: Sequence[InstallationReport]) -> dict[Kind, int]:
    summed: Counter[Kind] = Counter()
    for report in reports:
        summed.update(report.counts())
    return {kind: summed[kind] for kind in KINDS}
