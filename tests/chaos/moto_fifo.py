"""moto server with FIFO queues that keep a message group's order after a redelivery.

moto 5.2.5 (``SQSBackend.receive_message``) works out which message groups are in flight once,
before it scans the queue, from every message received and not yet deleted, including those
whose visibility timeout has passed. When several messages of one group were received together
and all became visible again (a Lambda batch reported failed), the scan skips each of them while
a later one is still counted in flight, and hands over the group's LAST message first: SQS hands
over the first. A chaos run on a FIFO queue then sees a resource's older change after its newer
one, a reordering real SQS never makes. This releases the messages whose visibility timeout has
passed before each receive, so the group is free and is read from its first message, as SQS does.

Run as ``python tests/chaos/moto_fifo.py -H 127.0.0.1 -p PORT`` (moto_server's arguments).
"""

from __future__ import annotations

import sys
from typing import Any


def patch_fifo_redelivery_order() -> None:
    from moto.sqs.models import SQSBackend

    receive_message = SQSBackend.receive_message
    if getattr(receive_message, "_releases_visible_messages", False):
        return

    def receive_in_group_order(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        if queue.fifo_queue:
            for message in list(queue.pending_messages):
                if message.visible:  # its consumer's visibility timeout passed: no longer in flight
                    queue.pending_messages.discard(message)
        return receive_message(self, queue_name, *args, **kwargs)

    receive_in_group_order._releases_visible_messages = True  # type: ignore[attr-defined]
    SQSBackend.receive_message = receive_in_group_order  # type: ignore[method-assign]


if __name__ == "__main__":
    from moto.server import main

    patch_fifo_redelivery_order()
    main(sys.argv[1:])
