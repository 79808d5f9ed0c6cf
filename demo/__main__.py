"""The demo: the whole product, end to end, on one machine, over real HTTP.

    python -m demo        (or: make demo)

1. starts moto server (Secrets Manager, SQS, DynamoDB with streams) and the Vercel API
   emulator (its ``vercel-emulator`` console script, a separate process);
2. creates what template.yaml declares (the partner table with its stream, the FIFO partner
   events queue and its DLQ, the failed-records queue, the sync-state table), an installation
   token and a resource secret;
3. writes partner records: inserts, an update, a delete and an invalid one to the table, and
   two events to the queue;
4. lets the local runner deliver the stream and the queue to the real handlers, as Lambda's
   event source mappings would, until there is nothing left;
5. prints what Vercel (the emulator) now holds beside the partner table, the failed-records
   queue with its reasons, and the calls per resource; then stops what it started.

Exits 0 only if the end state is the expected one.
"""

from __future__ import annotations

import sys

from demo.scenario import main

if __name__ == "__main__":
    sys.exit(main())
