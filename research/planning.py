"""Power before launch: the simulated power of the primary (comparison-level) test for an
expected effect, K annotators per comparison and a number of comparisons, and the number of
comparisons that reaches 80%. Shared by the batch page, its warning and `manage.py power`.

The expected effect is the judgment shares (B better, equal, A better) and the correlation of
verdicts within a comparison, entered or taken from a finished pilot batch."""

from __future__ import annotations

import math
from dataclasses import dataclass

from evaluation.models import Batch

from . import analysis, statistics

TARGET = 0.8
DEFAULT_RHO = 0.5  # between the 0.34-0.89 seen on real labels; said wherever it is used
N_SIM = 2000
MAX_COMPARISONS = 1_000_000


class PlanError(ValueError):
    """Input a plan cannot use, with the reason in words."""


@dataclass(frozen=True)
class PowerPlan:
    shares: tuple[float, float, float]  # (B better, equal, A better)
    k: int
    comparisons: int
    rho: float
    source: str  # "entered", or the pilot batch the shares and rho came from
    power: statistics.Power
    needed: statistics.PowerSearch

    @property
    def underpowered(self) -> bool:
        return self.power.power < TARGET


def check_inputs(shares, k: int, comparisons: int, rho: float) -> tuple[float, float, float]:
    """The inputs as a plan needs them, or PlanError saying what is wrong."""
    if len(shares) != 3 or any(s is None or not math.isfinite(s) for s in shares):
        raise PlanError("give the three expected shares: B better, equal, A better")
    if min(shares) < 0 or max(shares) > 1:
        raise PlanError("each expected share is between 0 and 1")
    if abs(sum(shares) - 1) > 1e-6:
        raise PlanError(f"the expected shares must sum to 1 (they sum to {sum(shares):g})")
    if not 1 <= k <= 50:
        raise PlanError("K (annotators per comparison) is between 1 and 50")
    if not 1 <= comparisons <= MAX_COMPARISONS:
        raise PlanError(f"the number of comparisons is between 1 and {MAX_COMPARISONS:,}")
    if rho is None or not 0 <= rho <= 1:
        raise PlanError("the within-comparison correlation is between 0 and 1")
    return tuple(float(s) for s in shares)


def plan(
    shares,
    k: int,
    comparisons: int,
    rho: float,
    *,
    source: str = "entered",
    seed: int = statistics.SEED,
) -> PowerPlan:
    shares = check_inputs(shares, k, comparisons, rho)
    power = statistics.simulate_power(shares, k, comparisons, rho, n_sim=N_SIM, seed=seed)
    needed = statistics.comparisons_for_power(
        shares, k, rho, target=TARGET, n_sim=N_SIM, seed=seed, max_comparisons=MAX_COMPARISONS
    )
    return PowerPlan(shares, k, comparisons, float(rho), source, power, needed)


def pilot_of(batch: Batch, criterion: str = "factual") -> statistics.Pilot:
    """Shares, within-comparison correlation and mean K of a finished (closed) batch's
    judgments on one criterion; PlanError when it cannot serve as a pilot."""
    if batch.status != Batch.Status.CLOSED:
        raise PlanError(f"the pilot batch {batch.name!r} is not finished (closed)")
    if criterion not in analysis.CRITERIA:
        raise PlanError(f"no criterion {criterion!r}; one of {', '.join(analysis.CRITERIA)}")
    data = analysis.load_judgments([batch.pk])
    mask = data.criterion == analysis.CRITERIA.index(criterion)
    pilot = statistics.pilot_estimates(data.comparison[mask], data.verdict[mask])
    if pilot.judgments == 0:
        raise PlanError(f"the pilot batch {batch.name!r} has no submitted judgments")
    if pilot.rho is None:
        raise PlanError(f"the pilot batch {batch.name!r} gives no correlation: {pilot.reason}")
    return pilot


def pilot_rho(pilot: statistics.Pilot) -> float:
    """A negative ICC (less alike than chance) is planned as 0: no clustering."""
    return min(1.0, max(0.0, pilot.rho))


def planned_effect(batch: Batch) -> tuple[float, float, float] | None:
    shares = (batch.planned_b_better, batch.planned_equal, batch.planned_a_better)
    return None if None in shares else shares


def batch_plan(batch: Batch) -> PowerPlan | None:
    """The plan for the batch's stated effect at its K and comparisons; None when no effect
    is stated or the batch has no comparisons."""
    shares = planned_effect(batch)
    comparisons = batch.comparisons.filter(is_check=False).count()
    if shares is None or comparisons == 0:
        return None
    rho = DEFAULT_RHO if batch.planned_rho is None else batch.planned_rho
    return plan(shares, batch.annotators_per_item, comparisons, rho, source="the batch settings")


def underpowered_warning(batch: Batch) -> PowerPlan | None:
    """The plan of an OPEN batch whose simulated power is under 80%, else None."""
    if batch.status != Batch.Status.OPEN:
        return None
    found = batch_plan(batch)
    return found if found is not None and found.underpowered else None
