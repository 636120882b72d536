"""Celery tasks of the protocol core, executed by a real worker consuming from a real Redis broker."""

import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from celery import signals
from celery.contrib.testing.worker import start_worker
from celery.schedules import crontab
from django.conf import settings
from django.utils import timezone
from kombu import pools as kombu_pools

from config.celery_app import app
from ocpi_core.models import TrafficLog
from ocpi_core.tasks import traffic_log_purge_task

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
_CONF_KEYS = ("broker_url", "broker_transport_options", "worker_hijack_root_logger")


def _drop_broker_pools() -> None:
    """Celery caches its broker connection and producer pools from the configuration at first use; drop them so
    the next call builds new ones from the current configuration."""
    pool = app._pool  # type: ignore[attr-defined]
    if pool is not None:
        pool.force_close_all()
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]
    # kombu also keeps its pools per broker URL, process-wide: the force-closed one would be handed out again
    # (memory:// after a worker test: "Acquire on closed pool"), so later publishing would fail
    kombu_pools.reset()


@pytest.fixture
def redis_broker() -> Iterator[str]:
    """The project's Celery app pointed at Redis, its keys under a prefix unique to this test (other test runs may
    share the Redis database); skipped when Redis is down, except in CI where that is a failure."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        reason = f"Redis is not reachable at {REDIS_URL} ({exc.__class__.__name__}); set TEST_REDIS_URL"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {reason}")
        pytest.skip(reason)
    prefix = f"ocpi-test-{uuid.uuid4().hex}:"
    saved = {key: app.conf[key] for key in _CONF_KEYS}
    # start_worker(queues=[...]) narrows the app's consumed queues for good: put the selection back afterwards
    consume_from = app.amqp.queues._consume_from  # type: ignore[attr-defined]
    selected = dict(consume_from) if consume_from is not None else None
    app.conf.update(
        broker_url=REDIS_URL,
        broker_transport_options={"global_keyprefix": prefix, "visibility_timeout": 3600},
        worker_hijack_root_logger=False,  # keep the test process's logging as it is
    )
    _drop_broker_pools()
    try:
        yield REDIS_URL
    finally:
        app.conf.update(saved)
        app.amqp.queues._consume_from = selected  # type: ignore[attr-defined]
        _drop_broker_pools()
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def traffic(url: str, *, age: timedelta | None = None) -> int:
    entry = TrafficLog.objects.create(direction=TrafficLog.Direction.IN, method="GET", url=url, http_status=200)
    if age is not None:  # created_at is auto_now_add: back-date it afterwards
        TrafficLog.objects.filter(pk=entry.pk).update(created_at=timezone.now() - age)
    return entry.pk


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_traffic_log_purge_runs_on_a_real_worker(redis_broker: str) -> None:
    retention = timedelta(days=settings.OCPI_TRAFFIC_LOG_RETENTION_DAYS)
    old = {traffic(f"/old/{i}", age=retention + timedelta(hours=1 + i)) for i in range(5)}
    kept = {traffic("/new"), traffic("/recent", age=retention - timedelta(hours=1))}
    results: list[tuple[str, Any]] = []

    def on_postrun(sender: Any = None, state: str = "", retval: Any = None, **kwargs: Any) -> None:
        if sender is not None and sender.name == traffic_log_purge_task.name:
            results.append((state, retval))

    signals.task_postrun.connect(on_postrun, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as worker:
            assert worker.consumer.connection.transport.driver_type == "redis"  # type: ignore[attr-defined]
            assert not app.conf.task_always_eager
            traffic_log_purge_task.delay(batch_size=2)  # 5 old rows: three batches
            deadline = time.monotonic() + 30
            while TrafficLog.objects.filter(pk__in=old).exists() or not results:
                if time.monotonic() > deadline:
                    pytest.fail(f"the worker did not purge the old traffic log within 30 s (task results: {results})")
                time.sleep(0.1)
    finally:
        signals.task_postrun.disconnect(on_postrun)

    assert results == [("SUCCESS", 5)]
    assert set(TrafficLog.objects.values_list("pk", flat=True)) == kept


def test_beat_schedule_names_registered_tasks() -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule, "the beat schedule is empty"
    assert app.conf.beat_schedule == schedule
    registered = set(app.tasks.keys())
    for name, entry in schedule.items():
        assert entry["task"] in registered, f"beat entry {name!r} names an unregistered task {entry['task']!r}"
        assert isinstance(entry["schedule"], crontab | timedelta | int | float), name
    assert schedule["traffic-log-purge"]["task"] == traffic_log_purge_task.name
