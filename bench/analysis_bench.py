"""Benchmark the results page's statistics and the judgments export on a large batch.

Creates (once) a batch of about N judgments in PostgreSQL with COPY (K = 3 annotators per
comparison, 3 criteria, so N / 9 comparisons), then times the results page's data (results
table, sign tests, bootstrap, alpha, pairwise agreement, annotator report) and the judgments
CSV export (rows/s, with Python's peak memory while streaming). Goals: results page < 2 s,
export > 100,000 rows/s with flat memory. Each step prints its wall time, this process's CPU
time and the PostgreSQL backend's CPU time (read from /proc: the server runs on this machine),
with the load average before and after, since wall times on a shared machine are noisy.
The page itself (the view and its template, through Django's test client) is timed after the
steps, as the check that the steps leave nothing out.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/factpair_bench \\
        .venv/bin/python bench/analysis_bench.py --judgments 1000000
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")
# Production settings, as the page is served (DEBUG off: no query log, no template debug data),
# with a throwaway key and plain HTTP on 127.0.0.1.
for name, value in {
    "DEBUG": "false",
    "SECRET_KEY": "analysis-bench-only-" + "x" * 50,
    "ALLOWED_HOSTS": "127.0.0.1",
    "SECURE_SSL_REDIRECT": "false",
    "CELERY_BROKER_URL": "memory://",
}.items():
    os.environ.setdefault(name, value)
K = 3
CRITERIA = ("factual", "informative", "grammatical")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--annotators", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true", help="no tracemalloc pass")
    return parser.parse_args()


def ensure_database() -> None:
    """Create the PostgreSQL database if missing, then migrate it (both idempotent)."""
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("set DATABASE_URL=postgres://...: this benchmark is about PostgreSQL")
    db = dj_database_url.parse(url)
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    psql = ["psql", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432)]
    psql += ["-U", db["USER"] or "postgres", "-d", "postgres", "-tAc"]
    exists = subprocess.run(
        [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{db['NAME']}'"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if exists != "1":
        subprocess.run([*psql, f'CREATE DATABASE "{db["NAME"]}"'], env=env, check=True)
        print(f"created database {db['NAME']}")
    manage = [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"]
    subprocess.run(manage, env=env, check=True)


def copy_rows(cursor, table: str, columns: list[str], lines: list[str]) -> None:
    buffer = io.StringIO("".join(lines))
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def next_ids(cursor, table: str, count: int) -> int:
    """Reserve `count` ids from the table's sequence; returns the first."""
    cursor.execute(f"SELECT pg_get_serial_sequence('{table}', 'id')")
    (sequence,) = cursor.fetchone()
    cursor.execute(f"SELECT nextval('{sequence}')")
    (first,) = cursor.fetchone()
    cursor.execute("SELECT setval(%s, %s)", [sequence, first + count])
    return first


def create_batch(name: str, comparisons: int, n_annotators: int):
    """Documents, summaries, comparisons, assignments and judgments, all with COPY."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from evaluation.models import Batch

    rng = np.random.default_rng(20210517)
    with transaction.atomic():
        batch = Batch.objects.create(
            name=name, dataset="BENCH", system_a="MLE", system_b="QUALS", status="closed"
        )
        prefix = f"bench-ann-{name}-"
        User.objects.bulk_create(User(username=f"{prefix}{i}") for i in range(n_annotators))
        users = list(User.objects.filter(username__startswith=prefix).values_list("pk", flat=True))
        cur = connection.cursor().cursor  # the psycopg2 cursor, for copy_expert
        _copy_comparisons(cur, batch.pk, comparisons)
        _copy_judgments(cur, batch.pk, comparisons, users, rng)
        cur.execute("ANALYZE")
    return batch


def _copy_comparisons(cur, batch_id: int, n: int) -> None:
    doc0 = next_ids(cur, "evaluation_document", n)
    sum0 = next_ids(cur, "evaluation_summary", 2 * n)
    cmp0 = next_ids(cur, "evaluation_comparison", n)
    copy_rows(
        cur, "evaluation_document",
        ["id", "batch_id", "external_id", "source", "reference", "meta", "check_pool"],
        [f"{doc0 + i}\t{batch_id}\tdoc-{i}\tSource {i}.\t\t{{}}\tf\n" for i in range(n)],
    )  # fmt: skip
    copy_rows(
        cur, "evaluation_summary", ["id", "document_id", "system", "text"],
        [f"{sum0 + 2 * i + s}\t{doc0 + i}\t{system}\tSummary {i}.\n"
         for i in range(n) for s, system in enumerate(("MLE", "QUALS"))],
    )  # fmt: skip
    columns = ["id", "batch_id", "document_id", "summary_a_id", "summary_b_id"]
    columns += ["annotations_needed", "annotations_done", "annotations_in_progress"]
    columns += ["is_check", "expected", "position", "taken_a_left", "check_state"]
    # COPY bypasses Django's defaults: the lease order key is the index, and taken_a_left
    # (which the lease engine reads, never the results page) is left at 0.
    copy_rows(
        cur, "evaluation_comparison", columns,
        [f"{cmp0 + i}\t{batch_id}\t{doc0 + i}\t{sum0 + 2 * i}\t{sum0 + 2 * i + 1}\t{K}\t{K}\t0"
         f"\tf\t{{}}\t{i}\t0\t\n" for i in range(n)],
    )  # fmt: skip


def _copy_judgments(cur, batch_id: int, n: int, users: list[int], rng) -> None:
    cur.execute("SELECT min(id) FROM evaluation_comparison WHERE batch_id = %s", [batch_id])
    (cmp0,) = cur.fetchone()
    asg0 = next_ids(cur, "evaluation_assignment", K * n)
    jdg0 = next_ids(cur, "evaluation_judgment", K * n * len(CRITERIA))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Three distinct annotators per comparison: i, i + 1, i + 2 (mod the number of annotators).
    who = (np.arange(n)[:, None] + np.arange(K)[None, :]) % len(users)
    left = rng.integers(0, 2, size=(n, K))
    wall = rng.gamma(4, 20, size=(n, K))
    active = np.where(rng.random((n, K)) < 0.1, np.nan, wall * 0.8)
    verdict = rng.choice([-1, 0, 1], p=[0.25, 0.3, 0.45], size=(n, K, len(CRITERIA)))
    assignments, judgments = [], []
    names = {-1: "A", 0: "equal", 1: "B"}
    for i in range(n):
        served = start + timedelta(seconds=i)
        for j in range(K):
            aid = asg0 + i * K + j
            side = "AB"[left[i, j]]
            submitted = served + timedelta(seconds=float(wall[i, j]))
            act = "\\N" if np.isnan(active[i, j]) else f"{active[i, j]:.2f}"
            codes = "\t".join(str(int(v)) for v in verdict[i, j])
            assignments.append(
                f"{aid}\t{cmp0 + i}\t{batch_id}\t{users[who[i, j]]}\t{side}\tsubmitted"
                f"\t{served.isoformat()}\t{submitted.isoformat()}\t{submitted.isoformat()}\t{act}"
                f"\tf\t\t\t{codes}\t0\n"
            )
            for k, criterion in enumerate(CRITERIA):
                v = names[int(verdict[i, j, k])]
                shown = "equal" if v == "equal" else ("left" if v == side else "right")
                jid = jdg0 + (i * K + j) * len(CRITERIA) + k
                judgments.append(f"{jid}\t{aid}\t{criterion}\t{v}\t{shown}\n")
    columns = ["id", "comparison_id", "batch_id", "annotator_id", "left_system", "status"]
    columns += ["served_at", "lease_expires_at", "submitted_at", "active_seconds", "late"]
    columns += ["skip_reason"]
    columns += ["problem_report", "verdict_factual", "verdict_informative", "verdict_grammatical"]
    columns += ["revisions"]
    copy_rows(cur, "evaluation_assignment", columns, assignments)
    copy_rows(
        cur, "evaluation_judgment", ["id", "assignment_id", "criterion", "verdict", "shown"],
        judgments,
    )  # fmt: skip


def get_batch(n_judgments: int, n_annotators: int):
    from evaluation.models import Batch, Judgment

    comparisons = max(1, round(n_judgments / (K * len(CRITERIA))))
    name = f"bench-{comparisons * K * len(CRITERIA)}"
    batch = Batch.objects.filter(name=name).first()
    if batch is None:
        t0 = time.perf_counter()
        batch = create_batch(name, comparisons, n_annotators)
        print(f"created batch {name!r} in {time.perf_counter() - t0:.1f} s")
    stored = Judgment.objects.filter(assignment__comparison__batch=batch).count()
    print(f"batch {name!r}: {comparisons:,} comparisons, {stored:,} judgments")
    return batch


def backend_cpu() -> float | None:
    """CPU seconds (user + system) of this connection's PostgreSQL backend, read from /proc
    (the server runs on this machine); None where it cannot be read."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Clock:
    """Wall, this process's CPU and the PostgreSQL backend's CPU, per lap."""

    def __init__(self) -> None:
        self.steps: dict[str, tuple[float, float, float | None]] = {}
        self.last = self.now()

    @staticmethod
    def now() -> tuple[float, float, float | None]:
        return time.perf_counter(), time.process_time(), backend_cpu()

    def lap(self, name: str) -> None:
        now = self.now()
        db = None if now[2] is None or self.last[2] is None else now[2] - self.last[2]
        self.steps[name] = (now[0] - self.last[0], now[1] - self.last[1], db)
        self.last = self.now()  # the /proc read is not part of the next step


def results_page(batch) -> tuple[dict[str, tuple], str]:
    """Everything the results page computes, timed by step: (wall, CPU, PostgreSQL CPU)."""
    from evaluation import checks
    from research import analysis, methods

    clock = Clock()
    lap = clock.lap
    data, timing = analysis.load_batch_data([batch.pk])
    lap("load_batch_data")
    table = analysis.results_table(data)
    for r in table.values():
        analysis.sign_test(r.b_better, r.a_better, ties=r.equal)
        analysis.sample_size_hint(r.b_better, r.a_better, ties=r.equal)
    lap("results_table + sign tests")
    for criterion in analysis.CRITERIA:
        analysis.bootstrap_shares(data, criterion)
    lap("bootstrap x3")
    for criterion in analysis.CRITERIA:
        analysis.krippendorff_alpha(data, criterion)
        analysis.pairwise_agreement(data, criterion)
    lap("alpha + pairwise x3")
    levels = analysis.comparison_levels(data)
    lap("sign-flip, net pref, win rate, position bias x3 + Holm")
    for criterion in analysis.CRITERIA:
        analysis.reliability(data, criterion)
    lap("alpha + raw agreement CIs x3")
    for criterion in analysis.CRITERIA:
        analysis.power_hint(data, criterion)
    lap("clustered power hint x3")
    tie_aware(data)
    lap("tie-aware accuracy, 1 metric")
    analysis.metric_rows([batch.pk], data)
    lap("metrics vs humans, every metric (unscored)")
    methods.batch_facts(batch, data, levels, flagged=len(checks.flagged_annotator_ids(batch)))
    lap("methods facts + flagged annotators")
    net = levels[0].net
    two_way = net.two_way_method or net.two_way_reason
    analysis.design_of(data)
    lap("design crossing (kept from the comparison-level step)")
    report = analysis.annotator_report(data, timing)
    analysis.load_annotator_names(s.annotator_id for s in report)
    lap("annotator report")
    steps = clock.steps
    steps["total"] = tuple(
        None if any(v[i] is None for v in steps.values()) else sum(v[i] for v in steps.values())
        for i in range(3)
    )
    return steps, two_way


def page_through_django(batch) -> tuple[float, int]:
    """The results page itself, as a researcher's browser gets it: the view and its template
    through Django's test client (middleware, session, every query and the rendering), so
    nothing the page does is left out of the steps above. (wall seconds, HTML bytes)."""
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from django.urls import reverse

    from evaluation.models import Role
    from evaluation.roles import ensure_role_groups

    logging.getLogger("axes").setLevel(logging.WARNING)  # a login per run, not news
    ensure_role_groups()
    user, _ = User.objects.get_or_create(username="bench-researcher")
    user.groups.add(Group.objects.get(name=Role.RESEARCHER))
    client = Client(HTTP_HOST="127.0.0.1")  # the allowed host set above
    client.force_login(user)
    start = time.perf_counter()
    response = client.get(reverse("batch_results", args=[batch.pk]))
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        sys.exit(f"results page answered {response.status_code}")
    return seconds, len(response.content)


def tie_aware(data):
    """Tie-aware accuracy and its bootstrap on one metric's deltas per comparison: the bench
    batch has no stored scores, so the deltas are drawn (what the page computes from them is
    the same work)."""
    from research import analysis, statistics

    majorities = analysis.majorities_of(data, "factual")
    humans = np.fromiter(majorities.values(), dtype=np.int64, count=len(majorities))
    deltas = np.round(np.random.default_rng(1).normal(0.1 * humans.clip(-1, 1), 0.3), 3)
    return statistics.tie_aware_accuracy(
        deltas, humans, n_resamples=analysis.TIE_AWARE_RESAMPLES, seed=analysis.BOOTSTRAP_SEED
    )


def time_export(batch) -> tuple[int, tuple]:
    from research.exports import export_judgments

    clock = Clock()
    rows = sum(1 for _ in export_judgments(batch, "csv")) - 1  # minus the header
    clock.lap("export")
    return rows, clock.steps["export"]


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _seconds(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.3f}"


def export_memory(batch, rows: int) -> list[tuple[int, float]]:
    """Python memory traced at a few points of the export, and the peak: flat means constant."""
    from research.exports import export_judgments

    marks = {int(rows * f) for f in (0.1, 0.25, 0.5, 0.75, 1.0)}
    tracemalloc.start()
    samples = []
    for i, _ in enumerate(export_judgments(batch, "csv")):
        if i in marks:
            samples.append((i, tracemalloc.get_traced_memory()[0] / 2**20))
    samples.append((-1, tracemalloc.get_traced_memory()[1] / 2**20))
    tracemalloc.stop()
    return samples


def main() -> None:
    args = parse_args()
    ensure_database()
    import django

    django.setup()
    from research import analysis

    batch = get_batch(args.judgments, args.annotators)
    print(f"load average before: {load_average()}")
    runs = []
    for _ in range(args.repeats):
        steps, two_way = results_page(batch)
        runs.append(steps)
    print("\nresults page, per run: wall s / this process's CPU s / PostgreSQL backend CPU s")
    for step in runs[0]:
        cells = ("  ".join(_seconds(v) for v in run[step]) for run in runs)
        print(f"  {step:55s} " + " | ".join(cells))
    best = min(run["total"][0] for run in runs)
    median = statistics.median(run["total"][0] for run in runs)
    cpu = min(run["total"][1] + (run["total"][2] or 0) for run in runs)
    print(
        f"  -> wall best {best:.3f} s, median {median:.3f} s; CPU (process + PostgreSQL) best "
        f"{cpu:.3f} s (goal < 2 s)"
    )
    print(f"  load average after: {load_average()}")
    pages = [page_through_django(batch) for _ in range(args.repeats)]
    walls = ", ".join(f"{w:.3f}" for w, _ in pages)
    print(
        f"  the page itself (view + template through Django's test client, {pages[0][1]:,} "
        f"bytes of HTML): {walls} s; best {min(w for w, _ in pages):.3f} s (goal < 2 s)"
    )
    print(
        f"  resamples: share bootstraps 2,000, net preference and win rate 2,000 each (the "
        f"comparison bootstrap and the two-way one), sign-flip Monte Carlo 10,000, alpha and raw"
        f" agreement 2,000, tie-aware {analysis.TIE_AWARE_RESAMPLES:,}, power 2,000 simulated "
        f"studies per size; two-way: {two_way}"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  process peak RSS so far: {rss:.0f} MiB")

    rows, (seconds, cpu, db) = time_export(batch)
    rate = rows / seconds
    print(f"\njudgments CSV export: {rows:,} rows in {seconds:.2f} s = {rate:,.0f} rows/s")
    print(
        f"  CPU: this process {cpu:.2f} s ({rows / cpu:,.0f} rows per CPU second), PostgreSQL "
        f"backend {_seconds(db).strip()} s; load average {load_average()}"
    )
    print(f"  goal > 100,000 rows/s: {rate / 100_000:.2f}x")
    if not args.skip_memory:
        samples = export_memory(batch, rows)
        peak = samples.pop()[1]
        points = ", ".join(f"{i:,}: {mib:.1f}" for i, mib in samples)
        print(f"  traced Python memory while streaming (row: MiB): {points}; peak {peak:.1f} MiB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  process peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
