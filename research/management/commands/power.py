from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from evaluation.models import BatchNotFound, find_batch
from research import planning
from research.statistics import SEED


def describe(plan: planning.PowerPlan) -> list[str]:
    """The plan in the words the batch page uses."""
    b, e, a = plan.shares
    needed = plan.needed
    lines = [
        f"expected shares ({plan.source}): B better {b:.1%}, equal {e:.1%}, A better {a:.1%}",
        f"K = {plan.k} annotators per comparison, within-comparison correlation rho = "
        f"{plan.rho:.2f}",
        f"simulated power of the primary test (comparison-level sign-flip test, alpha = "
        f"{plan.power.alpha}) at {plan.comparisons:,} comparisons: {plan.power.power:.1%} "
        f"({plan.power.n_sim:,} simulated studies, seed {plan.power.seed})",
    ]
    if needed.comparisons is None:
        lines.append(
            f"comparisons needed for {needed.target:.0%} power: none found: {needed.reason}"
        )
    else:
        lines.append(
            f"comparisons needed for {needed.target:.0%} power: {needed.comparisons:,} "
            f"(simulated power {needed.power:.1%}; closed-form estimate {needed.formula_hint:,})"
        )
    return lines


class Command(BaseCommand):
    help = (
        "Simulated power of the primary (comparison-level) test for expected better/equal/worse "
        "shares, or those of a finished pilot batch, and the comparisons needed for 80%."
    )

    def add_arguments(self, parser):
        parser.add_argument("--better", type=float, help="Expected share of B better (0-1).")
        parser.add_argument("--equal", type=float, help="Expected share of equal (0-1).")
        parser.add_argument("--worse", type=float, help="Expected share of B worse (0-1).")
        parser.add_argument("--pilot", help="A finished batch (name or id) to take them from.")
        parser.add_argument("--criterion", default="factual", help="The pilot's criterion.")
        parser.add_argument("--k", type=int, help="Annotators per comparison.")
        parser.add_argument("--comparisons", type=int, required=True)
        parser.add_argument(
            "--rho",
            type=float,
            help=f"Within-comparison correlation (default: pilot's, or {planning.DEFAULT_RHO}).",
        )
        parser.add_argument("--seed", type=int, default=SEED)

    def handle(self, *args, **opts):
        shares = (opts["better"], opts["equal"], opts["worse"])
        rho, k, source = opts["rho"], opts["k"], "entered"
        if opts["pilot"]:
            if any(s is not None for s in shares):
                raise CommandError("give either --pilot or --better/--equal/--worse, not both")
            try:
                batch = find_batch(opts["pilot"])
                pilot = planning.pilot_of(batch, opts["criterion"])
            except (BatchNotFound, planning.PlanError) as e:
                raise CommandError(str(e)) from e
            shares, source = pilot.shares, f"pilot batch {batch.name!r}, {opts['criterion']}"
            rho = planning.pilot_rho(pilot) if rho is None else rho
            k = round(pilot.k) if k is None else k
        elif None in shares:
            raise CommandError("give --better, --equal and --worse, or --pilot BATCH")
        if k is None:
            raise CommandError("give --k (annotators per comparison)")
        rho = planning.DEFAULT_RHO if rho is None else rho
        try:
            plan = planning.plan(
                shares, k, opts["comparisons"], rho, source=source, seed=opts["seed"]
            )
        except planning.PlanError as e:
            raise CommandError(str(e)) from e
        for line in describe(plan):
            self.stdout.write(line)
