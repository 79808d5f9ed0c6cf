"""The integration fixtures themselves: what a failing assertion would print of them."""

from __future__ import annotations


def test_a_local_stack_prints_no_secret_value(local_stack):
    # A failed `assert held(local_stack, ...)` prints the stack's repr in pytest's report.
    printed = repr(local_stack)
    assert local_stack.secret_values
    leaked = sum(value in printed for value in local_stack.secret_values)  # a count: the values stay unprinted
    assert leaked == 0
