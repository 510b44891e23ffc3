"""The three roles as Django groups, with their model permissions."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from .models import Role

STUDY_APPS = ("evaluation", "scoring")


def ensure_role_groups(**kwargs) -> None:
    """Create the role groups; admins may change study data, researchers may view it.

    Runs after every migrate, so new models' permissions reach the groups too.
    """
    study = Permission.objects.filter(content_type__app_label__in=STUDY_APPS)
    admin, _ = Group.objects.get_or_create(name=Role.ADMIN)
    admin.permissions.add(*study)
    researcher, _ = Group.objects.get_or_create(name=Role.RESEARCHER)
    researcher.permissions.add(*study.filter(codename__startswith="view_"))
    Group.objects.get_or_create(name=Role.ANNOTATOR)
