"""PostgreSQL restarted under annotators: clear answers, nothing half-written, recovery.

Serves factpair with gunicorn on 127.0.0.1 against a fresh PostgreSQL database
`factpair_faults`, lets annotators submit through HTTP (as bench/load.py does), restarts the
local PostgreSQL cluster in the middle (`pg_ctlcluster --skip-systemctl-redirect VERSION main
restart`), and prints what the clients saw (status codes, errors, the slowest answer: no hang),
how long until requests succeeded again, and what the database holds afterwards (every stored
assignment has exactly three judgments, counters equal to the rows, no acknowledged submission
lost).

    .venv/bin/python bench/faults_postgres_restart.py [--annotators 10] [--before 5] [--after 20]

Restarts *this machine's* PostgreSQL: run it on a development or CI machine only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # the load script's client, server and database helpers

DATABASE = "factpair_faults"
URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"


def restart_postgres() -> float:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    started = time.monotonic()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return time.monotonic() - started


class Timeline:
    """Every request's outcome with the time it ended, relative to the start."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.events: list[tuple[float, str, str, float]] = []
        self.lock = threading.Lock()

    def add(self, kind: str, outcome: str, seconds: float) -> None:
        with self.lock:
            self.events.append((time.monotonic() - self.start, kind, outcome, seconds))


def annotate(annotator: load.Annotator, timeline: Timeline, stop: threading.Event) -> None:
    """next + submit in a loop; every answer, error or exception goes on the timeline."""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            if not annotator.next():
                return
            annotator.submit()
        except load.Refused:
            time.sleep(0.2)
        except Exception as e:
            timeline.add("error", type(e).__name__, time.perf_counter() - started)
            time.sleep(0.2)


def recovery(timeline: Timeline, restart_at: float, restart_done: float) -> dict:
    failures = [
        t for t, _, outcome, _ in timeline.events if outcome not in ("200", "302", "finished")
    ]
    after = [t for t, kind, o, _ in timeline.events if kind == "submit" and o == "200"]
    first_ok = next((t for t in after if t > max(failures, default=restart_at)), None)
    return {
        "restart_took_s": round(restart_done - restart_at, 1),
        "failures": len(failures),
        "first_failure_s": round(min(failures) - restart_at, 2) if failures else None,
        "last_failure_s": round(max(failures) - restart_at, 2) if failures else None,
        "first_success_after_last_failure_s": (
            round(first_ok - restart_at, 2) if first_ok is not None else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=10)
    parser.add_argument("--before", type=float, default=5, help="seconds of load before")
    parser.add_argument("--after", type=float, default=20, help="seconds of load after")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--comparisons", type=int, default=4000, help="enough that the load never runs out"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also as a background job
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    var_dir = Path(tempfile.mkdtemp(prefix="factpair-faults-"))
    env = load.database_env("postgres", var_dir)
    env["DATABASE_URL"] = URL
    stop = threading.Event()
    server = None
    try:
        load.psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        load.psql(f"CREATE DATABASE {DATABASE}")
        subprocess.run(
            [load.PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=load.ROOT, env=env, check=True,
        )  # fmt: skip
        setup = load.child(
            env, "_prepare", "--users", str(args.annotators), "--labels", "faults",
            "--comparisons", str(args.comparisons), "--words", "400",
            "--sessions", str(args.annotators), "--analyze", "1",
        )  # fmt: skip
        batch = setup["batches"]["faults"]
        server_args = argparse.Namespace(
            workers=args.workers, threads=args.threads, worker_class="gthread"
        )
        server = load.Server(env, server_args, var_dir / "gunicorn.log")
        stats, timeline = load.Stats(), Timeline()
        record = stats.record

        def record_on_timeline(kind: str, seconds: float, status) -> None:
            record(kind, seconds, status)
            timeline.add(kind, str(status), seconds)

        stats.record = record_on_timeline
        threads = []
        for username, session in setup["sessions"].items():
            annotator = load.Annotator(server.port, batch, username, stats)
            annotator.use_session(session)
            thread = threading.Thread(target=annotate, args=(annotator, timeline, stop))
            thread.daemon = True
            thread.start()
            threads.append(thread)
        time.sleep(args.before)
        restart_at = time.monotonic() - timeline.start
        print(f"restarting PostgreSQL at t={restart_at:.1f} s", flush=True)
        took = restart_postgres()
        restart_done = restart_at + took
        time.sleep(args.after)
        stop.set()
        load.join_all(threads, threading.Event())
        report(timeline, stats, restart_at, restart_done)
        print("database:", load.verify_run(env, batch, stats, var_dir))
        log = (var_dir / "gunicorn.log").read_text(errors="replace")
        unavailable = log.count("database unavailable")
        errors = log.count("Internal Server Error")
        print(f"server log: {unavailable} 'database unavailable', {errors} 'Internal Server Error'")
    except KeyboardInterrupt:
        print("interrupted")
    finally:
        stop.set()
        if server is not None:
            server.stop()
        load.psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        shutil.rmtree(var_dir, ignore_errors=True)


def report(timeline: Timeline, stats: load.Stats, restart_at: float, restart_done: float):
    during = Counter(
        f"{kind} {outcome}"
        for t, kind, outcome, _ in timeline.events
        if restart_at - 0.5 <= t <= restart_done + 5
    )
    slowest = max((s for *_, s in timeline.events), default=0.0)
    print(f"acknowledged submissions: {len(stats.acks)}")
    print(
        "outcomes, all:",
        dict(sorted(Counter(f"{k} {o}" for _, k, o, _ in timeline.events).items())),
    )
    print("outcomes, from the restart to 5 s after it:", dict(sorted(during.items())))
    print(f"slowest answer: {slowest:.2f} s (client timeout {load.REQUEST_TIMEOUT:.0f} s)")
    print("recovery:", recovery(timeline, restart_at, restart_done))


if __name__ == "__main__":
    main()
