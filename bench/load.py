"""Simulated annotators over HTTP against factpair served by gunicorn on 127.0.0.1.

For each database (a fresh PostgreSQL database, `factpair_load` unless --pg-name says, and/or
the embedded SQLite file in a temporary FACTPAIR_VAR_DIR) the script migrates, imports one batch
of 2,000 comparisons (~400-word sources, K=3) per run, starts gunicorn, and drives it exactly as a
browser does: log in (GET and POST /login/ with the CSRF token), open the batch, then judge with
no pause, for N concurrent annotators (closed loop), each for --duration seconds or until the
batch is exhausted:

    next:   GET /annotate/<batch>/?start -> 302 -> GET /judge/<id>/   (the first comparison)
    submit: POST /judge/<id>/submit/ with all three criteria, `HX-Request: true`; the answer is
            the next comparison (HX-Push-Url), as htmx swaps it in: one request a judgment set

--no-js drives the plain-form flow of a browser without JavaScript instead: the submit is an
ordinary POST answered by a redirect, and each next comparison is `next` again (three requests
a judgment set).

It prints judgment sets per second and p50/p95/p99 latencies, then checks the database: every
acknowledged submission (a 200/302 answer) stored with its three judgments, none duplicated, no
comparison above K, the counters equal to the rows. --open-loop adds 500 annotators who each
read every comparison for 10 s (bounded to --open-duration seconds) and reports p99.

    .venv/bin/python bench/load.py --db both --annotators 1,10,50 --duration 20 --open-loop
    .venv/bin/python bench/load.py --db postgres --profile     # queries and costs per request

The server runs with DEBUG=false, a throwaway SECRET_KEY, ALLOWED_HOSTS=127.0.0.1 and
SECURE_SSL_REDIRECT=false (production settings redirect plain HTTP to HTTPS; here it is loopback).
Everything the script starts (gunicorn, temporary directories, the load database) is stopped or
removed at the end, on Ctrl-C too. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
HOST = "127.0.0.1"
PG_NAME = "factpair_load"  # --pg-name: another one, so that two runs at once do not collide
PASSWORD = "load-test-password"
TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
JUDGE = re.compile(r"/judge/(\d+)/")
CHOICES = ("left", "equal", "right")
REQUEST_TIMEOUT = 30.0
TEXT = (
    "the council said on monday that a new bridge over the river would open next spring after "
    "three years of work officials told reporters residents had waited for the project since a "
    "flood destroyed the old crossing in two thousand and nineteen the mayor thanked engineers "
    "and local businesses while critics argued that the cost had doubled compared with early "
    "estimates and that traffic in the town centre would grow police will close several roads"
)
WORDS = TEXT.split()


# --- the database side, run in a child process with the database's environment ---------------


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")
    import django

    django.setup()


def batch_bytes(n: int, words: int, seed: int) -> bytes:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        source = " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."
        summaries = {
            s: " ".join(rng.choice(WORDS) for _ in range(30)).capitalize() + "."
            for s in ("MLE", "QUALS")
        }
        row = {"id": f"load-{i}", "source": source, "reference": summaries["MLE"][:80]}
        lines.append(json.dumps({**row, "summaries": summaries}))
    return "\n".join(lines).encode()


def prepare(args: argparse.Namespace) -> dict:
    """Users (one password hash, hashed once), batches opened to them, ready-made sessions."""
    django_setup()
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User
    from django.db import connection

    from evaluation.models import Batch
    from evaluation.roles import ensure_role_groups
    from evaluation.services import BatchSettings, import_batch

    ensure_role_groups()
    hashed = make_password(PASSWORD)
    users = User.objects.bulk_create(
        User(username=f"load{i:03d}", password=hashed) for i in range(args.users)
    )
    group = Group.objects.get(name="annotator")
    User.groups.through.objects.bulk_create(
        User.groups.through(user_id=u.pk, group_id=group.pk) for u in users
    )
    store = import_module(settings.SESSION_ENGINE).SessionStore
    sessions = {}
    for user in users[: args.sessions]:
        session = store()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions[user.username] = session.session_key
    batches = {}
    for seed, label in enumerate(args.labels.split(",")):
        data = batch_bytes(args.comparisons, args.words, seed)
        batch = import_batch(
            data, "load.jsonl", BatchSettings(f"load {label}", "LOAD", "MLE", "QUALS", 3)
        )
        Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN)
        batch.annotators.add(*users)
        batches[label] = batch.pk
    if args.analyze and connection.vendor == "postgresql":
        # What autovacuum does within a minute of an import; this machine's server has it off,
        # and without statistics the planner picks a nested-loop anti join 20x slower.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"batches": batches, "users": [u.username for u in users], "sessions": sessions}


def verify(args: argparse.Namespace) -> dict:
    """What the database holds against what the clients were told was stored."""
    django_setup()
    from django.db.models import Count, Q

    from evaluation.models import Assignment, Comparison, Judgment

    acks = json.loads(Path(args.acks).read_text())
    assignments = Assignment.objects.filter(comparison__batch_id=args.batch)
    submitted = dict(
        assignments.filter(status="submitted").values_list("id", "annotator__username")
    )
    per_assignment = dict(
        Judgment.objects.filter(assignment__comparison__batch_id=args.batch)
        .values_list("assignment_id")
        .annotate(n=Count("id"))
    )
    acked = Counter(aid for _, aid in acks)
    comparisons = Comparison.objects.filter(batch_id=args.batch).annotate(
        n_submitted=Count("assignments", filter=Q(assignments__status="submitted")),
        n_leased=Count("assignments", filter=Q(assignments__status="leased")),
    )
    return {
        "acknowledged": len(acks),
        "stored": len(submitted),
        "lost": sum(1 for user, aid in acks if submitted.get(aid) != user),
        "duplicated": sum(n - 1 for n in acked.values() if n > 1)
        + sum(1 for n in per_assignment.values() if n > 3),
        "incomplete": sum(1 for aid in submitted if per_assignment.get(aid) != 3)
        + sum(1 for aid, n in per_assignment.items() if aid not in submitted and n),
        "over_k": sum(1 for c in comparisons if c.n_submitted > c.annotations_needed),
        "counter_mismatch": sum(
            1
            for c in comparisons
            if (c.annotations_done, c.annotations_in_progress) != (c.n_submitted, c.n_leased)
        ),
        "stored_unacknowledged": sum(1 for aid in submitted if aid not in acked),
    }


def profile(args: argparse.Namespace) -> dict:
    """Queries and time per request, with the Django test client (no HTTP, no gunicorn)."""
    django_setup()
    import cProfile
    import pstats

    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST=HOST)
    client.force_login(User.objects.get(username="load000"))
    batch = args.batch
    report: dict = {}

    def measure(name, send):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = send()
            elapsed = time.perf_counter() - start
        entry = report.setdefault(name, {"n": 0, "ms": 0.0, "queries": 0, "sql_ms": 0.0})
        entry["n"] += 1
        entry["ms"] += 1000 * elapsed
        entry["queries"] += len(ctx.captured_queries)
        entry["sql_ms"] += 1000 * sum(float(q["time"]) for q in ctx.captured_queries)
        entry["sql"] = [
            f"{1000 * float(q['time']):5.1f} ms  {q['sql'][:150]}" for q in ctx.captured_queries
        ]
        return response

    def one_round():
        response = measure("next (GET /annotate/?start)", lambda: client.get(start_url))
        url = response["Location"]
        measure("page (GET /judge/<id>/)", lambda: client.get(url))
        answers = dict.fromkeys(("factual", "informative", "grammatical"), "left")
        form = {**answers, "active_seconds": "2"}
        submit = url + "submit/"
        measure("submit (htmx POST)", lambda: client.post(submit, form, HTTP_HX_REQUEST="true"))

    start_url = f"/annotate/{batch}/?start"
    for _ in range(5):  # warm caches and connections
        one_round()
    report.clear()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.rounds):
        one_round()
    profiler.disable()
    for entry in report.values():
        n = entry.pop("n")
        entry.update(
            ms=round(entry["ms"] / n, 2),
            queries=entry["queries"] / n,
            sql_ms=round(entry["sql_ms"] / n, 2),
        )
    stats = pstats.Stats(profiler)
    wanted = {
        "render": "template rendering (django.shortcuts.render)",
        "lease_next": "assignments.lease_next",
        "annotator_progress": "progress.annotator_progress",
        "submit_judgments": "assignments.submit_judgments",
        "release_expired": "assignments.release_expired",
        "user_role": "models.user_role",
        "_get_session_from_db": "session load",
        "execute": "SQL execute (cursor wrappers)",
    }
    costs = {}
    for (filename, _, func), (_, _, _, cumulative, _) in stats.stats.items():
        if func in wanted and ("django" in filename or "evaluation" in filename):
            label = wanted[func]
            costs[label] = max(costs.get(label, 0.0), cumulative)
    per_round = {k: round(1000 * v / args.rounds, 2) for k, v in costs.items()}
    own = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:12]
    top = [
        (f"{Path(f).name}:{line} {func}", round(1000 * tt / args.rounds, 2))
        for (f, line, func), (_, _, tt, _, _) in own
    ]
    return {
        "vendor": connection.vendor,
        "per_request": report,
        "ms_per_round": per_round,
        "top_own_time": top,
    }


# --- the client side ------------------------------------------------------------------------


class Refused(Exception):
    pass


class Browser:
    """One annotator's browser: cookies, a keep-alive connection, the last CSRF token seen."""

    def __init__(self, port: int):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}
        self.token = ""
        self.idle_since = 0.0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(self, method: str, path: str, form: dict | None = None, htmx: bool = False):
        # gunicorn drops idle keep-alive connections after 2 s; reconnect rather than race it.
        if self.conn is None or time.monotonic() - self.idle_since > 1.0:
            self.close()
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        headers = {"Host": f"{HOST}:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if htmx:
            headers["HX-Request"] = "true"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body, headers)
            response = self.conn.getresponse()
            data = response.read()
        except Exception:
            self.close()
            raise
        elapsed = time.perf_counter() - started
        self.idle_since = time.monotonic()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key.strip()] = rest.split(";", 1)[0]
        if (response.getheader("Connection") or "").lower() == "close":
            self.close()
        found = TOKEN.search(data)
        if found:
            self.token = found.group(1).decode()
        return response, data, elapsed


@dataclass
class Stats:
    acks: list = field(default_factory=list)
    latency: dict = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, status: int | str) -> None:
        with self.lock:
            self.latency.setdefault(kind, []).append(seconds)
            self.statuses[f"{kind} {status}"] += 1


class Annotator:
    def __init__(self, port: int, batch: int, username: str, stats: Stats, htmx: bool = True):
        self.browser = Browser(port)
        self.batch, self.username, self.stats, self.htmx = batch, username, stats, htmx
        self.current: int | None = None

    def login(self) -> None:
        self.browser.send("GET", "/login/")
        form = {"username": self.username, "password": PASSWORD, "next": ""}
        form["csrfmiddlewaretoken"] = self.browser.token
        response, _, elapsed = self.browser.send("POST", "/login/", form)
        self.stats.record("login", elapsed, response.status)
        if response.status != 302:
            raise Refused(f"login answered {response.status}")

    def use_session(self, session_key: str) -> None:
        self.browser.cookies["sessionid"] = session_key

    def next(self) -> bool:
        """Lease the next comparison and load its page; False when the batch has nothing left."""
        if self.current is not None:  # htmx: the last submit's answer was the next comparison
            return True
        response, data, first = self.browser.send("GET", f"/annotate/{self.batch}/?start")
        if response.status == 200 and b'class="finished"' in data:
            self.stats.record("next", first, "finished")
            return False
        location = response.getheader("Location") or ""
        found = JUDGE.search(location)
        if response.status != 302 or not found:
            self.stats.record("next", first, response.status)
            raise Refused(f"next answered {response.status}")
        response, data, second = self.browser.send("GET", location)
        self.stats.record("next", first + second, response.status)
        if response.status != 200:
            raise Refused(f"page answered {response.status}")
        self.current = int(found.group(1))
        return True

    def submit(self) -> None:
        assignment, self.current = self.current, None
        form = {
            "factual": random.choice(CHOICES),
            "informative": random.choice(CHOICES),
            "grammatical": random.choice(CHOICES),
            "active_seconds": f"{random.uniform(5, 30):.1f}",
            "csrfmiddlewaretoken": self.browser.token,
        }
        path = f"/judge/{assignment}/submit/"
        response, data, elapsed = self.browser.send("POST", path, form, htmx=self.htmx)
        self.stats.record("submit", elapsed, response.status)
        if response.status != (200 if self.htmx else 302):
            raise Refused(f"submit answered {response.status}")
        with self.stats.lock:
            self.stats.acks.append((self.username, assignment))
        found = JUDGE.search(response.getheader("HX-Push-Url") or "")
        if self.htmx and found and b'class="finished"' not in data:
            self.current = int(found.group(1))


def safely(stats: Stats, action) -> bool:
    """Run one step; an error is counted, and the annotator carries on after a short pause."""
    try:
        action()
        return True
    except Exception as e:
        with stats.lock:
            stats.errors[f"{type(e).__name__}: {str(e)[:80]}"] += 1
        time.sleep(0.2)
        return False


def closed_loop(port: int, batch: int, users: list[str], duration: float, htmx: bool, stop):
    stats = Stats()
    annotators = [Annotator(port, batch, u, stats, htmx) for u in users]
    ready = threading.Barrier(len(annotators) + 1)
    window: dict[str, float] = {}
    finished = []

    def run(annotator: Annotator) -> None:
        safely(stats, annotator.login)
        ready.wait()
        while not stop.is_set() and time.monotonic() < window["end"]:
            more = [True]

            def step(a=annotator, more=more):
                more[0] = a.next()
                if more[0]:
                    a.submit()

            safely(stats, step)
            if not more[0]:
                break
        finished.append(time.monotonic())
        annotator.browser.close()

    threads = [threading.Thread(target=run, args=(a,), daemon=True) for a in annotators]
    for t in threads:
        t.start()
    window["end"] = float("inf")
    ready.wait()  # everybody logged in: the measured window starts now
    window["start"] = time.monotonic()
    window["end"] = window["start"] + duration
    join_all(threads, stop)
    elapsed = (max(finished) if finished else time.monotonic()) - window["start"]
    return stats, elapsed


def open_loop(port, batch, sessions: dict[str, str], duration, pause, htmx, stop):
    """Each annotator reads every comparison for `pause` seconds; arrivals do not wait on the
    server, so the latency seen is what a crowd of `len(sessions)` people would see."""
    stats = Stats()
    start = time.monotonic()
    end = start + duration

    def run(username: str, session_key: str) -> None:
        annotator = Annotator(port, batch, username, stats, htmx)
        annotator.use_session(session_key)
        due = start + random.uniform(0, pause)
        while wait_until(due, end, stop):
            if not safely(stats, annotator.next):
                due += 1  # an error: try again a second later, as a person would
                continue
            if annotator.current is None:
                break  # nothing left to judge
            due += pause  # reading the comparison
            if not wait_until(due, end, stop):
                break
            safely(stats, annotator.submit)
        annotator.browser.close()

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in sessions.items()]
    for t in threads:
        t.start()
    join_all(threads, stop)
    return stats, time.monotonic() - start


def wait_until(due: float, end: float, stop: threading.Event) -> bool:
    now = time.monotonic()
    if due >= end:
        return False
    if due > now:
        stop.wait(due - now)
    return not stop.is_set()


def join_all(threads: list[threading.Thread], stop: threading.Event) -> None:
    # Short joins, so that Ctrl-C reaches the main thread at once.
    for t in threads:
        while t.is_alive():
            t.join(0.2)
            if stop.is_set():
                return


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


def latency_line(stats: Stats, kind: str) -> str:
    values = stats.latency.get(kind, [])
    if not values:
        return f"{kind:>7}: no samples"
    p = [1000 * percentile(values, q) for q in (50, 95, 99)]
    figures = f"p50 {p[0]:7.1f} ms  p95 {p[1]:7.1f} ms  p99 {p[2]:7.1f} ms"
    return f"{kind:>7}: {figures}  (n={len(values)})"


# --- orchestration --------------------------------------------------------------------------


class Server:
    """gunicorn on a free loopback port, stopped by its PID."""

    def __init__(self, env: dict, args: argparse.Namespace, log: Path):
        self.port = free_port()
        cmd = [
            PYTHON, "-m", "gunicorn", "annotation_site.wsgi",
            "--bind", f"{HOST}:{self.port}",
            "--workers", str(args.workers),
            "--worker-class", args.worker_class,
            "--threads", str(args.threads),
            "--timeout", "60",
            "--graceful-timeout", "5",
        ]  # fmt: skip
        self.log = log
        self.process = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited; see {self.log}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/login/", headers={"Host": HOST})
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"gunicorn did not answer within {timeout} s; see {self.log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def database_env(db: str, var_dir: Path, pg_name: str = PG_NAME) -> dict:
    env = dict(os.environ)
    env.update(
        DEBUG="false",
        SECRET_KEY="load-test-only-" + "x" * 50,
        ALLOWED_HOSTS=HOST,
        SECURE_SSL_REDIRECT="false",
        FACTPAIR_VAR_DIR=str(var_dir),
        # Scoring is enqueued at import; nobody consumes it here, so keep it in memory.
        CELERY_BROKER_URL="memory://",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.pop("DATABASE_URL", None)
    if db == "postgres":
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{pg_name}"
    return env


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", HOST, "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def child(env: dict, *argv: str) -> dict:
    """Run this script's database-side command in a child process; its last line is JSON."""
    out = subprocess.run(
        [PYTHON, __file__, *argv], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def create_database(db: str, env: dict, pg_name: str = PG_NAME) -> None:
    if db == "postgres":
        psql(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")
        psql(f"CREATE DATABASE {pg_name}")
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )


def report_run(title: str, stats: Stats, elapsed: float, check: dict | None) -> dict:
    rate = len(stats.acks) / elapsed if elapsed > 0 else 0.0
    print(f"\n== {title}: {len(stats.acks)} judgment sets in {elapsed:.1f} s = {rate:.1f} sets/s")
    for kind in ("login", "next", "submit"):
        if kind in stats.latency:
            print("  " + latency_line(stats, kind))
    print("  statuses:", dict(sorted(stats.statuses.items())))
    if stats.errors:
        print("  errors:", dict(stats.errors.most_common(5)))
    if check:
        ok = not (check["lost"] or check["duplicated"] or check["over_k"] or check["incomplete"])
        ok = ok and not check["counter_mismatch"]
        print("  database:", check, "OK" if ok else "PROBLEM")
    p99 = {k: round(1000 * percentile(v, 99), 1) for k, v in stats.latency.items()}
    return {"title": title, "sets_per_s": round(rate, 1), "p99_ms": p99, "check": check}


def run_database(db: str, args: argparse.Namespace, stop: threading.Event, cleanup) -> list:
    var_dir = Path(tempfile.mkdtemp(prefix=f"factpair-load-{db}-"))
    cleanup.append(lambda: shutil.rmtree(var_dir, ignore_errors=True))
    env = database_env(db, var_dir, args.pg_name)
    if db == "postgres":
        cleanup.append(lambda: psql(f"DROP DATABASE IF EXISTS {args.pg_name} WITH (FORCE)"))
    print(f"\n#### {db}: preparing a fresh database", flush=True)
    started = time.monotonic()
    create_database(db, env, args.pg_name)
    counts = [int(n) for n in args.annotators.split(",")]
    labels = [f"closed-{n}" for n in counts] + (["open"] if args.open_loop else [])
    if args.profile:
        labels.append("profile")
    n_users = max([*counts, args.open_annotators if args.open_loop else 0])
    setup = child(
        env, "_prepare", "--users", str(n_users), "--labels", ",".join(labels),
        "--comparisons", str(args.comparisons), "--words", str(args.words),
        "--sessions", str(args.open_annotators if args.open_loop else 0),
        "--analyze", "0" if args.no_analyze else "1",
    )  # fmt: skip
    print(f"prepared in {time.monotonic() - started:.0f} s: batches {setup['batches']}")
    results = []
    if args.profile:
        prof = child(env, "_profile", "--batch", str(setup["batches"]["profile"]), "--rounds", "30")
        print_profile(db, prof)
    server = Server(env, args, var_dir / "gunicorn.log")
    cleanup.append(server.stop)
    try:
        for n in counts:
            if stop.is_set():
                break
            batch = setup["batches"][f"closed-{n}"]
            stats, elapsed = closed_loop(
                server.port, batch, setup["users"][:n], args.duration, not args.no_js, stop
            )
            check = verify_run(env, batch, stats, var_dir)
            results.append(report_run(f"{db}, {n} annotators, closed loop", stats, elapsed, check))
        if args.open_loop and not stop.is_set():
            batch = setup["batches"]["open"]
            print(f"\n(open loop: {len(setup['sessions'])} annotators, {args.pause:g} s per item)")
            stats, elapsed = open_loop(
                server.port, batch, setup["sessions"], args.open_duration, args.pause,
                not args.no_js, stop,
            )  # fmt: skip
            check = verify_run(env, batch, stats, var_dir)
            title = f"{db}, {len(setup['sessions'])} annotators, open loop"
            results.append(report_run(title, stats, elapsed, check))
    except BaseException:
        stop.set()  # Ctrl-C: the annotator threads stop sending before gunicorn is stopped
        raise
    finally:
        server.stop()
    return results


def verify_run(env: dict, batch: int, stats: Stats, var_dir: Path) -> dict:
    acks = var_dir / f"acks-{batch}.json"
    acks.write_text(json.dumps(stats.acks))
    return child(env, "_verify", "--batch", str(batch), "--acks", str(acks))


def print_profile(db: str, prof: dict) -> None:
    print(f"\n== profile on {db} (Django test client, one annotator, averages per request)")
    for name, entry in prof["per_request"].items():
        print(
            f"  {name:<30} {entry['ms']:6.2f} ms, {entry['queries']:4.1f} queries "
            f"({entry['sql_ms']:.2f} ms in SQL)"
        )
        for sql in entry["sql"]:
            print(f"      {sql}")
    print("  cumulative per round (next + page + submit):")
    for label, ms in sorted(prof["ms_per_round"].items(), key=lambda kv: -kv[1]):
        print(f"    {label:<45} {ms:6.2f} ms")
    print("  functions by own time per round (under cProfile, which inflates small calls):")
    for label, ms in prof["top_own_time"]:
        print(f"    {label:<60} {ms:6.2f} ms")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--annotators", default="1,10,50", help="closed-loop runs, comma-separated")
    parser.add_argument("--duration", type=float, default=20, help="seconds per closed-loop run")
    parser.add_argument("--open-loop", action="store_true", help="also the open-loop run")
    parser.add_argument("--open-annotators", type=int, default=500)
    parser.add_argument("--open-duration", type=float, default=60)
    parser.add_argument("--pause", type=float, default=10, help="open loop: seconds per item")
    parser.add_argument(
        "--no-js", action="store_true", help="the plain-form flow of a browser without JavaScript"
    )
    parser.add_argument("--profile", action="store_true", help="queries and costs per request")
    parser.add_argument(
        "--no-analyze", action="store_true", help="PostgreSQL: no ANALYZE after the import"
    )
    parser.add_argument("--comparisons", type=int, default=2000)
    parser.add_argument("--words", type=int, default=400, help="words per source")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument(
        "--pg-name",
        type=database_name,
        default=PG_NAME,
        help=f"the PostgreSQL database to create and drop (default {PG_NAME})",
    )
    return parser.parse_args(argv)


def database_name(value: str) -> str:
    """A plain lower-case identifier, and never PostgreSQL's own databases nor the one this
    shell's DATABASE_URL names (the script drops it)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise argparse.ArgumentTypeError(
            f"{value!r}: use lower-case letters, digits and _ (at most 63), starting with one "
            "of the letters or _"
        )
    configured = os.environ.get("DATABASE_URL", "").rsplit("/", 1)[-1].split("?")[0]
    if value in {"postgres", "template0", "template1", configured}:
        raise argparse.ArgumentTypeError(f"{value!r}: this script drops it, and may not")
    return value


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        return internal(sys.argv[1], sys.argv[2:])
    args = parse_args(sys.argv[1:])
    # Ctrl-C, and SIGTERM too, end the run through the same clean-up (a shell's background job
    # would otherwise ignore SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stop = threading.Event()
    cleanup: list = []
    print(
        f"gunicorn: {args.workers} workers x {args.threads} threads ({args.worker_class}); "
        f"flow: {'no JavaScript (3 requests a set)' if args.no_js else 'htmx (1 request a set)'}"
    )
    results = []
    try:
        for db in ["postgres", "sqlite"] if args.db == "both" else [args.db]:
            results += run_database(db, args, stop, cleanup)
    except KeyboardInterrupt:
        stop.set()
        print("\ninterrupted: stopping everything this script started")
    finally:
        stop.set()
        for action in reversed(cleanup):
            try:
                action()
            except Exception as e:
                print(f"cleanup: {e}")
    if results:
        print("\nsummary:", json.dumps(results, indent=1))


def internal(command: str, argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    for name in ("--users", "--sessions", "--comparisons", "--words", "--batch", "--rounds"):
        parser.add_argument(name, type=int, default=0)
    parser.add_argument("--analyze", type=int, default=0)
    parser.add_argument("--labels", default="")
    parser.add_argument("--acks", default="")
    args = parser.parse_args(argv)
    commands = {"_prepare": prepare, "_verify": verify, "_profile": profile}
    print(json.dumps(commands[command](args)))


if __name__ == "__main__":
    main()
