"""The Celery application, configured from Django settings (namespace ``CELERY``)."""

import os

from celery import Celery

from ocpi_core.broker import install as broker_install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

broker_install()  # the embedded file-system broker writes its messages atomically
app = Celery("ocpi_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
