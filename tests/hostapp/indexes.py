from __future__ import annotations

from assetsearch.indexes import BaseImageIndex


class PhotoIndex(BaseImageIndex):
    image_field = "image"
    title_field = "caption"
    text_fields = ["caption", "tags"]
    tags_field = "tags"
    date_field = "taken_at"
    filter_fields = ["category"]

    def serialize(self, obj, context):
        return {"caption": obj.caption, "category": obj.category_id, "tags": obj.tags}


class IllustrationIndex(BaseImageIndex):
    image_field = "file"
    title_field = "title"
    text_fields = ["title"]
