"""``GET /api/health/``: the health checks of :mod:`assetsearch.health` as JSON.

Staff users (session or token), or a monitor that sends the shared secret
``HEALTH_TOKEN`` as ``Authorization: Bearer <token>``. 200 when every check
is ``ok`` or ``warning``, 503 when one is an ``error``.
"""

from __future__ import annotations

import hmac
from typing import Any

from rest_framework import generics
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from ..conf import app_settings
from ..health import ERROR, get_health
from .views import AssetSearchAPIMixin


class HealthPermission(BasePermission):
    message = "Health checks need a staff user or the HEALTH_TOKEN (Authorization: Bearer <token>)."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.user and request.user.is_staff:
            return True
        token = app_settings.HEALTH_TOKEN
        scheme, _, sent = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), str(token).encode())


class HealthView(AssetSearchAPIMixin, generics.GenericAPIView):
    permission_classes = [HealthPermission]
    throttle_classes: list[type] = []  # monitors poll
    pagination_class = None
    schema = None  # for monitors, documented in the README; not part of the OpenAPI document

    def get(self, request: Request) -> Response:
        health = get_health()
        return Response(health, status=503 if health["status"] == ERROR else 200)
