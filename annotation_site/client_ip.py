"""The client's address for login rate limiting, behind `TRUSTED_PROXY_COUNT` reverse proxies."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The address the nearest untrusted hop connected from.

    Each trusted proxy appends the address it was connected from to X-Forwarded-For, so with N
    of them the client is the N-th entry from the right; what the client wrote further left is
    ignored, being forgeable. A header shorter than N did not pass every proxy: REMOTE_ADDR.
    """
    count = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if count > 0 and len(hops) >= count:
        return hops[-count]
    return request.META.get("REMOTE_ADDR")
