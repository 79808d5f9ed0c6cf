"""Case 5, a handler's side: a fresh interpreter that imports a handler as Lambda does and syncs one record.

Run by ``bench.case_coldstart`` as ``python -P bench/coldstart_handler.py`` with ``$BENCH_HANDLER``
``MODULE:FUNCTION`` (``app:lambda_handler`` with ``PYTHONPATH=functions/stream_sync:layers/sync_core``,
Lambda's ``/var/task`` and the layer's ``/opt/python``; or the naive baseline's) and the
functions' environment. Writes ``{"seconds", "importSeconds", "failures"}`` to ``$BENCH_RESULT``:
from this script's first line to the handler's answer.
"""

import time

_started = time.perf_counter()

import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

# As Lambda's runtime does with the function's Handler setting ("app.lambda_handler").
_module, _, _function = os.environ["BENCH_HANDLER"].partition(":")
lambda_handler = getattr(importlib.import_module(_module), _function)

_imported = time.perf_counter()


class Context:
    function_name = "stream_sync"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000005"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:stream_sync"

    def __init__(self) -> None:
        self._deadline = time.monotonic() + 60

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


with open(os.environ["BENCH_EVENT"]) as event_file:
    event = json.load(event_file)
response = lambda_handler(event, Context())
_done = time.perf_counter()
with open(os.environ["BENCH_RESULT"], "w") as result_file:
    json.dump(
        {
            "seconds": _done - _started,
            "importSeconds": _imported - _started,
            "failures": len(response.get("batchItemFailures", [])),
        },
        result_file,
    )
