from __future__ import annotations

import json

from django import forms

from evaluation.criteria import CRITERIA
from evaluation.models import MAX_ITEMS_PER_ANNOTATOR, Shown

from .models import CrowdStudy


class CrowdStudyForm(forms.ModelForm):
    items_per_annotator = forms.IntegerField(
        min_value=0,
        max_value=MAX_ITEMS_PER_ANNOTATOR,
        label="Comparisons per participant (quota)",
        help_text="Attention checks included; 0: no limit.",
    )

    class Meta:
        model = CrowdStudy
        fields = [
            "enabled",
            "consent_text",
            "show_guidelines",
            "training_pass_mark",
            "survey_questions",
            "time_limit_minutes",
            "reward",
            "prolific_return_url",
            "mturk_return_url",
            "generic_return_url",
        ]
        widgets = {
            "consent_text": forms.Textarea(attrs={"rows": 6}),
            "survey_questions": forms.Textarea(attrs={"rows": 4}),
        }


class TrainingUploadForm(forms.Form):
    items = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text='One JSON object a line: {"source", "left", "right", "expected": '
        '{"factual": "left", ...}, "explanation"}. Replaces the training items.',
    )

    def clean_items(self) -> list[dict]:
        rows = []
        keys = {c.key for c in CRITERIA}
        for number, line in enumerate(self.cleaned_data["items"].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise forms.ValidationError(f"line {number}: not JSON ({e.msg})") from e
            if not isinstance(row, dict):
                raise forms.ValidationError(f"line {number}: expected a JSON object")
            for field in ("source", "left", "right"):
                if not isinstance(row.get(field), str) or not row[field].strip():
                    raise forms.ValidationError(f"line {number}: {field!r} is missing")
            expected = row.get("expected")
            if not isinstance(expected, dict) or not expected:
                raise forms.ValidationError(f"line {number}: 'expected' answers are missing")
            for criterion, answer in expected.items():
                if criterion not in keys:
                    raise forms.ValidationError(f"line {number}: unknown criterion {criterion!r}")
                if answer not in Shown.values:
                    raise forms.ValidationError(
                        f"line {number}: {criterion} must be one of {', '.join(Shown.values)}"
                    )
            explanation = row.get("explanation", "")
            if not isinstance(explanation, str):
                raise forms.ValidationError(f"line {number}: 'explanation' must be text")
            rows.append({**row, "explanation": explanation})
        if not rows:
            raise forms.ValidationError("no training items")
        return rows


class PayForm(forms.Form):
    reward = forms.DecimalField(min_value=0, max_digits=8, decimal_places=2, required=False)
    minutes = forms.FloatField(
        min_value=0.1, required=False, label="Minutes per participant (pilot or observed)"
    )
