"""Workflows shared by views, management commands and tasks."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import assignments as engine
from .importing import BatchFileError, ImportSpec, ParsedDocument, Problem, parse_batch_file
from .models import (
    Assignment,
    AuditEvent,
    Batch,
    Comparison,
    Document,
    Role,
    Summary,
    audit,
    system_named,
)
from .signals import batch_imported

MAX_ANNOTATORS_PER_ITEM = 50


class InvalidUsernames(Exception):
    pass


@dataclass
class BatchSettings:
    name: str
    dataset: str
    system_a: str
    system_b: str
    annotators_per_item: int = 3
    guidelines: str = ""


def check_batch_settings(s: BatchSettings) -> list[Problem]:
    problems = []
    if not s.name.strip():
        problems.append(Problem(None, "the batch needs a name"))
    elif len(s.name) > 200:
        problems.append(Problem(None, "the batch name is longer than 200 characters"))
    elif Batch.objects.filter(name=s.name.strip()).exists():
        problems.append(Problem(None, f"a batch named {s.name.strip()!r} already exists"))
    if not s.dataset.strip():
        problems.append(Problem(None, "the batch needs a dataset label (e.g. XSUM or CNNDM)"))
    if not s.system_a.strip() or not s.system_b.strip():
        problems.append(Problem(None, "name both systems to compare (system A and system B)"))
    elif s.system_a == s.system_b:
        problems.append(Problem(None, f"system A and system B are both {s.system_a!r}"))
    named = system_named(s.guidelines, (s.system_a, s.system_b))
    if named:
        problems.append(Problem(None, f"annotators see the guidelines: they name {named!r}"))
    if not 1 <= s.annotators_per_item <= MAX_ANNOTATORS_PER_ITEM:
        limit = MAX_ANNOTATORS_PER_ITEM
        problems.append(Problem(None, f"annotators per item must be between 1 and {limit}"))
    return problems


def import_batch(
    data: bytes,
    filename: str,
    settings: BatchSettings,
    *,
    fmt: str | None = None,
    frank_dataset: str | None = None,
    created_by: User | None = None,
) -> Batch:
    """Validate the whole file, then write the batch in one transaction; `batch_imported`
    follows the commit (scoring connects to it).

    Raises BatchFileError with every problem found; the database is then unchanged.
    """
    problems = check_batch_settings(settings)
    if problems:
        raise BatchFileError(problems)
    spec = ImportSpec(settings.system_a, settings.system_b, fmt, frank_dataset)
    docs = parse_batch_file(data, filename, spec)
    with transaction.atomic():
        batch = Batch.objects.create(
            name=settings.name.strip(),
            dataset=settings.dataset.strip(),
            system_a=settings.system_a,
            system_b=settings.system_b,
            annotators_per_item=settings.annotators_per_item,
            guidelines=settings.guidelines,
            source_filename=filename[:255],
            created_by=created_by,
        )
        write_documents(batch, docs)
        audit(
            created_by,
            AuditEvent.Action.IMPORT,
            batch,
            filename[:200],
            documents=len(docs),
            system_a=batch.system_a,
            system_b=batch.system_b,
        )
        transaction.on_commit(
            lambda: batch_imported.send(Batch, batch_id=batch.pk, requested_by=created_by)
        )
        transaction.on_commit(refresh_planner_statistics)
    return batch


def refresh_planner_statistics() -> None:
    """Fresh statistics after a bulk insert: without them (before autovacuum runs, or where it
    is off) PostgreSQL picks a nested-loop plan that makes choosing the next comparison ~20x
    slower."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE evaluation_comparison, evaluation_assignment")


def write_documents(batch: Batch, docs: list[ParsedDocument]) -> None:
    documents = Document.objects.bulk_create(
        Document(
            batch=batch,
            external_id=d.external_id,
            source=d.source,
            reference=d.reference,
            meta=d.meta,
        )
        for d in docs
    )
    summaries = Summary.objects.bulk_create(
        Summary(document=doc, system=system, text=text)
        for doc, d in zip(documents, docs, strict=True)
        for system, text in ((batch.system_a, d.summary_a), (batch.system_b, d.summary_b))
    )
    positions = spaced_positions(batch, [doc.external_id for doc in documents])
    Comparison.objects.bulk_create(
        Comparison(
            batch=batch,
            document=doc,
            summary_a=summaries[2 * i],
            summary_b=summaries[2 * i + 1],
            annotations_needed=batch.annotators_per_item,
            position=positions[i],
        )
        for i, doc in enumerate(documents)
    )


def spaced_positions(batch: Batch, keys: list[str]) -> list[int]:
    """Lease positions for these comparisons, in an order drawn from the batch's secret and
    evenly spaced over [0, 2^63): each lease takes the first comparison at or after a random
    start (evaluation.assignments), so a comparison's chance to come next is the gap before
    it; even gaps give every one the same chance."""
    order = sorted(range(len(keys)), key=lambda i: (batch.draw("order", keys[i]), i))
    step = 2**63 // max(len(keys), 1)
    positions = [0] * len(keys)
    for rank, i in enumerate(order):
        positions[i] = rank * step
    return positions


def _valid_username(name: str) -> bool:
    try:
        UnicodeUsernameValidator()(name)
    except ValidationError:
        return False
    return 0 < len(name) <= 150


def generate_password() -> str:
    # Never starting with "-": the accounts CSV would otherwise quote it as a would-be formula.
    password = secrets.token_urlsafe(12)
    while password.startswith("-"):
        password = secrets.token_urlsafe(12)
    return password


def create_annotator_accounts(usernames: list[str]) -> dict[str, str | None]:
    """Create the missing accounts in the annotator group, all or none.

    Returns username -> generated password for new accounts, None for existing ones.
    """
    bad = [name for name in usernames if not _valid_username(name)]
    if bad:
        raise InvalidUsernames(
            f"invalid username(s): {', '.join(map(repr, bad))}; use at most 150 letters, "
            "digits and @ . + - _"
        )
    group, _ = Group.objects.get_or_create(name=Role.ANNOTATOR)
    created: dict[str, str | None] = {}
    with transaction.atomic():
        for username in usernames:
            user = User.objects.filter(username=username).first()
            if user is None:
                password = generate_password()
                user = User.objects.create_user(username=username, password=password)
                user.groups.add(group)
                created[username] = password
            else:
                created[username] = None
    return created


def add_annotators(batch: Batch, usernames: list[str]) -> dict[str, str | None]:
    """Allow these users on the batch, creating missing accounts (see above)."""
    with transaction.atomic():
        created = create_annotator_accounts(usernames)
        batch.annotators.add(*User.objects.filter(username__in=usernames))
    return created


def allowed_annotator_ids(batch: Batch) -> set[int]:
    """Who may judge the batch: its annotators and the members of its annotator groups."""
    allowed = Q(annotation_batches=batch) | Q(groups__annotation_batches=batch)
    return set(User.objects.filter(allowed).values_list("pk", flat=True))


def release_leases(batch: Batch, user_ids: set[int], actor: User | None) -> int:
    """Give back the live leases of annotators no longer allowed on the batch; audited.

    Their leases are ended now and the engine's release_expired gives them back, so that the
    counters move exactly as for any expired lease. Call it inside the change's transaction.
    """
    if not user_ids:
        return 0
    now = timezone.now()
    with transaction.atomic():
        ended = Assignment.objects.filter(
            comparison__batch=batch, annotator__in=user_ids, status=Assignment.Status.LEASED
        ).update(lease_expires_at=now - timedelta(microseconds=1))
        while ended and engine.release_expired(batch, now):
            pass  # it releases at most 500 at a time
        names = sorted(User.objects.filter(pk__in=user_ids).values_list("username", flat=True))
        audit(
            actor,
            AuditEvent.Action.BATCH_CHANGE,
            batch,
            "annotators removed",
            annotators=names,
            leases_ended=ended,
        )
    return ended
