"""assetsearch: make a Django site's images searchable by meaning."""

__version__ = "0.1.0"
