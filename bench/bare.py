"""The bare reference: a minimal Django app serving the platform's responses from memory, under the same gunicorn
settings, so every scenario's figure is a ratio that holds on a noisy machine.

This one module is the settings, the URLconf and the WSGI entry point (`gunicorn bench.bare`). No middleware, no
database, no apps: the ceiling of Django itself. It serves, for the same URLs as the platform:

- `GET /ocpi/2.2.1/cpo/locations...` (any query): a pre-built envelope of the first 50-location page, with the
  platform's pagination headers;
- `GET /ocpi/2.2.1/cpo/locations/{id}`: one pre-built location envelope;
- `PATCH /ocpi/2.2.1/emsp/locations/...`: reads the body, answers the small success envelope.

The documents come from `bare.json`, written by bench/generate.py (path in BENCH_BARE_DATA).
"""

import os
from pathlib import Path

from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import re_path

os.environ["DJANGO_SETTINGS_MODULE"] = __name__

DEBUG = False
SECRET_KEY = "bench-bare-reference-app-not-a-secret"  # noqa: S105  # serves no sessions, signs nothing
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = __name__
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
LOGGING_CONFIG = None

_TIMESTAMP = b'"timestamp":"2026-01-01T00:00:00Z"'


def _load() -> tuple[bytes, dict[str, str], bytes]:
    import orjson

    path = Path(os.environ.get("BENCH_BARE_DATA", "bare.json"))
    data = orjson.loads(path.read_bytes())
    docs = [doc.encode() for doc in data["page_docs"]]
    page = b'{"data":[' + b",".join(docs) + b'],"status_code":1000,' + _TIMESTAMP + b"}"
    headers = {
        "X-Total-Count": str(data["total"]),
        "X-Limit": "100",
        "Link": '<http://127.0.0.1/ocpi/2.2.1/cpo/locations?offset=50&limit=50&cursor=MjAyNXwx>; rel="next"',
    }
    one = b'{"data":' + data["location_doc"].encode() + b',"status_code":1000,' + _TIMESTAMP + b"}"
    return page, headers, one


PAGE, PAGE_HEADERS, LOCATION = _load()
ACK = b'{"status_code":1000,' + _TIMESTAMP + b"}"


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE, content_type="application/json", headers=PAGE_HEADERS)


def location(request: HttpRequest, location_id: str) -> HttpResponse:
    return HttpResponse(LOCATION, content_type="application/json")


def patch(request: HttpRequest, path: str) -> HttpResponse:
    _ = request.body
    return HttpResponse(ACK, content_type="application/json")


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b'{"status":"ok"}', content_type="application/json")


urlpatterns = [
    re_path(r"^ocpi/2\.2\.1/cpo/locations/?$", page),
    re_path(r"^ocpi/2\.2\.1/cpo/locations/(?P<location_id>[^/]+)/?$", location),
    re_path(r"^ocpi/2\.2\.1/emsp/locations/(?P<path>.+)$", patch),
    re_path(r"^healthz$", healthz),
]

application = get_wsgi_application()
