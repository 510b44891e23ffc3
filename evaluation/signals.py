"""What the study core tells the layers above it, without knowing them.

The core never imports `scoring` or the reporting layer: it sends these signals, and whoever
cares connects a receiver in its `AppConfig.ready` (scoring starts a batch's scoring jobs on
`batch_imported`).
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent after the import's transaction commits, with `batch_id` and `requested_by` (a user or None).
batch_imported = Signal()

# Sent when an annotator has nothing left in a batch (their quota reached, or every comparison
# judged or full), with `user` and `batch`; not when the batch is paused or closed. A receiver
# returns the URL to send this user on to (the crowd app: the post-survey), or None; the first
# URL wins, and with none the judging page says "All done".
work_done = Signal()


def after_work_url(user, batch) -> str | None:
    for _receiver, url in work_done.send(sender=type(batch), user=user, batch=batch):
        if url:
            return url
    return None
