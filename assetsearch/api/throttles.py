"""Scoped throttling with rates from ``ASSETSEARCH["THROTTLE_RATES"]``.

A view names its scope in ``throttle_scope`` (a property may pick it per
action); the rates live in our settings rather than DRF's
``DEFAULT_THROTTLE_RATES``, so a host project needs no REST_FRAMEWORK entry
and ``override_settings`` changes them at once.
"""

from __future__ import annotations

from rest_framework.throttling import ScopedRateThrottle

from ..conf import app_settings


class AssetSearchThrottle(ScopedRateThrottle):
    # Our own key prefix: a host API may use the same scope names.
    cache_format = "assetsearch_throttle_%(scope)s_%(ident)s"

    def get_rate(self) -> str | None:
        """The scope's rate; None (not throttled) for a scope without one."""
        return (app_settings.THROTTLE_RATES or {}).get(self.scope)
