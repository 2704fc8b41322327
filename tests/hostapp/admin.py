from __future__ import annotations

from django.contrib import admin

from assetsearch.admin import SemanticSearchAdminMixin

from .models import Photo


@admin.register(Photo)
class PhotoAdmin(SemanticSearchAdminMixin, admin.ModelAdmin):
    list_display = ["caption", "category", "embedding_state", "find_similar"]
    search_fields = ["caption"]
