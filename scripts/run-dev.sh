#!/usr/bin/env bash
# Serve factpair on http://127.0.0.1:8000 with a real Celery worker beside it; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
# Development mode, explicitly: DEBUG is off unless asked for (annotation_site/settings.py).
export DEBUG="${DEBUG:-true}"

cat <<MSG

  factpair is starting on http://127.0.0.1:8000

  Demo logins (development only):
    admin       / factpair-admin        (admin: Django admin, batches, users)
    researcher  / factpair-researcher   (researcher: batches and results)
    annotator1  / factpair-annotator    (annotators: annotator1, annotator2, annotator3)

  Ctrl-C stops the web server and the Celery worker.

MSG

"$VENV/bin/celery" -A annotation_site worker --queues default,quals --concurrency 1 \
  --loglevel INFO --hostname "factpair-dev@%h" --beat --schedule var/celerybeat-schedule &
worker=$!
stop() { kill -TERM "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true; }
trap stop EXIT
trap 'exit 130' INT TERM
"$VENV/bin/python" manage.py runserver 127.0.0.1:8000
