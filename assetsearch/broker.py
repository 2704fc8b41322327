"""What the broker holds: the depth of the embedding queue.

The sweep re-enqueues assets that stayed pending too long. While embedding
messages are still waiting in the queue, those assets are most likely in
them (a big import, a worker catching up), and re-sending them would only
pile duplicates behind the originals; so the sweep waits for the queue to
drain (:func:`queued_messages` is 0) or for the broker to say nothing.
"""

from __future__ import annotations

import logging

from .conf import app_settings

logger = logging.getLogger(__name__)


def queued_messages(queue: str | None = None) -> int | None:
    """Messages waiting (not yet taken by a worker) in the embedding queue.

    None when the broker cannot tell: unreachable, or the queue was never
    declared (no worker has consumed from it yet).
    """
    from celery import current_app

    name = queue or app_settings.QUEUE or current_app.conf.task_default_queue
    try:
        with current_app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            return int(connection.default_channel.queue_declare(queue=name, passive=True).message_count)
    except Exception:  # noqa: BLE001 - the broker's client raises many kinds; all mean "cannot tell"
        logger.debug("Could not read the depth of queue %r", name, exc_info=True)
        return None
