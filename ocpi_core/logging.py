"""Request and correlation ids for JSON log lines (set by OcpiMiddleware, read by RequestIdFilter)."""

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
correlation_id_var: ContextVar[str] = ContextVar("correlation_id", default="")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` and `correlation_id` to every record, so each JSON line can be traced to its request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        if not getattr(record, "correlation_id", None):
            record.correlation_id = correlation_id_var.get()
        return True
