"""Gunicorn settings of the container's web process (Dockerfile CMD): sync workers on 0.0.0.0:$PORT."""

import os

# Inside a container every interface is the container's own; the port is published by docker-compose.yml.
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Sync workers serve Django's sync views fastest (PERFORMANCE.md). At least two: during a credentials handshake
# the partner may call our versions endpoint while one worker waits for the partner's answer.
workers = max(2, int(os.environ.get("WEB_CONCURRENCY", "2")))
worker_class = "sync"
# Requests that call partners (credentials handshake: versions, version details, credentials) may take several
# OCPI_CLIENT_TIMEOUT periods before answering.
timeout = 120
graceful_timeout = 30
keepalive = 5
# gunicorn's largest request line (default 4094): a longer URL gets gunicorn's own HTML 414, which no OCPI envelope
# can replace, so URLs up to 8 KB reach the application and its envelopes.
limit_request_line = 8190
# The worker heartbeat file on tmpfs: a slow container disk must not make the arbiter kill healthy workers.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 (gunicorn's own heartbeat files)
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = 2000
max_requests_jitter = 200
# No runtime control socket (it would go to $HOME/.gunicorn, read-only in the image); signals manage the process.
control_socket_disable = True
# Requests are logged by the application (JSON lines with request ids); gunicorn logs its own events on stderr.
accesslog = None
errorlog = "-"
