"""The results pages and downloads, as a researcher uses them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse

from evaluation import assignments as engine
from evaluation import checks
from evaluation.models import AuditEvent, Batch
from tests.conftest import make_user

B_WINS = {"factual": "B", "informative": "equal", "grammatical": "A"}


def shown_for(item, verdicts: dict[str, str]) -> dict[str, str]:
    """What the annotator clicks, given the system-terms verdict and the screen order."""
    screen = {}
    for criterion, verdict in verdicts.items():
        if verdict == "equal":
            screen[criterion] = "equal"
        else:
            screen[criterion] = "left" if verdict == item.left_system else "right"
    return screen


@pytest.fixture
def judged(batch):
    """Three annotators judge all 4 comparisons: B better on factual, equal, A on grammar."""
    batch.status = Batch.Status.OPEN
    batch.save()
    for i in range(3):
        user = make_user(f"j{i}", "annotator")
        while (item := engine.lease_next(user, batch)) is not None:
            engine.submit_judgments(user, item.pk, shown_for(item, B_WINS), active_seconds=10.0)
    return batch


@pytest.mark.django_db
class TestBatchResults:
    def test_it_shows_the_table_in_system_terms(self, client, researcher, judged):
        client.force_login(researcher)
        response = client.get(reverse("batch_results", args=[judged.pk]))
        assert response.status_code == 200
        rows = {r["r"].criterion: r for r in response.context["rows"]}
        assert (rows["factual"].get("r").b_better, rows["factual"]["r"].judgments) == (12, 12)
        assert rows["informative"]["r"].equal_share == 1.0
        assert rows["grammatical"]["r"].a_better == 12
        assert rows["factual"]["sign"].p_value == pytest.approx(2 * 0.5**12)
        content = response.content.decode()
        assert "100.0%" in content and "<svg" in content
        assert "undefined: " in content  # alpha has no variation to measure

    def test_it_can_exclude_flagged_annotators_and_says_how_many(self, client, researcher, batch):
        batch.status = Batch.Status.OPEN
        batch.check_every = 2
        batch.save()
        checks.create_attention_checks(batch, 2)
        sloppy = make_user("sloppy", "annotator")
        real = 0
        while (item := engine.lease_next(sloppy, batch)) is not None:
            # Always says A is more factual: right on real items here, wrong on the checks'
            # copies (the check's A is the unchanged summary, so give B instead).
            verdicts = {**B_WINS, "factual": "B" if item.comparison.is_check else "A"}
            engine.submit_judgments(sloppy, item.pk, shown_for(item, verdicts))
            real += not item.comparison.is_check
        assert real == 4
        client.force_login(researcher)
        url = reverse("batch_results", args=[batch.pk])
        plain = client.get(url)
        assert plain.context["flagged"] == 1
        assert b"Exclude the 1 annotator flagged" in plain.content
        factual = {r["r"].criterion: r["r"] for r in plain.context["rows"]}["factual"]
        assert factual.judgments == 4  # checks never count
        excluded = client.get(url + "?exclude_flagged=1")
        assert excluded.context["excluded_judgments"] == 4 * 3
        assert b"12 judgments excluded" in excluded.content
        rows = {r["r"].criterion: r["r"] for r in excluded.context["rows"]}
        assert rows["factual"].judgments == 0

    def test_quals_says_not_configured_instead_of_numbers(
        self, client, researcher, judged, settings
    ):
        settings.QUALS_MODEL = ""
        client.force_login(researcher)
        response = client.get(reverse("batch_results", args=[judged.pk]))
        metrics = {label: (m, why) for label, m, why in response.context["metrics"]}
        assert metrics["QUALS"] == (None, "QUALS is not configured: set QUALS_MODEL to a local "
                                    "checkpoint directory")  # fmt: skip
        assert metrics["ROUGE-L F"][0] is not None and metrics["ROUGE-L F"][1] == ""
        assert metrics["Fragment coverage"][0] is not None
        assert b"Not configured: QUALS is not configured: set QUALS_MODEL" in response.content
        export = client.get(reverse("batch_export", args=[judged.pk, "scores", "csv"]))
        lines = b"".join(export.streaming_content).decode().splitlines()
        quals_rows = [line for line in lines if ",quals," in line]
        assert quals_rows and all(",not_configured," in line for line in quals_rows)

    def test_the_chart_downloads_as_valid_svg(self, client, researcher, judged):
        client.force_login(researcher)
        response = client.get(reverse("batch_chart", args=[judged.pk]))
        assert response["Content-Type"] == "image/svg+xml"
        assert "attachment" in response["Content-Disposition"]
        ET.fromstring(response.content)

    def test_exports_stream_and_are_audited(self, client, researcher, judged):
        client.force_login(researcher)
        response = client.get(reverse("batch_export", args=[judged.pk, "judgments", "csv"]))
        assert response.streaming
        lines = b"".join(response.streaming_content).decode().splitlines()
        assert len(lines) == 1 + 4 * 3 * 3
        assert AuditEvent.objects.get(action="export").target == "judgments.csv"
        assert (
            client.get(reverse("batch_export", args=[judged.pk, "secrets", "csv"])).status_code
            == 404
        )

    def test_the_overview_groups_by_dataset(self, client, researcher, judged):
        client.force_login(researcher)
        response = client.get(reverse("results_overview"))
        assert response.status_code == 200
        assert [d["name"] for d in response.context["datasets"]] == ["XSUM"]
        assert b"XSUM" in response.content
