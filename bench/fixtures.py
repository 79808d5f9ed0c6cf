"""The servers a benchmark run uses, and how a case runs its code in a fresh process.

- The Vercel emulator runs as its own process (``python -m vercel_emulator --port 0``), so it
  shares no GIL with the handler it answers; it is driven through its control API.
- moto server runs on a thread of the orchestrating process, which only waits while a case
  runs, so moto has that interpreter to itself. Each case gets its own stack (the template's
  queues and tables, created from ``template.yaml``) and its own installation.
- Each side of a case (ours, naive, each rate-limit worker, each cold start) runs in a fresh
  interpreter: its own handler module, service and Powertools state, as a Lambda instance has.
  Its stdout (the handlers' log and metric lines) goes to ``/dev/null``: formatting them is
  part of the cost, as in Lambda, but nobody reads them.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from local_aws.moto_server import AwsClients, aws_clients, moto_server
from local_aws.provision import LocalResources, provision, store_installation_token
from local_aws.template import Template

ROOT = Path(__file__).resolve().parent.parent
VERY_HIGH_RATE_LIMIT = (1_000_000_000, 60.0)  # calls, seconds: "no rate limit"


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, from /proc (Linux); ``None`` elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class EmulatorProcess:
    """``vercel-emulator`` in its own process, with helpers over its control API."""

    def __init__(self) -> None:
        command = [
            sys.executable,
            "-m",
            "vercel_emulator",
            "--port",
            "0",
            "--rate-limit",
            f"{VERY_HIGH_RATE_LIMIT[0]}/{VERY_HIGH_RATE_LIMIT[1]:g}",
            # Each case adds its own installation; this one only keeps the emulator from warning.
            "--token",
            "icfg_bench_unused=" + secrets.token_urlsafe(16),
        ]
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("vercel-emulator listening on "):
            self._process.kill()
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1]
        self._http = httpx.Client(base_url=self.url + "/_emulator", timeout=30.0)

    @property
    def pid(self) -> int:
        return self._process.pid

    def _control(self, method: str, name: str, body: Mapping[str, Any] | None = None) -> Any:
        response = self._http.request(method, name, json=body)
        response.raise_for_status()
        return response.json()

    def prepare(
        self, installation_id: str, token: str, *, latency_ms: float = 0.0, rate_limit: tuple[int, float] | None = None
    ) -> None:
        """Forget resources, counts and rate windows; set the latency, the limit and a token."""
        self._control("POST", "reset")
        self._control("POST", "faults", {"latencyMs": latency_ms})
        calls, seconds = rate_limit or VERY_HIGH_RATE_LIMIT
        self._control("POST", "rate-limit", {"calls": calls, "seconds": seconds})
        self._control("POST", "installations", {"installationId": installation_id, "token": token})

    def put_counts(self, installation_id: str) -> PutCounts:
        return PutCounts.from_calls(self._control("GET", "calls"), installation_id)

    def imports(self, installation_id: str) -> dict[str, dict[str, Any]]:
        """The last body imported per resource (test-only route: secret values included, never printed)."""
        held = self._control("GET", "imports")["imports"]
        return {entry["resourceId"]: entry["body"] for entry in held if entry["installationId"] == installation_id}

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self._process.pid)

    def stop(self) -> None:
        self._http.close()
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()


@dataclass(frozen=True)
class PutCounts:
    """The PUT imports the emulator received for one installation."""

    total: int
    by_status: dict[str, int]
    resources_imported: int  # distinct resources with at least one 200

    @classmethod
    def from_calls(cls, calls: Mapping[str, Any], installation_id: str) -> PutCounts:
        total, imported = 0, 0
        by_status: dict[str, int] = {}
        for row in calls["calls"]:
            if row["method"] != "PUT" or row["installationId"] != installation_id:
                continue
            total += row["total"]
            for status, count in row["byStatus"].items():
                by_status[status] = by_status.get(status, 0) + count
            imported += 1 if row["byStatus"].get("200") else 0
        return cls(total, dict(sorted(by_status.items())), imported)

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "byStatus": self.by_status, "resourcesImported": self.resources_imported}


@dataclass
class Stack:
    """One case's AWS side in moto server: the template's resources and an installation's token."""

    resources: LocalResources
    aws: AwsClients
    installation_id: str
    token: str  # never printed
    environment: dict[str, str]  # the functions' environment, pointed at moto server and the emulator


class Servers:
    """moto server and the emulator for a whole run; :meth:`stack` makes each case's resources."""

    def __init__(self, aws_endpoint: str, emulator: EmulatorProcess) -> None:
        self.aws_endpoint = aws_endpoint
        self.aws = aws_clients(aws_endpoint)
        self.emulator = emulator
        self._stacks = 0

    def stack(self, name: str, **environment: str) -> Stack:
        self._stacks += 1
        resources = provision(
            Template.load({"CreatedPartnerQueueType": "standard"}),
            sqs=self.aws["sqs"],
            dynamodb=self.aws["dynamodb"],
            stack_name=f"bench{self._stacks}-{name}",
        )
        installation_id = f"icfg_bench_{name}"
        token = "vrcl_bench_" + secrets.token_urlsafe(24)
        store_installation_token(self.aws["secretsmanager"], resources, installation_id, token)
        function_environment = resources.local_function_environment(
            aws_endpoint=self.aws_endpoint,
            vercel_api_url=self.emulator.url,
            POWERTOOLS_TRACE_DISABLED="true",
            POWERTOOLS_METRICS_NAMESPACE="VercelResourceSyncBench",
            **environment,
        )
        return Stack(resources, self.aws, installation_id, token, function_environment)


@contextmanager
def servers() -> Iterator[Servers]:
    emulator = EmulatorProcess()
    try:
        with moto_server() as endpoint:
            yield Servers(endpoint, emulator)
    finally:
        emulator.stop()


class ChildFailed(RuntimeError):
    pass


def child_command(target: str, config: Mapping[str, Any], result_path: Path) -> list[str]:
    return [sys.executable, "-m", "bench.child", target, json.dumps(dict(config)), str(result_path)]


def child_environment(environment: Mapping[str, str]) -> dict[str, str]:
    return {**os.environ, **environment}


def run_child(
    target: str, config: Mapping[str, Any], environment: Mapping[str, str], *, timeout: float = 900
) -> dict[str, Any]:
    """Run ``module:function(config)`` in a fresh interpreter with ``environment``; its result (a
    JSON object). The child's stdout is discarded (the handlers' logs); its stderr is shown if
    it fails."""
    with tempfile.TemporaryDirectory(prefix="vercel-sync-bench-") as directory:
        result_path = Path(directory) / "result.json"
        started = time.perf_counter()
        completed = subprocess.run(  # noqa: S603 - our own interpreter and module
            child_command(target, config, result_path),
            env=child_environment(environment),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )
        if completed.returncode != 0 or not result_path.exists():
            tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
            raise ChildFailed(f"{target} exited {completed.returncode}:\n{tail}")
        result: dict[str, Any] = json.loads(result_path.read_text())
        result.setdefault("processSeconds", time.perf_counter() - started)
        return result


def run_workers(
    target: str,
    configs: Sequence[Mapping[str, Any]],
    environment: Mapping[str, str],
    watch: Callable[[Path], dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One process per config running ``module:function(config)`` (Lambda instances polling a queue):
    started, each waited for until ready, then ``watch(go)`` (which touches ``go`` to let them run),
    then stopped. ``watch``'s outcome and each worker's result."""
    with tempfile.TemporaryDirectory(prefix="vercel-sync-bench-workers-") as directory:
        folder = Path(directory)
        go, stop = folder / "go", folder / "stop"
        workers = []
        for number, config in enumerate(configs):
            files = {"ready": str(folder / f"ready{number}"), "go": str(go), "stop": str(stop)}
            result_path, stderr = folder / f"result{number}.json", folder / f"stderr{number}"
            log = stderr.open("w")
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                child_command(target, {**config, **files}, result_path),
                env=child_environment(environment),
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=ROOT,
            )
            workers.append((process, result_path, log, stderr))
        try:
            _wait_until(lambda: all((folder / f"ready{n}").exists() for n in range(len(workers))), timeout=120)
            outcome = watch(go)
        finally:
            stop.touch()
            results = [
                _worker_result(process, result_path, log, stderr) for process, result_path, log, stderr in workers
            ]
    return outcome, results


def _wait_until(condition: Callable[[], bool], *, timeout: float) -> None:
    ends = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > ends:
            raise TimeoutError("the workers did not get ready in time")
        time.sleep(0.05)


def _worker_result(process: subprocess.Popen[bytes], result_path: Path, log: Any, stderr: Path) -> dict[str, Any]:
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()  # this worker only, by its own handle
        process.wait(timeout=10)
    log.close()
    if process.returncode != 0 or not result_path.exists():
        tail = "\n".join(stderr.read_text().strip().splitlines()[-15:])
        raise RuntimeError(f"a worker exited {process.returncode}:\n{tail}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    return result
