"""Power before launch (issue 13, point 3): the plan, the pilot, `manage.py power`, the batch
page's calculator, the intended effect in the settings and the underpowered warning."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.urls import reverse

from evaluation.models import Batch, Role
from research import planning
from tests.conftest import make_user
from tests.research.conftest import settings_form
from tests.research.test_analysis import judge
from tests.research.test_results_uncertainty import by_comparison, loop_icc, normal_power

SHARES = (0.4, 0.3, 0.3)


class TestPlan:
    @pytest.mark.parametrize(("k", "n", "rho"), [(3, 200, 0.5), (5, 120, 0.2), (1, 400, 0.0)])
    def test_its_power_matches_the_analytic_normal_approximation(self, k, n, rho):
        found = planning.plan(SHARES, k, n, rho)
        assert found.power.power == pytest.approx(normal_power(SHARES, k, rho, n), abs=0.035)
        needed = found.needed.comparisons
        assert normal_power(SHARES, k, rho, needed) == pytest.approx(0.8, abs=0.03)
        assert found.needed.power >= 0.8 and found.underpowered == (found.power.power < 0.8)

    def test_clustering_costs_comparisons(self):
        independent = planning.plan(SHARES, 3, 200, 0.0).needed.comparisons
        clustered = planning.plan(SHARES, 3, 200, 0.8).needed.comparisons
        assert clustered > 1.5 * independent

    @pytest.mark.parametrize(
        ("shares", "k", "n", "rho", "message"),
        [
            ((0.5, 0.3, 0.3), 3, 100, 0.5, "sum to 1"),
            ((-0.1, 0.6, 0.5), 3, 100, 0.5, "between 0 and 1"),
            (SHARES, 0, 100, 0.5, r"K \(annotators per comparison\)"),
            (SHARES, 3, 0, 0.5, "number of comparisons"),
            (SHARES, 3, 100, 1.5, "correlation is between 0 and 1"),
            ((0.4, None, 0.3), 3, 100, 0.5, "three expected shares"),
        ],
    )
    def test_it_refuses_bad_input_in_words(self, shares, k, n, rho, message):
        with pytest.raises(planning.PlanError, match=message):
            planning.plan(shares, k, n, rho)


@pytest.fixture
def pilot(batch):
    """A finished pilot: 3 annotators on 4 comparisons, factual verdicts varied."""
    users = [make_user(f"p{i}", Role.ANNOTATOR) for i in range(3)]
    pattern = [["B", "B", "A"], ["B", "B", "B"], ["equal", "A", "A"], ["B", "equal", "B"]]
    for comparison, verdicts in zip(batch.comparisons.order_by("id"), pattern, strict=True):
        for user, v in zip(users, verdicts, strict=True):
            judge(comparison, user, {"factual": v, "informative": "B", "grammatical": "B"})
    batch.status = Batch.Status.CLOSED
    batch.save()
    return batch, pattern


def pilot_loop(pattern):
    codes = {"A": -1, "equal": 0, "B": 1}
    flat = [codes[v] for row in pattern for v in row]
    shares = tuple(flat.count(c) / len(flat) for c in (1, 0, -1))
    comparison = [i for i, row in enumerate(pattern) for _ in row]
    import numpy as np

    icc = loop_icc(by_comparison(np.array(comparison), np.array(flat)))
    return shares, icc


@pytest.mark.django_db
class TestPilot:
    def test_it_takes_the_shares_and_correlation_of_a_finished_batch(self, pilot):
        batch, pattern = pilot
        shares, icc = pilot_loop(pattern)
        found = planning.pilot_of(batch)
        assert found.shares == pytest.approx(shares)
        assert found.rho == pytest.approx(icc) and found.k == 3

    def test_it_refuses_a_batch_that_is_not_finished(self, batch):
        with pytest.raises(planning.PlanError, match="not finished"):
            planning.pilot_of(batch)


def run_power(*args) -> str:
    out = io.StringIO()
    call_command("power", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
class TestPowerCommand:
    def test_it_prints_the_power_and_the_comparisons_needed(self):
        out = run_power("--better", "0.4", "--equal", "0.3", "--worse", "0.3", "--k", "3",
                        "--comparisons", "200", "--rho", "0.5")  # fmt: skip
        expected = planning.plan(SHARES, 3, 200, 0.5)
        assert f"at 200 comparisons: {expected.power.power:.1%}" in out
        assert f"80% power: {expected.needed.comparisons:,} " in out
        assert "B better 40.0%, equal 30.0%, A better 30.0%" in out and "rho = 0.50" in out

    def test_it_plans_from_a_pilot(self, pilot):
        batch, pattern = pilot
        shares, icc = pilot_loop(pattern)
        out = run_power("--pilot", batch.name, "--comparisons", "300")
        expected = planning.plan(shares, 3, 300, icc)
        assert f"pilot batch {batch.name!r}" in out and f"rho = {icc:.2f}" in out
        assert f"at 300 comparisons: {expected.power.power:.1%}" in out

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--better", "0.5", "--equal", "0.3", "--worse", "0.3", "--k", "3"], "sum to 1"),
            (["--better", "0.5", "--k", "3"], "give --better, --equal and --worse"),
            (["--better", "0.4", "--equal", "0.3", "--worse", "0.3"], "give --k"),
            (["--pilot", "no-such-batch"], "no-such-batch"),
            (["--better", "0.4", "--equal", "0.3", "--worse", "0.3", "--k", "3", "--rho", "2"],
             "correlation"),
        ],
    )  # fmt: skip
    def test_it_refuses_bad_input(self, args, message):
        with pytest.raises(CommandError, match=message):
            run_power(*args, "--comparisons", "100")

    def test_it_refuses_a_pilot_and_shares_together(self, pilot):
        with pytest.raises(CommandError, match="not both"):
            run_power("--pilot", pilot[0].name, "--better", "0.4", "--comparisons", "10")


@pytest.mark.django_db
class TestBatchPagePower:
    def test_the_calculator_shows_the_simulated_power(self, admin_client, batch):
        url = reverse("batch_manage", args=[batch.pk])
        query = {"plan": "1", "better": 0.4, "equal": 0.3, "worse": 0.3, "k": 3,
                 "comparisons": 200, "rho": 0.5}  # fmt: skip
        response = admin_client.get(url, query)
        assert response.status_code == 200
        expected = planning.plan(SHARES, 3, 200, 0.5)
        assert response.context["power"].power.power == expected.power.power
        content = response.content.decode()
        assert f"<strong>{100 * expected.power.power:.1f}%</strong>" in content
        assert f"<strong>{expected.needed.comparisons}</strong>" in content

    def test_the_calculator_takes_a_pilot(self, admin_client, pilot):
        batch, pattern = pilot
        shares, icc = pilot_loop(pattern)
        url = reverse("batch_manage", args=[batch.pk])
        response = admin_client.get(url, {"plan": "1", "pilot": batch.pk, "k": 3,
                                          "comparisons": 100})  # fmt: skip
        found = response.context["power"]
        assert found.shares == pytest.approx(shares) and found.rho == pytest.approx(icc)

    def test_the_calculator_explains_bad_input(self, admin_client, batch):
        url = reverse("batch_manage", args=[batch.pk])
        response = admin_client.get(url, {"plan": "1", "better": 0.5, "equal": 0.3,
                                          "worse": 0.3, "k": 3, "comparisons": 10})  # fmt: skip
        assert response.context["power"] is None
        assert b"must sum to 1 (they sum to 1.1)" in response.content

    def test_it_stores_the_intended_effect(self, admin_client, batch):
        url = reverse("batch_manage", args=[batch.pk])
        form = settings_form(batch, planned_b_better=0.5, planned_equal=0.2,
                             planned_a_better=0.3, planned_rho=0.4)  # fmt: skip
        assert admin_client.post(url, form).status_code == 302
        batch.refresh_from_db()
        assert planning.planned_effect(batch) == (0.5, 0.2, 0.3) and batch.planned_rho == 0.4

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"planned_b_better": 0.5, "planned_equal": 0.2}, b"all three expected shares"),
            ({"planned_b_better": 0.5, "planned_equal": 0.4, "planned_a_better": 0.3},
             b"must sum to 1"),
            ({"planned_rho": 1.5}, b"between 0 and 1"),
        ],
    )  # fmt: skip
    def test_it_refuses_a_bad_intended_effect_and_changes_nothing(
        self, admin_client, batch, fields, message
    ):
        url = reverse("batch_manage", args=[batch.pk])
        response = admin_client.post(url, settings_form(batch, lease_minutes=45, **fields))
        assert response.status_code == 422 and message in response.content
        batch.refresh_from_db()
        assert planning.planned_effect(batch) is None and batch.planned_rho is None
        assert batch.lease_minutes == 30

    def test_the_database_refuses_shares_that_do_not_sum_to_one(self, batch):
        for shares in ((0.5, 0.4, 0.3), (0.5, None, 0.5), (1.2, -0.1, -0.1)):
            batch.planned_b_better, batch.planned_equal, batch.planned_a_better = shares
            with pytest.raises(IntegrityError), transaction.atomic():
                batch.save()
        batch.planned_b_better, batch.planned_equal, batch.planned_a_better = (0.3, 0.3, 0.4)
        batch.planned_rho = -0.2
        with pytest.raises(IntegrityError), transaction.atomic():
            batch.save()

    def test_an_open_underpowered_batch_is_warned_about(self, admin_client, batch):
        Batch.objects.filter(pk=batch.pk).update(
            status="open", planned_b_better=0.4, planned_equal=0.3, planned_a_better=0.3
        )
        response = admin_client.get(reverse("batch_manage", args=[batch.pk]))
        warning = response.context["power_warning"]
        expected = planning.plan(SHARES, 3, 4, planning.DEFAULT_RHO)
        assert warning.power.power == expected.power.power < 0.8
        assert b'id="power-warning"' in response.content and b"assumed" in response.content

    def test_no_warning_when_powered_closed_or_unstated(self, admin_client, batch):
        url = reverse("batch_manage", args=[batch.pk])
        Batch.objects.filter(pk=batch.pk).update(status="open")
        assert admin_client.get(url).context["power_warning"] is None  # no intended effect
        Batch.objects.filter(pk=batch.pk).update(
            planned_b_better=1.0, planned_equal=0.0, planned_a_better=0.0, planned_rho=0.0
        )
        assert admin_client.get(url).context["power_warning"] is None  # 4 x 3 unanimous B
        Batch.objects.filter(pk=batch.pk).update(
            status="closed", planned_b_better=0.4, planned_equal=0.3, planned_a_better=0.3
        )
        assert admin_client.get(url).context["power_warning"] is None
