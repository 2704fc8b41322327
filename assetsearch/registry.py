"""The registry of indexed models: ``assetsearch.register(Model, IndexClass)``.

Like ``admin.site.register``: a model is registered once, with a
:class:`~assetsearch.indexes.BaseImageIndex` subclass, from the host's
``AppConfig.ready()`` or through ``ASSETSEARCH["INDEXES"]``. Registering
connects the model's signals (:mod:`assetsearch.signals` listens to the
registry, whichever app is ready first); the app's own ``Asset`` is
registered the same way when assetsearch is ready.
"""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.module_loading import import_string

from .conf import app_settings
from .indexes import BaseImageIndex


class AlreadyRegistered(ImproperlyConfigured):
    pass


class NotRegistered(LookupError):
    """The model (or label) names no registered index."""


_indexes: dict[type[models.Model], BaseImageIndex] = {}
# Called with each model registered or unregistered (True, False): the signal connections.
_listeners: list[Callable[[type[models.Model], bool], None]] = []


def add_listener(listener: Callable[[type[models.Model], bool], None]) -> None:
    """Call ``listener(model, True)`` for every registered model, now and on each registration (False on unregistration)."""
    _listeners.append(listener)
    for model in list(_indexes):
        listener(model, True)


def register(model: type[models.Model], index_class: type[BaseImageIndex] | None = None) -> BaseImageIndex:
    """Index ``model``'s images with ``index_class`` (default: :class:`BaseImageIndex`); returns the index."""
    if model in _indexes:
        raise AlreadyRegistered(f"{model._meta.label} is already registered with assetsearch.")
    if model._meta.abstract or model._meta.proxy:
        raise ImproperlyConfigured(f"assetsearch indexes concrete models; {model._meta.label} is abstract or a proxy.")
    if not isinstance(model._meta.pk, (models.AutoField, models.BigAutoField, models.IntegerField)):
        raise ImproperlyConfigured(f"assetsearch needs integer primary keys; {model._meta.label}'s is {type(model._meta.pk).__name__}.")
    index = (index_class or BaseImageIndex)(model)
    _indexes[model] = index
    for listener in _listeners:
        listener(model, True)
    return index


def unregister(model: type[models.Model]) -> None:
    if _indexes.pop(model, None) is None:
        raise NotRegistered(f"{model._meta.label} is not registered with assetsearch.")
    for listener in _listeners:
        listener(model, False)


def register_from_settings() -> None:
    """Register the models named in ``ASSETSEARCH["INDEXES"]`` (``{"app.Model": "dotted.Index"}``)."""
    for label, path in (app_settings.INDEXES or {}).items():
        model = apps.get_model(label)
        if model not in _indexes:
            register(model, import_string(path) if path else None)


def get_indexes() -> list[BaseImageIndex]:
    """Every registered index, in registration order (the app's Asset first)."""
    return list(_indexes.values())


def get_index(model: type[models.Model] | models.Model | str) -> BaseImageIndex:
    """The index of a model, an instance or an ``app_label.model_name`` label; :class:`NotRegistered` if none."""
    if isinstance(model, str):
        label = model.lower()
        for index in _indexes.values():
            if index.label == label:
                return index
        known = ", ".join(index.label for index in _indexes.values())
        raise NotRegistered(f"No indexed model {model!r}; indexed: {known}.")
    if isinstance(model, models.Model):
        model = type(model)
    try:
        return _indexes[model]
    except KeyError:
        raise NotRegistered(f"{model._meta.label} is not registered with assetsearch.") from None


def is_registered(model: type[models.Model]) -> bool:
    return model in _indexes
