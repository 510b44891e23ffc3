"""What the study core tells the layers above it, without knowing them.

The core never imports `scoring` or the reporting layer: it sends these signals, and whoever
cares connects a receiver in its `AppConfig.ready` (scoring starts a batch's scoring jobs on
`batch_imported`).
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent after the import's transaction commits, with `batch_id` and `requested_by` (a user or None).
batch_imported = Signal()
