"""operations/stack.py: the outputs and functions it reads are template.yaml's."""

from __future__ import annotations

from local_aws.template import load_template
from operations.stack import FUNCTION_OUTPUTS, OUTPUT_VARIABLES


def test_every_output_the_tools_read_is_one_the_template_declares() -> None:
    outputs = load_template()["Outputs"]
    assert set(OUTPUT_VARIABLES) <= set(outputs)
    assert set(FUNCTION_OUTPUTS) <= set(outputs)
