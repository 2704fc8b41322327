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
        cache = caches[app_settings.THROTTLE_CACHE_ALIAS]
        base = self.get_cache_key(request, view)
        now = time.time()
        window, elapsed = divmod(now, duration)
        key = f"{base}_{int(window)}"
        try:
            count = _increment(cache, key, timeout=2 * duration + 1)
            previous = int(cache.get(f"{base}_{int(window) - 1}") or 0)
        except Exception:  # noqa: BLE001 - any cache backend's error: serve rather than fail every request
            logger.warning("Throttle cache %r is unavailable; not throttling.", app_settings.THROTTLE_CACHE_ALIAS, exc_info=True)
            return True
        overlap = 1 - elapsed / duration
        if previous * overlap + count <= limit:
            charges = getattr(request, CHARGES_ATTRIBUTE, None)
            if charges is None:
                charges = []
                setattr(request, CHARGES_ATTRIBUTE, charges)
            charges.append(key)
            return True
        _decrement(cache, key)
        self.wait_seconds = _wait(limit, duration, count - 1, previous, elapsed)
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


def _wait(limit: int, duration: float, count: int, previous: int, elapsed: float) -> float:
    """Seconds until ``previous * overlap + count + 1 <= limit`` holds again."""
    if count + 1 <= limit and previous:
        # Within this window, once enough of the previous one has slid out.
        return max(0.0, (1 - (limit - count - 1) / previous) * duration - elapsed)
    # In the next window, where this window's count is the weighted one.
    later = max(0.0, 1 - (limit - 1) / count) * duration if count else 0.0
    return duration - elapsed + later


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
    answer at all, right or wrong, until the window has passed. Used by
    :class:`~assetsearch.api.authentication.TokenAuthentication` and
    :func:`throttle_failed_logins`.
    """

    scope = "auth_failure"
    cache_format = "assetsearch_throttle_%(scope)s_%(ident)s"

    def __init__(self) -> None:
        self.cache = caches[app_settings.THROTTLE_CACHE_ALIAS]  # shared by every web process
        super().__init__()

    def get_rate(self) -> str | None:
        return (app_settings.THROTTLE_RATES or {}).get(self.scope)

    def get_cache_key(self, request: Any, view: Any = None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request: Any) -> bool:
        if self.rate is None:
            return False
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        try:
            history = self.cache.get(self.key, [])
        except Exception:  # noqa: BLE001 - any cache backend's error: let the credentials be checked
            logger.warning("Throttle cache %r is unavailable; not throttling failed authentication.", app_settings.THROTTLE_CACHE_ALIAS, exc_info=True)
            return False
        self.history = [t for t in history if t > self.now - self.duration]
        return True

    def wait_time(self, request: Any) -> float | None:
        """Seconds this client must wait before trying again; None when it may try now."""
        if not self._load(request) or len(self.history) < self.num_requests:
            return None
        return self.wait()

    def record_failure(self, request: Any) -> None:
        if self._load(request):
            self.history.insert(0, self.now)
            try:
                self.cache.set(self.key, self.history, self.duration)
            except Exception:  # noqa: BLE001 - the cache went away meanwhile: the failure goes uncounted
                logger.warning("Throttle cache %r is unavailable; a failed authentication was not counted.", app_settings.THROTTLE_CACHE_ALIAS)


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
