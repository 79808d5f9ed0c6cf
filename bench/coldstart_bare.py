"""Case 5, the floor: a fresh interpreter doing only the work a sync of one record cannot avoid.

Import boto3 and httpx, read the installation token from Secrets Manager, send the one PUT
(the body prepared beforehand), with the same libraries as the handler. Run by
``bench.case_coldstart`` as ``python -P bench/coldstart_bare.py``; writes ``{"seconds", "status"}``
to ``$BENCH_RESULT``: from this script's first line to Vercel's answer.
"""

import time

_started = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402

import boto3  # noqa: E402
import httpx  # noqa: E402

raw = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["BENCH_SECRET_ID"])["SecretString"]
token = json.loads(raw)["access_token"]
with open(os.environ["BENCH_BODY"], "rb") as body_file:
    body = body_file.read()
response = httpx.put(
    os.environ["BENCH_URL"],
    content=body,
    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
)
_done = time.perf_counter()
with open(os.environ["BENCH_RESULT"], "w") as result_file:
    json.dump({"seconds": _done - _started, "status": response.status_code}, result_file)
