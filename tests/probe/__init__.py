"""Test-only endpoints mounted by `tests.probe.urls` (never by config.urls)."""
