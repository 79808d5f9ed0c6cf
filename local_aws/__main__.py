"""The template's AWS side on this machine, for the local runner or your own experiments.

    python -m local_aws [--port 5000] [--token INSTALLATION_ID=TOKEN ...] [--parameter Name=Value ...]

Starts moto server on 127.0.0.1, creates the queues and tables template.yaml declares (with
its parameter defaults and the sample sources on, as a local account has no partner table or queue
of its own, or ``--parameter`` values, e.g. ``CreatedPartnerQueueType=standard``),
stores each ``--token`` as Vercel sends it under the token prefix, then prints the functions'
environment (``export`` lines) and the local runner's command line. Runs until Ctrl-C; moto
keeps everything in memory, so stopping it forgets it all.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading

from local_aws.moto_server import aws_clients, moto_server
from local_aws.provision import provision, store_installation_token
from local_aws.template import Template


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_aws", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=5000, help="moto server's port (default 5000; 0: a free one)")
    parser.add_argument("--token", type=key_value, action="append", default=[], metavar="INSTALLATION_ID=TOKEN")
    parser.add_argument("--parameter", type=key_value, action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--vercel-api-url", default="http://127.0.0.1:8787", help="for the printed environment (the emulator's URL)"
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with moto_server(args.port) as endpoint:
        clients = aws_clients(endpoint)
        resources = provision(Template.load(dict(args.parameter)), sqs=clients["sqs"], dynamodb=clients["dynamodb"])
        for installation_id, token in args.token:
            store_installation_token(clients["secretsmanager"], resources, installation_id, token)
        print(f"moto server on {endpoint} holds template.yaml's resources:")
        for logical_id, table in resources.tables.items():
            print(f"  {logical_id:28} table {table.name}")
        for logical_id, queue in resources.queues.items():
            print(f"  {logical_id:28} queue {queue.url}")
        for installation_id, _ in args.token:
            print(f"  token of {installation_id:19} secret {resources.token_secret_name(installation_id)}")
        environment = resources.local_function_environment(aws_endpoint=endpoint, vercel_api_url=args.vercel_api_url)
        print("\n# the functions' environment, as the template sets it:")
        for name, value in environment.items():
            print(f"export {name}={shlex.quote(value)}")
        operations = {
            "PARTNER_TABLE_NAME": resources.tables["PartnerTable"].name if "PartnerTable" in resources.tables else "",
            "PARTNER_EVENTS_QUEUE_URL": resources.queues["PartnerEventsQueue"].url
            if "PartnerEventsQueue" in resources.queues
            else "",
            "STREAM_FAILURE_QUEUE_URL": resources.queues["StreamFailureQueue"].url,
        }
        print("# and for the operations tools (python -m operations backfill | replay | replay-stream-failures):")
        for name, value in operations.items():
            if value:
                print(f"export {name}={shlex.quote(value)}")
        runner = [".venv/bin/python -m local_runner"]
        if "PartnerTable" in resources.tables:
            runner.append(f"--table {resources.tables['PartnerTable'].name}")
        if "PartnerEventsQueue" in resources.queues:
            runner.append(f"--queue-url {resources.queues['PartnerEventsQueue'].url}")
        if "StreamFailureQueue" in resources.queues:
            runner.append(f"--on-failure-queue-url {resources.queues['StreamFailureQueue'].url}")
        print("\n# then, in that shell, with the emulator running (make emulator):")
        print(" \\\n    ".join(runner))
        print("\nCtrl-C stops moto server.", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
