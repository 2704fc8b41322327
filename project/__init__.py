"""Example site that uses assetsearch; also the settings the test suite runs with."""

from .celery import app as celery_app

__all__ = ["celery_app"]
