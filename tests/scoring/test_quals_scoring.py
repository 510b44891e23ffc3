"""QUALS inside factpair: stored scores with their explanation, jobs, commands and pages."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse

from evaluation.models import Summary
from scoring import quals, scorers, services
from scoring.models import MetricScore, ScoringJob
from scoring.tasks import score_quals, score_rouge

from .qagen_fixture import QA_TASK, build_qagen_dir

SMALL = {"num_beams": 4, "num_beam_groups": 4, "min_new_tokens": 2, "max_new_tokens": 8}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return build_qagen_dir(tmp_path_factory.mktemp("qagen-app"))


@pytest.fixture
def configured(settings, model_dir, monkeypatch):
    settings.QUALS_MODEL = str(model_dir)
    real_config = scorers.quals_config

    def small_config():
        from dataclasses import replace

        return replace(real_config(), **SMALL)

    monkeypatch.setattr(scorers, "quals_config", small_config)
    scorers._loaded.cache_clear()
    scorers._ENCODED.clear()
    return model_dir


@pytest.fixture
def answerable_pairs(monkeypatch):
    """Generation replaced by explicit pairs whose answers occur in the summary, so that the
    selection and scoring steps truly run on the random tiny model."""

    def candidates(qagen, summary, encoded=None):
        words = summary.rstrip(".").split()
        return [
            quals.make_pair(qagen, "Who did it?", " ".join(words[:3]), -1.0),
            quals.make_pair(qagen, "What happened?", " ".join(words[-2:]), -2.0),
        ]

    monkeypatch.setattr(quals, "generate_candidates", candidates)


@pytest.mark.django_db
class TestScoreSummaryQuals:
    def test_it_stores_the_value_and_its_explanation(self, batch, configured, answerable_pairs):
        summary = Summary.objects.get(document__external_id="doc-1", system="QUALS")
        services.score_summary("quals", summary.pk)
        score = MetricScore.objects.get(summary=summary, metric="quals")
        qagen = scorers.worker_qagen()
        expected = quals.quals_score(qagen, summary.document.source, summary.text)
        assert score.status == "ok"
        assert score.value == pytest.approx(expected.value, abs=1e-5)
        assert [p["answer"] for p in score.details["pairs"]] == [p.answer for p in expected.pairs]
        first = score.details["pairs"][0]
        assert (
            len(first["tokens"])
            == len(first["logprobs_summary"])
            == len(first["logprobs_document"])
        )
        # the mode, the model's directory and weights hash, and factpair's version
        assert score.version.startswith("QUALS reference; ")
        assert f"; model {configured.name} weights {qagen.fingerprint}; " in score.version
        assert len(qagen.fingerprint) == 12
        assert score.version.endswith(f"; factpair {settings.FACTPAIR_VERSION}")

    def test_it_stores_no_score_with_the_reason(self, batch, configured, monkeypatch):
        monkeypatch.setattr(quals, "generate_candidates", lambda *a, **k: [])
        summary = Summary.objects.first()
        services.score_summary("quals", summary.pk)
        score = MetricScore.objects.get(summary=summary, metric="quals")
        assert (score.status, score.value, score.reason) == ("no_score", None, quals.NO_PAIR_REASON)

    def test_it_is_safe_to_run_twice(self, batch, configured, answerable_pairs):
        summary = Summary.objects.first()
        job = ScoringJob.objects.create(
            batch=batch, kind="quals", total=1, summary_ids=[summary.pk]
        )
        score_quals.run(summary.pk, job.pk)
        score_quals.run(summary.pk, job.pk)
        assert MetricScore.objects.filter(summary=summary).count() == 1
        job.refresh_from_db()
        assert (job.done, job.status) == (1, "done")

    def test_it_encodes_a_document_once_for_both_summaries(
        self, batch, configured, answerable_pairs, monkeypatch
    ):
        calls = []
        real = quals.encode_source
        monkeypatch.setattr(
            quals, "encode_source", lambda q, text: calls.append(text) or real(q, text)
        )
        doc = batch.documents.first()
        for summary in doc.summaries.all():
            services.score_summary("quals", summary.pk)
        assert calls.count(doc.source) == 1


@pytest.mark.django_db
class TestQualsJobs:
    def test_it_says_not_configured_instead_of_scoring(self, batch, settings, sent_tasks):
        settings.QUALS_MODEL = ""
        kinds = [j.kind for j in services.start_batch_scoring(batch.pk)]
        assert kinds == ["rouge", "fragments"]
        assert "quals" not in {kind for kind, *_ in sent_tasks}
        with pytest.raises(scorers.MetricUnavailable, match="QUALS_MODEL"):
            services.start_batch_scoring(batch.pk, ["quals"])

    def test_it_enqueues_quals_on_its_own_queue(self, batch, configured, monkeypatch):
        from annotation_site.celery import app

        sent = []
        monkeypatch.setattr(score_quals, "delay", lambda *a: sent.append(a))
        (job,) = services.start_batch_scoring(batch.pk, ["quals"])
        assert job.total == len(sent) == 8
        assert app.amqp.router.route({}, score_quals.name)["queue"].name == "quals"

    def test_it_resumes_a_stalled_job_with_what_is_missing(self, batch, monkeypatch):
        from datetime import timedelta

        from django.utils import timezone

        sent = []
        monkeypatch.setattr(score_rouge, "delay", lambda *a: sent.append(a))
        (job,) = services.start_batch_scoring(batch.pk, ["rouge"])
        services.score_summary("rouge", job.summary_ids[0], job.pk)
        services.record_failure(job.pk, job.summary_ids[1], "boom")
        sent.clear()
        assert services.resume_stalled_jobs() == 0  # not stalled yet
        later = timezone.now() + timedelta(minutes=11)
        assert services.resume_stalled_jobs(now=later) == 6
        assert sorted(s for s, _ in sent) == sorted(job.summary_ids[2:])


@pytest.mark.django_db
class TestScoreBatchCommand:
    def test_it_reruns_with_force(self, batch, settings, monkeypatch, capsys):
        settings.QUALS_MODEL = ""
        monkeypatch.setattr(score_rouge, "delay", lambda *a: None)
        call_command("score_batch", batch.name, "--metric", "rouge", "--force")
        assert "ROUGE: 8 summaries enqueued" in capsys.readouterr().out

    def test_it_refuses_quals_without_a_model(self, batch, settings):
        settings.QUALS_MODEL = ""
        with pytest.raises(CommandError, match="QUALS is not configured"):
            call_command("score_batch", str(batch.pk), "--metric", "quals")


class TestQualsScoreCommand:
    def test_it_scores_a_jsonl_file(self, model_dir, tmp_path, answerable_pairs):
        source = tmp_path / "in.jsonl"
        rows = [
            {
                "id": 1,
                "source": "The mayor opened the bridge on Monday.",
                "summary": "The mayor opened it.",
            },
            {
                "id": 2,
                "source": "The mayor opened the bridge on Monday.",
                "summary": "A bridge opened.",
            },
        ]
        source.write_text("\n".join(json.dumps(r) for r in rows))
        out = tmp_path / "out.jsonl"
        call_command(
            "quals_score", "--model", str(model_dir), "--input", str(source), "--output", str(out),
            "--num-beams", "4",
        )  # fmt: skip
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert [x["id"] for x in lines] == [1, 2]
        assert all(isinstance(x["quals"], float) and x["reason"] == "" for x in lines)
        assert lines[0]["pairs"][0]["question"] == "Who did it?"

    def test_it_refuses_a_bad_file_before_scoring(self, model_dir, tmp_path):
        source = tmp_path / "in.jsonl"
        source.write_text('{"id": 1, "source": "x"}\nnot json\n')
        with pytest.raises(CommandError) as exc:
            call_command(
                "quals_score", "--model", str(model_dir), "--input", str(source),
                "--output", str(tmp_path / "out.jsonl"),
            )  # fmt: skip
        assert "line 1: missing or empty summary" in str(exc.value)
        assert "line 2: not valid JSON" in str(exc.value)
        assert not (tmp_path / "out.jsonl").exists()

    def test_it_refuses_a_missing_model(self, tmp_path):
        source = tmp_path / "in.jsonl"
        source.write_text('{"id": 1, "source": "x", "summary": "y"}\n')
        with pytest.raises(CommandError, match="QUALS"):
            call_command(
                "quals_score", "--model", str(tmp_path / "nope"), "--input", str(source),
                "--output", str(tmp_path / "out.jsonl"),
            )  # fmt: skip


DOCUMENT = "The mayor opened the bridge on Monday."


def write_lines(path, lines) -> str:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.fixture
def line_files(tmp_path):
    summaries = ["The mayor opened it.", "A bridge opened.", "Nothing to ask about."]
    source = write_lines(tmp_path / "test.source", [DOCUMENT, DOCUMENT, "Rain fell."])
    return source, write_lines(tmp_path / "test.target.hypo", summaries)


@pytest.fixture
def no_pair_for_nothing(monkeypatch, answerable_pairs):
    """The explicit pairs of `answerable_pairs`, except none for a summary about nothing."""
    with_pairs = quals.generate_candidates

    def candidates(qagen, summary, encoded=None):
        return [] if summary.startswith("Nothing") else with_pairs(qagen, summary, encoded)

    monkeypatch.setattr(quals, "generate_candidates", candidates)


class TestQualsScoreLineAlignedFiles:
    def score(self, model_dir, source, summaries, output, *extra):
        call_command(
            "quals_score", "--model", str(model_dir), "--source", source,
            "--summaries", summaries, "--output", str(output), "--num-beams", "4", *extra,
        )  # fmt: skip

    def test_it_writes_one_score_per_line_and_nan_without_one(
        self, model_dir, tmp_path, line_files, no_pair_for_nothing, capsys
    ):
        self.score(model_dir, *line_files, tmp_path / "scores.txt", "--output-format", "lines")
        self.score(model_dir, *line_files, tmp_path / "scores.jsonl")
        lines = (tmp_path / "scores.txt").read_text().splitlines()
        rows = [json.loads(x) for x in (tmp_path / "scores.jsonl").read_text().splitlines()]
        assert [row["id"] for row in rows] == [1, 2, 3]
        assert [float(x) for x in lines[:2]] == [row["quals"] for row in rows[:2]]
        assert lines[2] == "nan" and rows[2]["quals"] is None
        assert f"id 3: no score: {quals.NO_PAIR_REASON}" in capsys.readouterr().err

    def test_it_refuses_files_of_different_lengths(self, model_dir, tmp_path, line_files):
        source, _ = line_files
        short = write_lines(tmp_path / "short.hypo", ["One summary."])
        with pytest.raises(CommandError, match="has 3 lines but .* has 1"):
            self.score(model_dir, source, short, tmp_path / "out.txt")
        assert not (tmp_path / "out.txt").exists()

    def test_it_refuses_empty_lines(self, model_dir, tmp_path, line_files):
        source, _ = line_files
        summaries = write_lines(tmp_path / "gaps.hypo", ["A summary.", "  ", ""])
        with pytest.raises(CommandError) as exc:
            self.score(model_dir, source, summaries, tmp_path / "out.txt")
        assert "line 2: empty summary" in str(exc.value)
        assert "line 3: empty summary" in str(exc.value)
        assert not (tmp_path / "out.txt").exists()

    def test_it_refuses_a_file_that_is_not_utf8(self, model_dir, tmp_path, line_files):
        source, _ = line_files
        latin = tmp_path / "latin.hypo"
        latin.write_bytes("caf\xe9\nb\nc\n".encode("latin-1"))
        with pytest.raises(CommandError, match="as UTF-8 text"):
            self.score(model_dir, source, str(latin), tmp_path / "out.txt")
        assert not (tmp_path / "out.txt").exists()

    def test_it_wants_one_kind_of_input(self, model_dir, tmp_path, line_files):
        source, summaries = line_files
        with pytest.raises(CommandError, match="not both"):
            self.score(model_dir, source, summaries, tmp_path / "o", "--input", source)
        with pytest.raises(CommandError, match="both --source FILE and --summaries FILE"):
            call_command(
                "quals_score", "--model", str(model_dir), "--source", source,
                "--output", str(tmp_path / "o"),
            )  # fmt: skip
        assert not (tmp_path / "o").exists()


class TestQualsScoreBatchedGeneration:
    def score(self, model_dir, source, summaries, output, *extra):
        call_command(
            "quals_score", "--model", str(model_dir), "--source", source,
            "--summaries", summaries, "--output", str(output), *extra,
        )  # fmt: skip
        return [json.loads(x) for x in output.read_text().splitlines()]

    def test_it_gives_the_scores_of_one_at_a_time(self, trained_qagen_dir, tmp_path):
        # Real generation on the trained tiny QAGen: 4 summaries, batches of 3 and 1.
        passages = list(QA_TASK)
        document = " ".join(passages)
        source = write_lines(tmp_path / "test.source", [document] * len(passages))
        summaries = write_lines(tmp_path / "test.target.hypo", passages)
        alone = self.score(trained_qagen_dir, source, summaries, tmp_path / "alone.jsonl")
        batched = self.score(
            trained_qagen_dir, source, summaries, tmp_path / "batched.jsonl",
            "--generation-batch-size", "3",
        )  # fmt: skip
        assert [row["id"] for row in batched] == [1, 2, 3, 4]
        assert all(row["quals"] is not None for row in alone)
        for one, other in zip(alone, batched, strict=True):
            assert other["quals"] == pytest.approx(one["quals"], abs=1e-4)
            assert [p["question"] for p in other["pairs"]] == [p["question"] for p in one["pairs"]]

    def test_it_refuses_a_batch_size_below_one(self, model_dir, tmp_path, line_files):
        with pytest.raises(CommandError, match="at least 1"):
            self.score(model_dir, *line_files, tmp_path / "o", "--generation-batch-size", "0")
        assert not (tmp_path / "o").exists()


@pytest.mark.django_db
class TestScoringPages:
    def test_the_explanation_lists_pairs_lowest_contribution_first(
        self, client, researcher, batch, configured, answerable_pairs
    ):
        summary = Summary.objects.first()
        services.score_summary("quals", summary.pk)
        client.force_login(researcher)
        response = client.get(reverse("summary_quals", args=[summary.pk]))
        assert response.status_code == 200
        details = MetricScore.objects.get(summary=summary).details["pairs"]
        worst = min(details, key=lambda p: p["contribution"])
        content = response.content.decode()
        assert content.index(worst["question"]) < content.index("<svg", content.index("1. "))
        assert content.count("<rect") == 2 * sum(len(p["tokens"]) for p in details)

    def test_it_says_not_configured(self, client, researcher, batch, settings):
        settings.QUALS_MODEL = ""
        client.force_login(researcher)
        response = client.get(reverse("summary_quals", args=[Summary.objects.first().pk]))
        assert b"QUALS is not configured" in response.content
        page = client.get(reverse("batch_detail", args=[batch.pk]))
        assert b"Not configured: QUALS is not configured: set QUALS_MODEL" in page.content
        assert b"not configured" in page.content

    def test_annotators_cannot_see_scores(self, client, annotator, batch):
        client.force_login(annotator)
        assert client.get(reverse("summary_quals", args=[1])).status_code == 403
        assert client.get(reverse("batch_detail", args=[batch.pk])).status_code == 403

    def test_progress_polls_while_running_and_stops_when_done(
        self, client, researcher, batch, monkeypatch
    ):
        monkeypatch.setattr(score_rouge, "delay", lambda *a: None)
        (job,) = services.start_batch_scoring(batch.pk, ["rouge"])
        client.force_login(researcher)
        running = client.get(reverse("batch_scoring", args=[batch.pk]))
        assert running.status_code == 200 and b'hx-trigger="every 2s"' in running.content
        for summary_id in job.summary_ids:
            services.score_summary("rouge", summary_id, job.pk)
        finished = client.get(reverse("batch_scoring", args=[batch.pk]))
        assert finished.status_code == 286
        assert b"every 2s" not in finished.content and b"100%" in finished.content
