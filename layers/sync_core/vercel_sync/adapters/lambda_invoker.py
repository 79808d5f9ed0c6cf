"""A function invoking itself again (BackfillFunction handing its run on), asynchronously."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from vercel_sync.adapters.aws_clients import PATIENT_AWS_TIMEOUTS, LazyClient


class LambdaInvoker:
    def __init__(self, *, client: Any = None, client_factory: Callable[[], Any] | None = None) -> None:
        self._lambda = LazyClient("lambda", client, PATIENT_AWS_TIMEOUTS.config(), client_factory)

    def invoke_async(self, function_arn: str, payload: Mapping[str, Any]) -> None:
        body = json.dumps(dict(payload)).encode("utf-8")
        self._lambda().invoke(FunctionName=function_arn, InvocationType="Event", Payload=body)
