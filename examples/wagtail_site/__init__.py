"""A Wagtail 7/8 site whose own images are searchable by meaning (README "Wagtail").

Started by ``scripts/run-wagtail``; its settings are also the settings of
the Wagtail tests (``tests/wagtail``).
"""
