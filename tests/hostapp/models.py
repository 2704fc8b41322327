from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone


class Category(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Photo(models.Model):
    image = models.ImageField(upload_to="hostapp/photos/")
    caption = models.CharField(max_length=200, blank=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="photos")
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    taken_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.caption or f"photo {self.pk}"


class Illustration(models.Model):
    """A second indexed model, with its image under another field name."""

    file = models.ImageField(upload_to="hostapp/illustrations/")
    title = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.title or f"illustration {self.pk}"
