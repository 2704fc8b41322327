"""The REST API (Django REST Framework), an optional part of assetsearch.

Include ``assetsearch.urls`` in the site's URLconf; the endpoints, their
permissions and the error shape are described in ``docs/api.md`` and served
as an OpenAPI schema at ``api/schema/`` (Swagger UI at ``api/docs/``).
"""
