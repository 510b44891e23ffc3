"""Participants' pages (the link, then one page per phase) and the admins' crowd pages."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evaluation.criteria import CRITERIA, SHOWN_CHOICES
from evaluation.models import AuditEvent, Batch, Role, Shown, audit, user_role
from evaluation.roles import role_required
from research.exports import CONTENT_TYPES, FORMATS

from . import services
from .context_processors import SESSION_KEY
from .exports import export_participants
from .forms import CrowdStudyForm, PayForm, TrainingUploadForm
from .models import LINK_PARAMETERS, CrowdStudy, Participant, Phase, Platform, TrainingItem
from .quality import participant_rows, pay_context

# --- participants -------------------------------------------------------------------------


@require_GET
def join(request: HttpRequest, study_id: int, platform: str) -> HttpResponse:
    """The platform link: checks the study's key, admits or finds the participant, logs in."""
    study = CrowdStudy.objects.select_related("batch").filter(pk=study_id).first()
    if study is None or not services.key_matches(study, request.GET.get("key", "")):
        raise Http404("No such study.")
    try:
        participant = services.join(study, platform, request.GET)
    except services.Preview:
        message = "Accept the HIT to start: this is its preview."
        return render(request, "crowd/closed.html", {"message": message, "preview": True})
    except services.BadLink as e:
        return render(request, "crowd/closed.html", {"message": str(e)}, status=400)
    except services.StudyClosed as e:
        return render(request, "crowd/closed.html", {"message": str(e)})
    login(request, participant.user, backend="django.contrib.auth.backends.ModelBackend")
    if participant.phase in services.TAKING_PART:
        request.session[SESSION_KEY] = study.pk
    return redirect(services.phase_url(participant))


def _participant(request: HttpRequest, study_id: int) -> Participant:
    participant = (
        Participant.objects.select_related("study__batch")
        .filter(user=request.user, study_id=study_id)
        .first()
    )
    if participant is None:
        raise PermissionDenied
    return participant


def _phase_page(request: HttpRequest, study_id: int, *phases: str):
    """(participant, None) in one of these phases; else (participant, redirect to theirs)."""
    participant = _participant(request, study_id)
    if participant.phase not in phases:
        return participant, redirect(services.phase_url(participant))
    return participant, None


@require_http_methods(["GET", "POST"])
@role_required(Role.ANNOTATOR)
def consent(request: HttpRequest, study_id: int) -> HttpResponse:
    participant, elsewhere = _phase_page(request, study_id, Phase.CONSENT)
    if elsewhere:
        return elsewhere
    if request.method == "POST":
        answer = request.POST.get("consent")
        if answer not in ("yes", "no"):
            context = {"study": participant.study, "error": "Please accept or decline."}
            return render(request, "crowd/consent.html", context, status=400)
        participant = services.record_consent(participant, answer == "yes")
        return redirect(services.phase_url(participant))
    return render(request, "crowd/consent.html", {"study": participant.study})


@require_http_methods(["GET", "POST"])
@role_required(Role.ANNOTATOR)
def guidelines(request: HttpRequest, study_id: int) -> HttpResponse:
    participant, elsewhere = _phase_page(request, study_id, Phase.GUIDELINES)
    if elsewhere:
        return elsewhere
    if request.method == "POST":
        participant = services.finish_guidelines(participant)
        return redirect(services.phase_url(participant))
    return render(request, "crowd/guidelines.html", {"study": participant.study})


def _training_answers(request: HttpRequest, items: list[TrainingItem]) -> dict:
    return {
        item.pk: {c.key: request.POST.get(f"t{item.pk}-{c.key}", "") for c in CRITERIA}
        for item in items
    }


def _training_items(items: list[TrainingItem], answers: dict, correct: dict | None) -> list[dict]:
    labels = dict(Shown.choices)
    rows = []
    for item in items:
        criteria = [
            {
                "name": f"t{item.pk}-{c.key}",
                "label": c.label,
                "choices": SHOWN_CHOICES,
                "chosen": answers.get(item.pk, {}).get(c.key),
                "expected": labels.get(item.expected.get(c.key), ""),
                "ok": (correct or {}).get(item.pk, {}).get(c.key),
            }
            for c in CRITERIA
        ]
        rows.append({"item": item, "criteria": criteria})
    return rows


@require_http_methods(["GET", "POST"])
@role_required(Role.ANNOTATOR)
def training(request: HttpRequest, study_id: int) -> HttpResponse:
    participant, elsewhere = _phase_page(request, study_id, Phase.TRAINING)
    if elsewhere:
        return elsewhere
    study = participant.study
    items = list(study.training.all())
    context = {"study": study, "attempt": participant.training_attempts + 1}
    if request.method == "POST":
        answers = _training_answers(request, items)
        try:
            result = services.grade_training(participant, answers)
        except services.BadLink:  # a second submission of an attempt already graded
            return redirect(services.phase_url(Participant.objects.get(pk=participant.pk)))
        context |= {
            "result": result,
            "items": _training_items(items, answers, result.correct),
            "percent": round(result.score * 100),
            "pass_percent": round(study.training_pass_mark * 100),
            "next_url": services.phase_url(Participant.objects.get(pk=participant.pk)),
        }
        return render(request, "crowd/training_result.html", context)
    context["items"] = _training_items(items, {}, None)
    context["pass_percent"] = round(study.training_pass_mark * 100)
    return render(request, "crowd/training.html", context)


@require_http_methods(["GET", "POST"])
@role_required(Role.ANNOTATOR)
def survey(request: HttpRequest, study_id: int) -> HttpResponse:
    participant, elsewhere = _phase_page(request, study_id, Phase.SURVEY)
    if elsewhere:
        return elsewhere
    questions = participant.study.questions
    if request.method == "POST":
        answers = {q: request.POST.get(f"q{i}", "") for i, q in enumerate(questions)}
        try:
            participant = services.submit_survey(participant, answers)
        except services.BadLink as e:
            fields = [(f"q{i}", q, answers[q]) for i, q in enumerate(questions)]
            context = {"study": participant.study, "fields": fields, "error": str(e)}
            return render(request, "crowd/survey.html", context, status=400)
        return redirect(services.phase_url(participant))
    fields = [(f"q{i}", q, "") for i, q in enumerate(questions)]
    return render(request, "crowd/survey.html", {"study": participant.study, "fields": fields})


@require_GET
@role_required(Role.ANNOTATOR)
def complete(request: HttpRequest, study_id: int) -> HttpResponse:
    participant, elsewhere = _phase_page(request, study_id, Phase.COMPLETE)
    if elsewhere:
        return elsewhere
    request.session.pop(SESSION_KEY, None)
    study = participant.study
    context = {
        "study": study,
        "code": study.completion_code,
        "return_url": study.return_url(participant.platform, study.completion_code),
    }
    return render(request, "crowd/complete.html", context)


@require_GET
@role_required(Role.ANNOTATOR)
def ended(request: HttpRequest, study_id: int) -> HttpResponse:
    """Screened out (declined consent, failed training) or returned: the screen-out code."""
    participant, elsewhere = _phase_page(request, study_id, Phase.SCREENED_OUT, Phase.RETURNED)
    if elsewhere:
        return elsewhere
    request.session.pop(SESSION_KEY, None)
    study = participant.study
    screened = participant.phase == Phase.SCREENED_OUT
    context = {
        "study": study,
        "screened": screened,
        "code": study.screenout_code if screened else "",
        "return_url": study.return_url(participant.platform, study.screenout_code)
        if screened
        else "",
    }
    return render(request, "crowd/ended.html", context)


@require_http_methods(["GET", "POST"])
@role_required(Role.ANNOTATOR)
def withdraw(request: HttpRequest, study_id: int) -> HttpResponse:
    """Leaving the study: a page that says what it means, then the POST that does it."""
    participant = _participant(request, study_id)
    if participant.phase not in services.TAKING_PART:
        request.session.pop(SESSION_KEY, None)
        return redirect(services.phase_url(participant))
    if request.method == "GET":
        context = {"study": participant.study, "back": services.phase_url(participant)}
        return render(request, "crowd/withdraw.html", context)
    participant = services.withdraw(participant)
    request.session.pop(SESSION_KEY, None)
    return redirect(services.phase_url(participant))


# --- admins -------------------------------------------------------------------------------


def _batch(batch_id: int) -> Batch:
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        raise Http404("No such batch.")
    return batch


def _links(request: HttpRequest, study: CrowdStudy) -> list[tuple[str, str]]:
    """One link per platform. Prolific fills its {{%...%}} placeholders; Mechanical Turk's
    ExternalQuestion appends workerId, assignmentId and hitId itself; the generic link's
    PARTICIPANT_ID is for the researcher to replace."""
    base = request.build_absolute_uri(f"/crowd/{study.pk}/join/")
    placeholders = {
        Platform.PROLIFIC: "&PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}"
        "&SESSION_ID={{%SESSION_ID%}}",
        Platform.MTURK: "",
        Platform.GENERIC: "&participant=PARTICIPANT_ID",
    }
    return [
        (Platform(p).label, f"{base}{p}/?key={study.token}{placeholders[p]}")
        for p in LINK_PARAMETERS
    ]


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def study_manage(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _batch(batch_id)
    study, _ = CrowdStudy.objects.get_or_create(batch=batch)
    initial = {"items_per_annotator": batch.items_per_annotator}
    form = CrowdStudyForm(request.POST or None, instance=study, initial=initial)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            Batch.objects.filter(pk=batch.pk).update(
                items_per_annotator=form.cleaned_data["items_per_annotator"]
            )
            audit(
                request.user, AuditEvent.Action.BATCH_CHANGE, batch, "crowd study",
                changed=form.changed_data,
            )  # fmt: skip
        return redirect("crowd_study", batch.pk)
    status = REFUSED if request.method == "POST" else 200
    return _study_page(request, batch, study, form, TrainingUploadForm(), status)


# A refused form: the page again, the reasons beside their fields (as the dashboard does).
REFUSED = 422


def _study_page(request, batch, study, form, training_form, status: int) -> HttpResponse:
    batch.refresh_from_db()
    context = {
        "batch": batch,
        "study": study,
        "form": form,
        "training_form": training_form,
        "links": _links(request, study),
        "capacity": services.capacity(study),
        "phases": [Phase(p).label for p in services.phases_of(study)],
    }
    return render(request, "crowd/study_manage.html", context, status=status)


@require_POST
@role_required(Role.ADMIN)
def training_upload(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _batch(batch_id)
    study, _ = CrowdStudy.objects.get_or_create(batch=batch)
    form = TrainingUploadForm(request.POST)
    if not form.is_valid():
        initial = {"items_per_annotator": batch.items_per_annotator}
        study_form = CrowdStudyForm(instance=study, initial=initial)
        return _study_page(request, batch, study, study_form, form, REFUSED)
    rows = form.cleaned_data["items"]
    with transaction.atomic():
        study.training.all().delete()
        TrainingItem.objects.bulk_create(
            TrainingItem(
                study=study,
                position=i,
                source=r["source"],
                left=r["left"],
                right=r["right"],
                expected=r["expected"],
                explanation=r["explanation"],
            )
            for i, r in enumerate(rows)
        )
        audit(request.user, AuditEvent.Action.BATCH_CHANGE, batch, "crowd training", n=len(rows))
    return redirect("crowd_study", batch.pk)


@require_GET
@role_required(Role.ADMIN)
def participants(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _batch(batch_id)
    study = CrowdStudy.objects.filter(batch=batch).first()
    if study is None:
        return redirect("crowd_study", batch.pk)
    rows = participant_rows(study)
    form = PayForm(request.GET or None)
    context = {
        "batch": batch,
        "study": study,
        "rows": rows,
        "phases": study.participants.values("phase").annotate(n=Count("id")).order_by("phase"),
        "pay_form": form,
        **pay_context(study, rows, form),
        "currency": settings.CROWD_PAY_CURRENCY,
    }
    return render(request, "crowd/participants.html", context)


@require_POST
@role_required(Role.ADMIN)
def flag(request: HttpRequest, batch_id: int, participant_id: int) -> HttpResponse:
    """Flag a participant for the researcher to review on the platform: never a rejection."""
    participant = Participant.objects.filter(pk=participant_id, study__batch_id=batch_id).first()
    if participant is None:
        raise Http404("No such participant.")
    participant.flagged = request.POST.get("flagged") == "1"
    participant.flag_note = request.POST.get("note", "").strip()[:500]
    participant.save(update_fields=["flagged", "flag_note", "updated_at"])
    audit(
        request.user, AuditEvent.Action.ACCOUNT, participant.study.batch,
        f"participant {participant.pk} {'flagged' if participant.flagged else 'unflagged'}",
    )  # fmt: skip
    return redirect("crowd_participants", batch_id)


@require_GET
@role_required(Role.ADMIN, Role.RESEARCHER)
def participants_export(request: HttpRequest, batch_id: int, fmt: str) -> HttpResponse:
    """Platform ids for admins (to approve and pay); pseudonyms for researchers."""
    batch = _batch(batch_id)
    if fmt not in FORMATS:
        raise Http404("No such format.")
    study = CrowdStudy.objects.filter(batch=batch).first()
    if study is None:
        raise Http404("This batch has no crowd study.")
    with_ids = user_role(request.user) == Role.ADMIN
    audit(request.user, AuditEvent.Action.EXPORT, batch, "participants", platform_ids=with_ids)
    response = StreamingHttpResponse(
        export_participants(study, fmt, platform_ids=with_ids), content_type=CONTENT_TYPES[fmt]
    )
    response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}-participants.{fmt}"'
    return response
