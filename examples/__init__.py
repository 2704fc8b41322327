"""Example sites built on assetsearch (each one documented in the README)."""
