"""JSON structured logs: one JSON object per line, carrying the request and correlation ids of the request that
logged it, and never a token."""

import io
import json
import logging
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from conftest import auth_header
from ocpi_core.crypto import token_generate
from ocpi_core.logging import RequestIdFilter


def json_handler() -> tuple[logging.Handler, io.StringIO]:
    """A handler built from the project's LOGGING settings (formatter and filter), writing to a buffer."""
    logging_config: dict[str, Any] = settings.LOGGING
    config: dict[str, Any] = dict(logging_config["formatters"]["json"])
    formatter_class = import_string(config.pop("()"))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_class(**config))
    handler.addFilter(RequestIdFilter())
    return handler, stream


def test_log_lines_are_json_with_the_request_and_correlation_ids(client, invited_partner, fake_partner, ocpi_base_url):
    _, token_a = invited_partner
    token_b = token_generate()
    fake_partner.accepted_tokens.add(token_b)
    handler, stream = json_handler()
    logger = logging.getLogger("ocpi_core")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        response = client.post(
            "/ocpi/2.2.1/credentials",
            data={"token": token_b, "url": fake_partner.versions_url, "roles": fake_partner.roles},
            content_type="application/json",
            HTTP_AUTHORIZATION=auth_header(token_a),
            HTTP_X_REQUEST_ID="req-log-1",
            HTTP_X_CORRELATION_ID="corr-log-1",
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

    assert response.json()["status_code"] == 1000
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    registered = next(line for line in lines if line["message"] == "Partner registered with us")
    assert registered["level"] == "INFO"
    assert registered["logger"] == "ocpi_core.services"
    assert registered["request_id"] == "req-log-1"
    assert registered["correlation_id"] == "corr-log-1"
    assert registered["partner"] == "invited"
    assert "time" in registered
    text = stream.getvalue()
    assert token_a not in text
    assert token_b not in text
    assert response.json()["data"]["token"] not in text
