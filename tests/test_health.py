"""Liveness (/healthz) and readiness (/readyz: database and broker) probes, unauthenticated."""

import socket
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def redis_reachable() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5):
            return True
    except OSError:
        return False


def test_healthz_answers_without_touching_anything(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["X-Request-ID"]


def test_readyz_ok_with_the_test_broker(client: Client, db: None, settings: Any) -> None:
    assert settings.CELERY_BROKER_URL.startswith("memory://")  # config/settings/test.py
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.skipif(not redis_reachable(), reason=f"no Redis on {REDIS_HOST}:{REDIS_PORT}")
def test_readyz_ok_with_a_reachable_redis(client: Client, db: None, settings: Any) -> None:
    settings.CELERY_BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/15"
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_503_names_the_broker_when_redis_is_down(client: Client, db: None, settings: Any) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error: ")
    assert "Connection" in body["checks"]["broker"]


def test_readyz_with_the_embedded_file_system_broker(client: Client, db: None, settings: Any, tmp_path: Path) -> None:
    # the default deployment (no CELERY_BROKER_URL): ready while its queue folder exists
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path)}
    assert client.get("/readyz").status_code == 200

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "missing")}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "unavailable (embedded file-system broker)"
