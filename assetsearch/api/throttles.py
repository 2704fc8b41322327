"""Scoped throttling with rates from ``ASSETSEARCH["THROTTLE_RATES"]``, counted in a shared cache.

A view names its scope in ``throttle_scope`` (a property may pick it per
action); the rates live in our settings rather than DRF's
``DEFAULT_THROTTLE_RATES``, so a host project needs no REST_FRAMEWORK entry
and ``override_settings`` changes them at once.

Counting: a sliding-window counter per user (or IP) and scope, in the
``THROTTLE_CACHE_ALIAS`` cache. The estimate is this window's count plus
the previous window's, weighted by how much of it still overlaps the last
``duration`` seconds. Each request is one atomic ``incr``, so every web
process counting in one shared cache (Redis, Memcached) enforces one budget;
DRF's own throttles keep a timestamp list that concurrent processes
overwrite. Refused requests give their count back, and so do answers that
only say "not yet" (:data:`FREE_STATUSES`): a client polling a search by an
asset that is still being embedded spends nothing until the search answers.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from ..conf import app_settings

logger = logging.getLogger(__name__)

# Statuses that do not count against the budget: 409 "asset not embedded
# yet" (retry until it is) and 429 itself.
FREE_STATUSES = frozenset({409, 429})
# Where a request keeps the counters it was charged to, for refund_throttles().
CHARGES_ATTRIBUTE = "_assetsearch_throttle_charges"


@dataclass(frozen=True)
class Window:
    """Where a sliding-window counter stands now: this window's key, the previous one's, and the time into this one."""

    key: str
    previous_key: str
    elapsed: float
    duration: float

    @classmethod
    def now(cls, base: str, duration: float) -> Window:
        window, elapsed = divmod(time.time(), duration)
        return cls(f"{base}_{int(window)}", f"{base}_{int(window) - 1}", elapsed, duration)

    def estimate(self, count: int, previous: int) -> float:
        """Events in the last ``duration`` seconds: this window's plus the overlapping share of the previous one's."""
        return previous * (1 - self.elapsed / self.duration) + count

    def counts(self, *, charge: bool) -> tuple[int, int] | None:
        """(this window's count, the previous window's), after adding one if ``charge``; None if the cache is down.

        Any cache backend's error is logged and answered None, which every
        caller takes as "do not throttle": a cache outage must not refuse
        every request (or every login).
        """
        cache = caches[app_settings.THROTTLE_CACHE_ALIAS]
        try:
            count = _increment(cache, self.key, timeout=2 * self.duration + 1) if charge else int(cache.get(self.key) or 0)
            return count, int(cache.get(self.previous_key) or 0)
        except Exception:  # noqa: BLE001 - any cache backend's error
            logger.warning("Throttle cache %r is unavailable; not throttling.", app_settings.THROTTLE_CACHE_ALIAS, exc_info=True)
            return None

    def wait(self, limit: int, count: int, previous: int) -> float:
        """Seconds until one more event fits: ``estimate(count + 1, previous) <= limit`` (count excludes it)."""
        if count + 1 <= limit and previous:
            # Within this window, once enough of the previous one has slid out.
            return max(0.0, (1 - (limit - count - 1) / previous) * self.duration - self.elapsed)
        # In the next window, where this window's count is the weighted one.
        later = max(0.0, 1 - (limit - 1) / count) * self.duration if count else 0.0
        return self.duration - self.elapsed + later


class AssetSearchThrottle(SimpleRateThrottle):
    # Our own key prefix: a host API may use the same scope names.
    cache_format = "assetsearch_throttle_%(scope)s_%(ident)s"

    def __init__(self) -> None:  # the rate depends on the view's scope: see allow_request()
        self.wait_seconds: float | None = None

    def get_rate(self) -> str | None:
        """The scope's rate; None (not throttled) for a scope without one."""
        return (app_settings.THROTTLE_RATES or {}).get(self.scope)

    def get_cache_key(self, request: Request, view: Any) -> str:
        ident = request.user.pk if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view: Any) -> bool:
        self.scope = getattr(view, "throttle_scope", None)
        self.rate = self.get_rate() if self.scope else None
        if not self.rate:
            return True
        limit, duration = self.parse_rate(self.rate)
        window = Window.now(self.get_cache_key(request, view), duration)
        counts = window.counts(charge=True)
        if counts is None:
            return True
        count, previous = counts
        if window.estimate(count, previous) <= limit:
            charges = getattr(request, CHARGES_ATTRIBUTE, None)
            if charges is None:
                charges = []
                setattr(request, CHARGES_ATTRIBUTE, charges)
            charges.append(window.key)
            return True
        _decrement(caches[app_settings.THROTTLE_CACHE_ALIAS], window.key)
        self.wait_seconds = window.wait(limit, count - 1, previous)
        return False

    def wait(self) -> float | None:
        return self.wait_seconds


def _increment(cache: Any, key: str, timeout: float) -> int:
    for _ in range(2):  # the key may expire between add() and incr()
        cache.add(key, 0, timeout)
        try:
            return int(cache.incr(key))
        except ValueError:
            continue
    raise RuntimeError(f"could not increment throttle counter {key}")


def _decrement(cache: Any, key: str) -> None:
    try:
        cache.decr(key)
    except Exception:  # noqa: BLE001 - expired meanwhile, or the cache went away: nothing to give back
        pass


def refund_throttles(request: Request, response: Response) -> None:
    """Give back what ``request`` was charged when its answer is one of :data:`FREE_STATUSES`."""
    if response.status_code not in FREE_STATUSES:
        return
    cache = caches[app_settings.THROTTLE_CACHE_ALIAS]
    for key in getattr(request, CHARGES_ATTRIBUTE, ()):
        _decrement(cache, key)
    setattr(request, CHARGES_ATTRIBUTE, [])


class FailedAuthThrottle(SimpleRateThrottle):
    """Failed authentication attempts per client address, at ``THROTTLE_RATES["auth_failure"]``.

    Unlike a request throttle it counts only failures (:meth:`record_failure`),
    and :meth:`wait_time` refuses an address over the rate before its
    credentials are even checked, so guessing tokens or passwords gets no
    answer at all, right or wrong, until the window has passed. Counted in
    the same shared sliding window as :class:`AssetSearchThrottle`. Used by
    :class:`~assetsearch.api.authentication.TokenAuthentication` and
    :func:`throttle_failed_logins`.
    """

    scope = "auth_failure"
    cache_format = "assetsearch_throttle_%(scope)s_%(ident)s"

    def get_rate(self) -> str | None:
        return (app_settings.THROTTLE_RATES or {}).get(self.scope)

    def get_cache_key(self, request: Any, view: Any = None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _window(self, request: Any) -> Window | None:
        return None if self.rate is None else Window.now(self.get_cache_key(request), self.duration)

    def wait_time(self, request: Any) -> float | None:
        """Seconds this client must wait before trying again; None when it may try now."""
        window = self._window(request)
        counts = window.counts(charge=False) if window else None
        if counts is None or window.estimate(*counts) + 1 <= self.num_requests:
            return None
        return window.wait(self.num_requests, *counts)

    def record_failure(self, request: Any) -> None:
        window = self._window(request)
        if window:
            window.counts(charge=True)


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
