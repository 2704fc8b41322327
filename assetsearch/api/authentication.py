"""Token authentication that throttles failures.

DRF's ``TokenAuthentication`` answers every guess at once, so a client may
try tokens as fast as the server answers. This one counts failed tokens per
client address (:class:`~assetsearch.api.throttles.FailedAuthThrottle`,
``THROTTLE_RATES["auth_failure"]``) and answers 429 with ``Retry-After``,
without checking the token, once an address is over the rate.
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions

from .throttles import FailedAuthThrottle


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate(self, request: Any) -> Any:
        if not authentication.get_authorization_header(request):
            return None  # no credentials: nothing to guess
        throttle = FailedAuthThrottle()
        wait = throttle.wait_time(request)
        if wait is not None:
            raise exceptions.Throttled(wait, detail="Too many failed authentication attempts.")
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure(request)
            raise
