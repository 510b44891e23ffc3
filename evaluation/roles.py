"""The three roles: Django groups with their model permissions, and the views' role check.

`scoring` and the reporting layer check roles through this module, never through the
annotator views.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from .models import Role, user_role

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


def role_required(*roles: str) -> Callable[[Callable], Callable]:
    """Log in first; then only these roles may pass (403 for the others)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if user_role(request.user) not in roles:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
