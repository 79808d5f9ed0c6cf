"""Operating the sync: the commands an operator runs against a deployed stack (or the local one).

    python -m operations backfill ...                 every partner table item through the queue path
    python -m operations replay ...                   the failed-records queue: grouped, re-driven
    python -m operations replay-stream-failures ...   the stream's on-failure positions, re-read and synced
    python -m operations filter-pattern ...           the stream trigger's filter for a partner mapping
    python -m operations preview ...                  what a partner mapping makes of your items
    python -m operations reconcile ...                Vercel's view against the partner table; repairs

``python -m operations <command> --help`` says more; docs/operations.md says when to use which.
AWS endpoints and credentials come from the standard variables (``AWS_ENDPOINT_URL`` points them
at moto server locally). Every command takes ``--stack-name NAME [--region R]`` to read the rest from
the deployed stack (``operations/stack.py``).
"""
