"""Start a real Celery worker process on the configured broker, against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def test_database_url() -> str:
    """A DATABASE_URL for the database the tests are using right now."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_worker(
    queues: str = "default,quals",
    log: Path | None = None,
    app: str = "annotation_site",
    env: dict | None = None,
) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    cmd = [
        sys.executable, "-m", "celery", "-A", app, "worker",
        "--queues", queues, "--concurrency", "1", "--loglevel", "INFO",
        "--hostname", f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
        "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - owned by the process
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_worker(worker: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop the worker and its pool children (its own process group), and wait until every one
    of them is gone: a child left behind keeps a database session open."""
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    if not wait_for(lambda: not _group_alive(worker.pid), timeout=20, interval=0.1):
        os.killpg(worker.pid, signal.SIGKILL)
        wait_for(lambda: not _group_alive(worker.pid), timeout=10, interval=0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(condition, timeout: float = 90, interval: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
