"""The embedded file-system broker: a message is never visible to a consumer before it is fully written."""

import json
from pathlib import Path
from typing import Any

from kombu import Connection

import config.celery_app  # noqa: F401  (installs the transport, as every process does)
from ocpi_core.broker import Transport


def _connection(folder: Path) -> Any:
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder.parent / f"{folder.name}-control"),  # kombu's default: ./control, in the checkout
        "store_processed": False,
    }
    return Connection("filesystem://", transport_options=options)


def test_filesystem_urls_use_the_atomic_transport(tmp_path: Path) -> None:
    with _connection(tmp_path) as connection:
        assert isinstance(connection.transport, Transport)


def test_a_message_appears_only_complete(tmp_path: Path, monkeypatch: Any) -> None:
    seen: list[tuple[list[str], bytes]] = []
    real_replace = __import__("os").replace

    def replace(source: str, target: str) -> None:
        # the moment before the rename: no file of the queue's pattern yet, the partial one complete
        seen.append((sorted(p.name for p in tmp_path.glob("*.jobs.msg")), Path(source).read_bytes()))
        real_replace(source, target)

    monkeypatch.setattr("ocpi_core.broker.os.replace", replace)
    with _connection(tmp_path) as connection:
        queue = connection.SimpleQueue("jobs")
        queue.put({"n": 1})
        assert seen[0][0] == []
        assert json.loads(seen[0][1])["properties"]["delivery_info"]["routing_key"] == "jobs"  # whole JSON
        assert [p.name.endswith(".jobs.msg") for p in tmp_path.iterdir()] == [True]
        assert queue.get(timeout=1).payload == {"n": 1}
        queue.close()
