from __future__ import annotations

from django import forms
from django.contrib.auth.models import Group, User
from django.db.models import Max

from evaluation.checks import served_own_document_checks
from evaluation.criteria import CRITERIA
from evaluation.importing import FORMATS
from evaluation.models import TAKEN, Batch, Role
from evaluation.services import MAX_ANNOTATORS_PER_ITEM


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
            "guidelines",
            "check_every",
            "check_min_gap",
            "check_threshold",
            "checks_before_flag",
            "annotators",
            "annotator_groups",
        ]
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

    def clean_check_threshold(self) -> float:
        value = self.cleaned_data["check_threshold"]
        if not 0 <= value <= 1:
            raise forms.ValidationError("A share between 0 and 1.")
        return value


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
