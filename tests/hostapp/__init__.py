"""A host site's own app, as a site has before it adds assetsearch: plain models with an ImageField.

Its models are indexed in place by the host's code (``apps.py``); nothing of
assetsearch is in their tables.
"""
