"""Pure validators: each takes parsed tables and returns anomalies, never raises on bad data.

The project's own package: `validators` on PyPI is a different library. tests/test_layout.py
checks that this one is the one imported.
"""

PROJECT_PACKAGE = True
