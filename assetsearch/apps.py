from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save, pre_save


class AssetSearchConfig(AppConfig):
    name = "assetsearch"
    verbose_name = "Asset search"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)
        from .indexes import AssetIndex
        from .models import Asset, ModerationConcept
        from .registry import add_listener, is_registered, register, register_from_settings
        from .signals import (
            asset_deleted, asset_saved, asset_saving, concept_saved, connect_index_signals, sync_vector_indexes_after_migrate,
        )

        add_listener(connect_index_signals)
        if not is_registered(Asset):
            register(Asset, AssetIndex)
        register_from_settings()
        post_migrate.connect(sync_vector_indexes_after_migrate, sender=self, dispatch_uid="assetsearch.vector_indexes")

        pre_save.connect(asset_saving, sender=Asset, dispatch_uid="assetsearch.asset_saving")
        post_save.connect(asset_saved, sender=Asset, dispatch_uid="assetsearch.asset_saved")
        post_delete.connect(asset_deleted, sender=Asset, dispatch_uid="assetsearch.asset_deleted")
        post_save.connect(concept_saved, sender=ModerationConcept, dispatch_uid="assetsearch.concept_saved")
        # Each worker process loads the encoder (and, where tasks run in it,
        # opens its database connection) as it starts, not on its first task.
        from celery.signals import worker_process_init, worker_ready

        from .tasks import warm_up_database, warm_up_worker

        worker_process_init.connect(warm_up_worker, dispatch_uid="assetsearch.warm_up_worker")
        worker_ready.connect(warm_up_database, dispatch_uid="assetsearch.warm_up_database")
