"""Task names and the queue of each job: what a message says, so the web can publish by name.

The queues themselves are kombu's Redis lists, named in ``worker.core.keys`` (``JOB_QUEUES``,
``WEBHOOK_QUEUE``) with the rest of the Redis schema.
"""

from __future__ import annotations

from worker.core import keys

#: Task names: the web publishes by name and never imports the worker's code.
RUN_JOB = "gemq.run_job"
DELIVER_WEBHOOK = "gemq.deliver_webhook"


def job_queue(priority: str) -> str:
    """The queue for a job of ``priority``."""
    return keys.JOB_QUEUES[priority]
