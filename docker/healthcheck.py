"""Container liveness probe: GET /healthz on the local web process; exit status 0 when it answers 200 "ok".

Used by the Dockerfile HEALTHCHECK and docker-compose.yml (python only, the image has no curl). Production settings
validate the Host header, so the probe presents a host that DJANGO_ALLOWED_HOSTS accepts.
"""

import http.client
import json
import os
import sys


def probe_host(allowed_hosts: str) -> str:
    """A Host header the first DJANGO_ALLOWED_HOSTS entry accepts ("localhost" when none or a wildcard)."""
    for entry in (item.strip() for item in allowed_hosts.split(",")):
        if not entry or entry == "*":
            continue
        return entry.lstrip(".")  # ".example.com" accepts example.com itself
    return "localhost"


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    host = probe_host(os.environ.get("DJANGO_ALLOWED_HOSTS", ""))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        connection.request("GET", "/healthz", headers={"Host": host, "Accept": "application/json"})
        response = connection.getresponse()
        body = response.read()
    except OSError as exc:
        sys.stderr.write(f"healthcheck: 127.0.0.1:{port} unreachable: {exc}\n")
        return 1
    finally:
        connection.close()
    if response.status != 200:
        sys.stderr.write(f"healthcheck: /healthz answered HTTP {response.status} (Host: {host})\n")
        return 1
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    status = document.get("status") if isinstance(document, dict) else None
    if status != "ok":
        sys.stderr.write(f"healthcheck: /healthz answered {body[:200]!r}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
