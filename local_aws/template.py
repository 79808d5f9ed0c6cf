"""template.yaml, read and resolved for a local account.

Only what a local run needs is interpreted: parameter defaults (and overrides), the rules'
assertions (a broken one is refused, as CloudFormation refuses the deploy), conditions
(``Equals``, ``Not``, ``And``, ``Or``, ``Condition``), and the intrinsic functions the
template uses in the functions' environment, the conditions and the resources' properties
(``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` with ``${Name}``, ``Fn::If``, ``Fn::Select``,
``Fn::Split``). Anything else raises, so a template change that this reader cannot follow fails
loudly in the tests instead of being skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"


# A local account has no partner table or queue of its own: the sample ones stand in, as in
# samconfig.toml's dev environment. ``Template.load(..., local_account=False)`` reads the deploy's defaults.
LOCAL_ACCOUNT_PARAMETERS = {"CreateSampleSources": "true"}


class UnsupportedTemplateError(ValueError):
    """The template uses a construct this local reader does not interpret."""


class TemplateRuleError(ValueError):
    """The parameter values break one of the template's rules: CloudFormation would refuse the deploy."""


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    from cfnlint.decode.cfn_yaml import loads

    template: dict[str, Any] = loads(path.read_text())
    return template


@dataclass
class Template:
    """The parsed template with its parameter values fixed."""

    document: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls, overrides: Mapping[str, str] | None = None, path: Path = TEMPLATE_PATH, *, local_account: bool = True
    ) -> Template:
        document = load_template(path)
        values = {name: str(spec.get("Default", "")) for name, spec in document.get("Parameters", {}).items()}
        unknown = set(overrides or {}) - set(values)
        if unknown:
            raise UnsupportedTemplateError(f"no such template parameters: {sorted(unknown)}")
        if local_account:
            values.update({name: value for name, value in LOCAL_ACCOUNT_PARAMETERS.items() if name in values})
        values.update(overrides or {})
        template = cls(document, values)
        broken = template.broken_rules()
        if broken:
            raise TemplateRuleError(" ".join(broken))
        return template

    def broken_rules(self) -> list[str]:
        """The descriptions of the rules' assertions these parameter values break."""
        return [
            " ".join(str(assertion.get("AssertDescription", rule)).split())
            for rule, spec in self.document.get("Rules", {}).items()
            if "RuleCondition" not in spec or self._evaluate_condition(spec["RuleCondition"])
            for assertion in spec.get("Assertions", [])
            if not self._evaluate_condition(assertion["Assert"])
        ]

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.document["Resources"]
        return resources

    def function_environment(self) -> dict[str, Any]:
        """The functions' environment variables as written (Globals), before resolution."""
        variables: dict[str, Any] = self.document["Globals"]["Function"]["Environment"]["Variables"]
        return variables

    def function_timeout_seconds(self) -> int:
        """The functions' timeout (Globals), with the parameter values."""
        return int(float(self.resolve(self.document["Globals"]["Function"]["Timeout"], lambda _id: None)))

    def event_source(self, function: str, event: str) -> dict[str, Any]:
        """The properties of one event source mapping of a function (e.g. its batch size)."""
        properties: dict[str, Any] = self.resources[function]["Properties"]["Events"][event]["Properties"]
        return properties

    def condition(self, name: str) -> bool:
        return bool(self._evaluate_condition(self.document["Conditions"][name]))

    def included(self, logical_id: str) -> bool:
        """False for a resource whose condition is false with these parameter values."""
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def of_type(self, resource_type: str) -> list[str]:
        return [
            logical_id
            for logical_id, resource in self.resources.items()
            if resource["Type"] == resource_type and self.included(logical_id)
        ]

    def _evaluate_condition(self, node: Any) -> Any:
        if not isinstance(node, Mapping):
            return node
        ((function, argument),) = node.items()
        if function == "Fn::Equals":
            left, right = (self.resolve(value, lambda _id: None) for value in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._evaluate_condition(argument[0])
        if function == "Fn::And":
            return all(self._evaluate_condition(value) for value in argument)
        if function == "Fn::Or":
            return any(self._evaluate_condition(value) for value in argument)
        if function == "Condition":
            return self.condition(argument)
        raise UnsupportedTemplateError(f"condition function {function}")

    def resolve(self, node: Any, attribute: Callable[[str], Any]) -> Any:
        """``node`` with its intrinsic functions evaluated.

        ``attribute(name)`` gives the value of a resource: ``"Queue"`` for a ``Ref`` and
        ``"Queue.Arn"`` for a ``Fn::GetAtt``.
        """
        if isinstance(node, list):
            return [self.resolve(value, attribute) for value in node]
        if not isinstance(node, Mapping):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Fn::", "Ref", "Condition")):
            return {key: self.resolve(value, attribute) for key, value in node.items()}
        ((function, argument),) = node.items()
        if function == "Ref":
            if argument in self.parameters:
                return self.parameters[argument]
            if argument == "AWS::NoValue":
                return None
            return attribute(argument)
        if function == "Fn::GetAtt":
            name, attr = argument if isinstance(argument, list) else argument.split(".", 1)
            return attribute(f"{name}.{attr}")
        if function == "Fn::Sub":
            if not isinstance(argument, str):
                raise UnsupportedTemplateError("Fn::Sub with a variable map")
            return re.sub(
                r"\$\{([^}!]+)\}",
                lambda match: str(self.resolve({"Ref": match.group(1)}, attribute)),
                argument,
            )
        if function == "Fn::If":
            condition, when_true, when_false = argument
            return self.resolve(when_true if self.condition(condition) else when_false, attribute)
        if function == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text, attribute)).split(separator)
        if function == "Fn::Select":
            index, values = argument
            return self.resolve(values, attribute)[int(index)]
        raise UnsupportedTemplateError(f"intrinsic function {function}")
