"""Scoped throttling with rates from ``ASSETSEARCH["THROTTLE_RATES"]``.

A view names its scope in ``throttle_scope`` (a property may pick it per
action); the rates live in our settings rather than DRF's
``DEFAULT_THROTTLE_RATES``, so a host project needs no REST_FRAMEWORK entry
and ``override_settings`` changes them at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

from ..conf import app_settings


class AssetSearchThrottle(ScopedRateThrottle):
    # Our own key prefix: a host API may use the same scope names.
    cache_format = "assetsearch_throttle_%(scope)s_%(ident)s"

    def get_rate(self) -> str | None:
        """The scope's rate; None (not throttled) for a scope without one."""
        return (app_settings.THROTTLE_RATES or {}).get(self.scope)


class FailedAuthThrottle(SimpleRateThrottle):
    """Failed authentication attempts per client address, at ``THROTTLE_RATES["auth_failure"]``.

    Unlike a request throttle it counts only failures (:meth:`record_failure`),
    and :meth:`wait_time` refuses an address over the rate before its
    credentials are even checked, so guessing tokens or passwords gets no
    answer at all, right or wrong, until the window has passed. Used by
    :class:`~assetsearch.api.authentication.TokenAuthentication` and
    :func:`throttle_failed_logins`.
    """

    scope = "auth_failure"
    cache_format = "assetsearch_throttle_%(scope)s_%(ident)s"

    def get_rate(self) -> str | None:
        return (app_settings.THROTTLE_RATES or {}).get(self.scope)

    def get_cache_key(self, request: Any, view: Any = None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request: Any) -> bool:
        if self.rate is None:
            return False
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]
        return True

    def wait_time(self, request: Any) -> float | None:
        """Seconds this client must wait before trying again; None when it may try now."""
        if not self._load(request) or len(self.history) < self.num_requests:
            return None
        return self.wait()

    def record_failure(self, request: Any) -> None:
        if self._load(request):
            self.history.insert(0, self.now)
            self.cache.set(self.key, self.history, self.duration)


def throttle_failed_logins(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a login view (such as ``admin.site.login``) with :class:`FailedAuthThrottle`.

    A POST answered with the form again (status 200) is a failed attempt; a
    client over the rate gets a 429 without its password being checked::

        path("admin/login/", throttle_failed_logins(admin.site.login)),  # before admin.site.urls
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        throttle = FailedAuthThrottle()
        wait = throttle.wait_time(request)
        if wait is not None:
            response = HttpResponse(
                f"Too many failed logins from your address; try again in {int(wait) + 1} s.\n",
                status=429,
                content_type="text/plain",
            )
            response["Retry-After"] = str(int(wait) + 1)
            return response
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            throttle.record_failure(request)
        return response

    return wrapper
