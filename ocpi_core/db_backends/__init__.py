"""Database backends: Django's, with what the platform changes about them (settings.DATABASES' ENGINE)."""
