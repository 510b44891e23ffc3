"""Extractive fragment coverage and density, and the fragments family end to end."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from evaluation.models import Summary
from scoring import services
from scoring.fragments import extractive_fragments, tokens
from scoring.models import MetricScore
from scoring.tasks import score_fragments


def algorithm_1(article: list[str], summary: list[str]) -> list[list[str]]:
    """Grusky et al. (2018), Algorithm 1, transcribed index for index (0-based)."""
    fragments, i, j = [], 0, 0
    while i < len(summary):
        f: list[str] = []
        while j < len(article):
            if summary[i] == article[j]:
                i2, j2 = i, j
                while i2 < len(summary) and j2 < len(article) and summary[i2] == article[j2]:
                    i2, j2 = i2 + 1, j2 + 1
                if len(f) < i2 - i:
                    f = summary[i:i2]
                j = j2
            else:
                j += 1
        i, j = i + max(len(f), 1), 0
        if f:
            fragments.append(f)
    return fragments


class TestExtractiveFragments:
    def test_it_finds_the_copied_runs_by_hand(self):
        found = extractive_fragments("The cat sat on the mat today.", "The cat sat on a mat.")
        # the cat sat on | a (not in the source) | mat | . ("mat ." is not: "mat today .")
        assert found.fragments == (("the", "cat", "sat", "on"), ("mat",), (".",))
        assert found.summary_tokens == 7
        assert found.coverage == pytest.approx(6 / 7)
        assert found.density == pytest.approx((16 + 1 + 1) / 7)

    def test_a_copied_summary_has_full_coverage_and_density_its_length(self):
        source = "Rain flooded the main road and three schools stayed closed on Monday."
        found = extractive_fragments(source, "three schools stayed closed")
        assert (found.coverage, found.density) == (1.0, 4.0)

    def test_a_novel_summary_has_none(self):
        found = extractive_fragments("The council voted.", "Heavy rain fell")
        assert (found.fragments, found.coverage, found.density) == ((), 0.0, 0.0)

    def test_it_resumes_the_scan_after_a_match_as_the_paper_does(self):
        # The run starting at source position 1 (a a b) is never tried: the scan resumes after
        # the first run (a a), so the paper's fragments are "a a" and "b", not "a a b".
        found = extractive_fragments("a a a b", "a a b")
        assert found.fragments == (("a", "a"), ("b",))

    def test_it_ignores_case(self):
        assert extractive_fragments("THE MAYOR spoke", "the mayor").coverage == 1.0

    def test_it_refuses_a_summary_without_words(self):
        with pytest.raises(ValueError, match="no words"):
            extractive_fragments("Some source.", "   ")

    def test_it_equals_the_papers_algorithm_on_real_articles(self, frank_file):
        checked = 0
        with frank_file.open() as lines:
            for line in list(lines)[:40]:
                article = json.loads(line)
                for summary in article["summaries"].values():
                    a, s = tokens(article["article"]), tokens(summary)
                    if not s:
                        continue
                    expected = algorithm_1(a, s)
                    found = extractive_fragments(article["article"], summary)
                    assert [list(f) for f in found.fragments] == expected
                    total = sum(len(f) for f in expected)
                    assert found.coverage == pytest.approx(total / len(s))
                    assert found.density == pytest.approx(
                        sum(len(f) ** 2 for f in expected) / len(s)
                    )
                    checked += 1
        assert checked >= 150


@pytest.mark.django_db
class TestFragmentsFamily:
    def test_it_stores_coverage_and_density_with_the_fragments(self, batch):
        summary = Summary.objects.get(document__external_id="doc-1", system="QUALS")
        services.score_summary("fragments", summary.pk)
        scores = {s.metric: s for s in MetricScore.objects.filter(summary=summary)}
        expected = extractive_fragments(summary.document.source, summary.text)
        assert scores["coverage"].value == pytest.approx(expected.coverage)
        assert scores["density"].value == pytest.approx(expected.density)
        assert scores["coverage"].details["fragments"] == [" ".join(f) for f in expected.fragments]
        assert scores["coverage"].version.startswith("fragments (Grusky et al. 2018), factpair ")

    def test_it_is_safe_to_run_twice(self, batch):
        summary = Summary.objects.first()
        score_fragments.run(summary.pk)
        score_fragments.run(summary.pk)
        assert MetricScore.objects.filter(summary=summary).count() == 2

    def test_it_stores_no_score_for_a_summary_without_words(self, batch):
        summary = Summary.objects.first()
        Summary.objects.filter(pk=summary.pk).update(text="   ")
        services.score_summary("fragments", summary.pk)
        score = MetricScore.objects.get(summary=summary, metric="coverage")
        assert (score.status, score.value, score.reason) == (
            "no_score",
            None,
            "the summary has no words",
        )

    def test_the_batch_page_and_results_show_it_from_the_registry(
        self, client, researcher, batch, sent_tasks
    ):
        (job,) = services.start_batch_scoring(batch.pk, ["fragments"])
        assert {k for k, *_ in sent_tasks} == {"fragments"} and job.total == 8
        for summary_id in job.summary_ids:
            services.score_summary("fragments", summary_id, job.pk)
        client.force_login(researcher)
        page = client.get(reverse("batch_detail", args=[batch.pk])).content.decode()
        assert "Extractive fragments" in page and "<th>Fragment coverage</th>" in page
        results = client.get(reverse("batch_results", args=[batch.pk]))
        labels = [label for label, *_ in results.context["metrics"]]
        assert labels[-2:] == ["Fragment coverage", "Fragment density"]
