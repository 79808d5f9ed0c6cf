"""The SAM template as CloudFormation receives it: the SAM transform, offline, as `sam validate` runs it.

cfn-lint (1.x) no longer applies the SAM transform: it checks ``AWS::Serverless::*`` resources
against SAM's schema, so a rule written for ``AWS::Lambda::Function`` or
``AWS::Lambda::EventInvokeConfig`` never sees the functions. ``make security`` (``.ci/security``)
runs this with the SAM CLI's Python, which has the translator (its pydantic pin keeps it out of
``.venv``), then runs the security rules over the output::

    .venv-sam/bin/python tools/sam_transform.py template.yaml transformed.yaml [IN OUT ...]

SAM CLI's own validator does the work: local ``CodeUri``/``ContentUri`` become placeholder S3
URIs, nothing is read from AWS (the template names no SAM policy template, so no managed policy
map is needed; one that did would fail here rather than quietly reach out).
"""

from __future__ import annotations

import sys
from pathlib import Path


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        raise RuntimeError("the template uses a SAM policy template: the offline transform cannot resolve it")


def transform(text: str) -> str:
    """The CloudFormation template (YAML) that the SAM transform makes of ``text``."""
    from samcli.lib.translate.sam_template_validator import SamTemplateValidator
    from samcli.yamlhelper import yaml_parse

    validator = SamTemplateValidator(yaml_parse(text), _NoManagedPolicies(), region="us-east-1")
    translated: str = validator.get_translated_template_if_valid()
    return translated


def main(argv: list[str]) -> int:
    if not argv or len(argv) % 2:
        print("usage: sam_transform.py TEMPLATE OUTPUT [TEMPLATE OUTPUT ...]", file=sys.stderr)
        return 2
    for source, output in zip(argv[::2], argv[1::2], strict=True):
        try:
            Path(output).write_text(transform(Path(source).read_text()))
        except Exception as error:  # noqa: BLE001 - one line naming the template, then a failing exit
            print(f"sam_transform: {source}: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
