"""Enter to the next comparison painted, in real Chromium, with the reading aids on.

The script builds its own database (an SQLite file in a temporary FACTPAIR_VAR_DIR, or with
--db postgres a database `factpair_latency` it creates and drops), imports one batch of long real
sources (FRANK's CNN/DM articles from ../shared/data, 250 comparisons of pgn against bart; the
demo batch repeated to 72 comparisons where that file is absent, which the output says), sets
the batch's reading aids (paragraph numbers, highlights, word diff) all on, and serves it with
gunicorn on 127.0.0.1 (DEBUG=false, as production). Chromium (Debian's, headless, through
Playwright) logs in through the form as the annotator, opens the batch, and for each of
--warmup + --comparisons comparisons answers the three criteria by keyboard and presses Enter.

What is measured, in the page, with its own clock (performance.now()):
    start   the Enter keydown (a capture listener on document, so before annotate.js sees it)
    answered htmx:beforeSwap: the server's answer is in (request, server, transfer)
    swapped htmx:afterSwap of #work: the new comparison is in the DOM
    painted the first paint after that: a requestAnimationFrame callback runs just before the
            frame is painted, and a task posted from it (MessageChannel) runs just after that
            paint; its time is the figure reported. The double requestAnimationFrame figure
            (the callback of the frame after, so an upper bound by up to one frame, ~17 ms at
            60 Hz) is printed beside it.
htmx:afterSettle comes 20 ms (htmx's settle delay) after the swap and is not waited for: the
page is painted, and usable, before it. The figures are printed with the machine's load
average (it is shared; read them beside it), never asserted. Goal: p95 < 150 ms.

    /work/main/.venv/bin/python bench/judging_latency.py                  # SQLite
    /work/main/.venv/bin/python bench/judging_latency.py --db postgres

Everything it starts (gunicorn, Chromium, the temporary directory, the database) is stopped or
removed at the end, on Ctrl-C too. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import load  # the load script's server, database and percentile helpers

ROOT, PYTHON, HOST = load.ROOT, load.PYTHON, load.HOST
DB_NAME = "factpair_latency"
PG_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
FRANK = ROOT.parent / "shared" / "data" / "frank" / "frank_seed_articles.jsonl"
DEMO = ROOT / "evaluation" / "demo" / "demo_batch.jsonl"
USERNAME, PASSWORD = "bench-reader", "bench-latency-password"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
# Runs in every page before its own scripts: one record per Enter.
PROBE = """
window.__latency = [];
document.addEventListener("keydown", function (e) {
  if (e.key === "Enter") window.__enter = performance.now();
}, true);
document.addEventListener("htmx:beforeSwap", function (e) {
  if (window.__enter != null) window.__answered = performance.now() - window.__enter;
});
document.addEventListener("htmx:afterSwap", function (e) {
  if (!e.detail.target || e.detail.target.id !== "work" || window.__enter == null) return;
  var start = window.__enter, swapped = performance.now();
  var record = {answered: window.__answered, swapped: swapped - start};
  window.__enter = null;
  requestAnimationFrame(function () {
    var channel = new MessageChannel();
    channel.port1.onmessage = function () {
      record.painted = performance.now() - start;
      if (record.raf2 !== undefined) window.__latency.push(record);
    };
    channel.port2.postMessage(null);
    requestAnimationFrame(function () {
      record.raf2 = performance.now() - start;
      if (record.painted !== undefined) window.__latency.push(record);
    });
  });
});
"""


# --- the database side, run in a child process with the database's environment ---------------


def prepare() -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Group, User

    from evaluation.models import Batch
    from evaluation.roles import ensure_role_groups
    from evaluation.services import BatchSettings, import_batch

    ensure_role_groups()
    user = User.objects.create_user(USERNAME, password=PASSWORD)
    user.groups.add(Group.objects.get(name="annotator"))
    if FRANK.exists():
        data, name, fmt, frank = FRANK.read_bytes(), FRANK.name, "frank", "cnndm"
        systems, source = ("pgn", "bart"), f"FRANK CNN/DM articles ({FRANK})"
    else:
        rows = [json.loads(line) for line in DEMO.read_text("utf-8").splitlines() if line]
        copies = [{**r, "id": f"{r['id']}-{i}"} for i in range(3) for r in rows]
        data = "\n".join(json.dumps(r) for r in copies).encode()
        name, fmt, frank, systems = "demo.jsonl", "jsonl", None, ("MLE", "QUALS")
        source = f"the demo batch, 3 copies ({FRANK} is absent)"
    batch = import_batch(
        data,
        name,
        BatchSettings("latency", "BENCH", *systems, annotators_per_item=1),
        fmt=fmt,
        frank_dataset=frank,
    )
    aids = {
        f: True
        for f in ("aid_paragraph_numbers", "aid_highlights", "aid_word_diff")
        if hasattr(Batch, f)
    }
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.OPEN, **aids)
    batch.annotators.add(user)
    words = [len(c.document.source.split()) for c in batch.comparisons.select_related("document")]
    return {
        "batch": batch.pk,
        "comparisons": len(words),
        "source_words_median": statistics.median(words),
        "source": source,
        "aids": sorted(aids),
    }


# --- orchestration --------------------------------------------------------------------------


def judge(base: str, batch: int, warmup: int, n: int) -> list[dict]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(30_000)
            page.add_init_script(PROBE)
            page.goto(base + "/login/")
            page.fill("#id_username", USERNAME)
            page.fill("#id_password", PASSWORD)
            page.click("main button[type=submit]")
            page.wait_for_url(lambda url: "/login/" not in url)
            page.goto(f"{base}/annotate/{batch}/?start")
            page.wait_for_selector("#judge-form")
            page.wait_for_load_state("load")
            for i in range(warmup + n):
                shown = page.get_attribute("#work", "data-assignment")
                for key in ("qsc", "wsx", "eaz")[i % 3]:  # one answer per criterion, by key
                    page.keyboard.press(key)
                page.keyboard.press("Enter")
                try:
                    page.wait_for_function(f"() => window.__latency.length === {i + 1}")
                except PlaywrightTimeout:
                    problem = page.evaluate(
                        "() => (document.getElementById('form-error') || {}).textContent"
                    )
                    message = f"comparison {i + 1}: nothing painted; page says {problem!r}"
                    raise SystemExit(message) from None
                after = page.get_attribute("#work", "data-assignment")
                if after == shown or not page.locator("#judge-form").count():
                    raise SystemExit(f"comparison {i + 1}: no new comparison came ({after})")
            return page.evaluate("() => window.__latency")[warmup:]
        finally:
            browser.close()


def row(name: str, values: list[float]) -> str:
    p50, p95 = load.percentile(values, 50), load.percentile(values, 95)
    return f"  {name:<22} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {max(values):6.1f} ms"


def run(args: argparse.Namespace, cleanup: list) -> None:
    var_dir = Path(tempfile.mkdtemp(prefix="factpair-latency-"))
    cleanup.append(lambda: shutil.rmtree(var_dir, ignore_errors=True))
    env = load.database_env(args.db, var_dir)
    if args.db == "postgres":
        env["DATABASE_URL"] = PG_URL
        load.psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        load.psql(f"CREATE DATABASE {DB_NAME}")
        cleanup.append(lambda: load.psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
    manage = [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"]
    subprocess.run(manage, cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [PYTHON, __file__, "_prepare"], cwd=ROOT, env=env, check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    setup = json.loads(out.stdout.strip().splitlines()[-1])
    if setup["comparisons"] < args.warmup + args.comparisons:
        raise SystemExit(f"only {setup['comparisons']} comparisons imported")
    print(
        f"database: {args.db}; batch of {setup['comparisons']} comparisons from {setup['source']}"
        f", median source {setup['source_words_median']:.0f} words; "
        f"aids on: {', '.join(setup['aids']) or 'none (this checkout has no aid settings)'}"
    )
    workers = argparse.Namespace(workers=2, threads=2, worker_class="gthread")
    server = load.Server(env, workers, var_dir / "gunicorn.log")
    cleanup.append(server.stop)
    load_before = os.getloadavg()
    records = judge(f"http://{HOST}:{server.port}", setup["batch"], args.warmup, args.comparisons)
    load_after = os.getloadavg()
    print(f"\nEnter to next comparison, n={len(records)} (after {args.warmup} not counted):")
    print(row("answered (beforeSwap)", [r["answered"] for r in records]))
    print(row("swapped (afterSwap)", [r["swapped"] for r in records]))
    print(row("painted", [r["painted"] for r in records]))
    print(row("painted, rAF x2 bound", [r["raf2"] for r in records]))
    p95 = load.percentile([r["painted"] for r in records], 95)
    verdict = "meets" if p95 < 150 else "MISSES"
    print(f"  goal p95 < 150 ms: {verdict} it ({p95:.1f} ms)")
    print(
        f"load average (1, 5, 15 min): before {', '.join(f'{x:.2f}' for x in load_before)}; "
        f"after {', '.join(f'{x:.2f}' for x in load_after)}; {os.cpu_count()} CPUs"
    )


def main() -> None:
    if sys.argv[1:] == ["_prepare"]:
        print(json.dumps(prepare()))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--comparisons", type=int, default=50, help="measured (default 50)")
    parser.add_argument("--warmup", type=int, default=3, help="judged first, not counted")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cleanup: list = []
    try:
        run(args, cleanup)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything this script started")
    finally:
        for action in reversed(cleanup):
            try:
                action()
            except Exception as e:
                print(f"cleanup: {e}")


if __name__ == "__main__":
    main()
