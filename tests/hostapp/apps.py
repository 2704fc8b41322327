from __future__ import annotations

from django.apps import AppConfig


class HostAppConfig(AppConfig):
    name = "tests.hostapp"
    label = "hostapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The host's own code opts its models in, as it would register them with the admin.
        import assetsearch

        from .indexes import IllustrationIndex, PhotoIndex
        from .models import Illustration, Photo

        assetsearch.register(Photo, PhotoIndex)
        assetsearch.register(Illustration, IllustrationIndex)
