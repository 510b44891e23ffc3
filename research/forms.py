from __future__ import annotations

from django import forms
from django.contrib.auth.models import Group, User
from django.db.models import Max

from evaluation.checks import served_own_document_checks
from evaluation.criteria import CRITERIA
from evaluation.importing import FORMATS
from evaluation.models import MAX_BREAK_REMINDER_MINUTES, PLANNED_SUM_TOLERANCE, TAKEN, Batch, Role
from evaluation.services import MAX_ANNOTATORS_PER_ITEM

MAX_PLANNED_COMPARISONS = 1_000_000


class BatchUploadForm(forms.Form):
    file = forms.FileField(
        help_text="JSONL, CSV or the FRANK seed file; see the README for the formats."
    )
    name = forms.CharField(max_length=200)
    dataset = forms.CharField(max_length=50, help_text="e.g. XSUM or CNNDM")
    system_a = forms.CharField(
        max_length=100, label="System A", help_text="The baseline, e.g. MLE."
    )
    system_b = forms.CharField(
        max_length=100, label="System B", help_text="The system under test, e.g. QUALS."
    )
    annotators_per_item = forms.IntegerField(
        min_value=1, max_value=MAX_ANNOTATORS_PER_ITEM, initial=3, label="Annotators per comparison"
    )
    format = forms.ChoiceField(
        choices=[("", "From the file")] + [(f, f.upper()) for f in FORMATS], required=False
    )
    frank_dataset = forms.ChoiceField(
        choices=[("", "-"), ("cnndm", "CNN/DM"), ("bbc", "XSum (bbc)")],
        required=False,
        label="FRANK dataset",
    )
    guidelines = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False)


class BatchSettingsForm(forms.ModelForm):
    class Meta:
        model = Batch
        fields = [
            "public_title",
            "annotators_per_item",
            "lease_minutes",
            "undo_minutes",
            "guidelines",
            "check_every",
            "check_min_gap",
            "check_threshold",
            "checks_before_flag",
            "annotators",
            "annotator_groups",
            "planned_b_better",
            "planned_equal",
            "planned_a_better",
            "planned_rho",
            "break_reminder_minutes",
            "aid_paragraph_numbers",
            "aid_highlights",
            "aid_word_diff",
        ]
        labels = {
            "aid_paragraph_numbers": "Reading aid: paragraph numbers",
            "aid_highlights": "Reading aid: highlight numbers and names",
            "aid_word_diff": "Reading aid: word differences",
        }
        widgets = {
            "guidelines": forms.Textarea(attrs={"rows": 8}),
            "annotators": forms.CheckboxSelectMultiple,
            "annotator_groups": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["annotators"].queryset = User.objects.filter(
            groups__name=Role.ANNOTATOR
        ).order_by("username")
        self.fields["annotator_groups"].queryset = Group.objects.exclude(
            name__in=[Role.ADMIN, Role.RESEARCHER]
        ).order_by("name")
        self.fields["annotators_per_item"].min_value = 1
        self.fields["annotators_per_item"].max_value = MAX_ANNOTATORS_PER_ITEM
        breaks = self.fields["break_reminder_minutes"]
        breaks.required = False  # empty: off, as 0 is
        breaks.label = "Break reminder (minutes)"
        breaks.widget.attrs.update(min=0, max=MAX_BREAK_REMINDER_MINUTES)
        breaks.help_text = (
            f"Suggest a break after this many minutes of continuous judging, 1 to "
            f"{MAX_BREAK_REMINDER_MINUTES}; 0 or empty: never."
        )

    def clean_public_title(self) -> str:
        # Batch.clean() refuses a title or guidelines that name a system.
        return self.cleaned_data["public_title"].strip()

    def clean_annotators_per_item(self) -> int:
        k = self.cleaned_data["annotators_per_item"]
        taken = self.instance.comparisons.filter(is_check=False).aggregate(most=Max(TAKEN))["most"]
        if taken and k < taken:
            raise forms.ValidationError(
                f"A comparison already has {taken} judgments or leases; K cannot go below that."
            )
        if k > self.instance.annotators_per_item and served_own_document_checks(self.instance):
            raise forms.ValidationError(
                "Checks made from this batch's own documents were served: raising K would give "
                "those documents, as real comparisons, to annotators who saw them as checks."
            )
        return k

    def clean_break_reminder_minutes(self) -> int:
        minutes = self.cleaned_data["break_reminder_minutes"]
        return 0 if minutes is None else minutes

    def clean_check_threshold(self) -> float:
        value = self.cleaned_data["check_threshold"]
        if not 0 <= value <= 1:
            raise forms.ValidationError("A share between 0 and 1.")
        return value

    def clean(self) -> dict:
        """The intended effect: the three shares or none, each 0-1, summing to 1."""
        data = super().clean()
        names = ("planned_b_better", "planned_equal", "planned_a_better", "planned_rho")
        for name in names:
            value = data.get(name)
            if value is not None and not 0 <= value <= 1:
                self.add_error(name, "A share between 0 and 1.")
        shares = [data.get(name) for name in names[:3]]
        given = [s is not None for s in shares]
        if any(given) and not all(given):
            self.add_error(
                None, "Give all three expected shares (B better, equal, A better) or none."
            )
        elif all(given) and abs(sum(shares) - 1) > PLANNED_SUM_TOLERANCE:
            self.add_error(
                None, f"The expected shares must sum to 1 (they sum to {sum(shares):g})."
            )
        return data


class PowerForm(forms.Form):
    """What-if power of the primary test: expected shares, or a finished pilot batch's."""

    better = forms.FloatField(min_value=0, max_value=1, required=False, label="B better")
    equal = forms.FloatField(min_value=0, max_value=1, required=False, label="Equal")
    worse = forms.FloatField(min_value=0, max_value=1, required=False, label="B worse")
    pilot = forms.ModelChoiceField(
        Batch.objects.filter(status=Batch.Status.CLOSED).order_by("name"),
        required=False,
        help_text="A finished batch: its factual shares and correlation replace the above.",
    )
    k = forms.IntegerField(min_value=1, max_value=MAX_ANNOTATORS_PER_ITEM, label="K")
    comparisons = forms.IntegerField(min_value=1, max_value=MAX_PLANNED_COMPARISONS)
    rho = forms.FloatField(
        min_value=0,
        max_value=1,
        required=False,
        label="Within-comparison correlation",
        help_text="Empty: the pilot's, or 0.5.",
    )

    def clean(self) -> dict:
        data = super().clean()
        shares = [data.get(n) for n in ("better", "equal", "worse")]
        if data.get("pilot") and any(s is not None for s in shares):
            self.add_error(None, "Give either the expected shares or a pilot batch, not both.")
        elif not data.get("pilot") and None in shares:
            self.add_error(None, "Give the three expected shares, or pick a pilot batch.")
        elif None not in shares and abs(sum(shares) - 1) > PLANNED_SUM_TOLERANCE:
            self.add_error(
                None, f"The expected shares must sum to 1 (they sum to {sum(shares):g})."
            )
        return data


class AccountsForm(forms.Form):
    usernames = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="One username per line (letters, digits and @ . + - _).",
    )
    batch = forms.ModelChoiceField(
        Batch.objects.all(), required=False, help_text="Also allow them on this batch."
    )

    def clean_usernames(self) -> list[str]:
        names = [n.strip() for n in self.cleaned_data["usernames"].splitlines() if n.strip()]
        if not names:
            raise forms.ValidationError("Give at least one username.")
        if len(names) != len(set(names)):
            raise forms.ValidationError("A username is listed twice.")
        return names


EXPECTED = [("", "-"), ("A", "A better"), ("B", "B better"), ("equal", "Equal")]


class CheckPoolForm(forms.Form):
    file = forms.FileField(help_text="Documents for attention checks only, in the import format.")
    format = forms.ChoiceField(
        choices=[("", "from the file name"), ("jsonl", "JSON lines"), ("csv", "CSV")],
        required=False,
    )


class CheckForm(forms.Form):
    """Mark a comparison as an attention check, with the verdicts a careful annotator gives."""

    comparison = forms.IntegerField(label="Comparison id")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for criterion in CRITERIA:  # one expected verdict per criterion of the registry
            self.fields[criterion.key] = forms.ChoiceField(
                choices=EXPECTED, required=False, label=criterion.label
            )

    def expected(self) -> dict[str, str]:
        return {c.key: self.cleaned_data[c.key] for c in CRITERIA if self.cleaned_data.get(c.key)}
