"""WSGI entry point (gunicorn ``config.wsgi``)."""

import io
import os
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_chunked_bodies(app: WSGIApp) -> WSGIApp:
    """Django reads a request body by its Content-Length alone: a chunked one (`Transfer-Encoding: chunked`, which
    HTTP/1.1 clients such as Java's HttpClient send for a streamed body) was read as empty, and a valid PUT failed as
    missing every field. Where the server has decoded the chunks and ends the stream with the body (gunicorn says so
    with `wsgi.input_terminated`), the body is read here, at most one byte past OCPI_MAX_BODY_SIZE so the middleware
    still answers 413 for more, and handed on with its Content-Length."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if (
            environ.get("wsgi.input_terminated")
            and not environ.get("CONTENT_LENGTH")
            and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            body = environ["wsgi.input"].read(settings.OCPI_MAX_BODY_SIZE + 1)
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return app(environ, start_response)

    return wrapped


application = with_chunked_bodies(get_wsgi_application())
