# syntax=docker/dockerfile:1
# The platform image: web (gunicorn, the default command), Celery worker and beat, and the migrate step all run
# from it (see docker-compose.yml). Secrets come from the environment at run time, never from the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    PORT=8000 \
    WEB_CONCURRENCY=2

# An unprivileged user; the code stays owned by root (read-only to the app), only var/ is writable.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, so editing the code does not reinstall them. requirements.txt is fully pinned.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY . ./

# Static files are collected into var/static at build time (whitenoise serves them). Production settings refuse to
# load without secrets, so this one step gets throw-away values; they are not kept in the image's environment.
RUN env DJANGO_SECRET_KEY=build-time-only-not-a-secret \
        OCPI_TOKEN_ENCRYPTION_KEY=YnVpbGQtdGltZS1vbmx5LW5vdC1hLXNlY3JldC0wMDA= \
        DATABASE_URL=sqlite:////tmp/build-only.sqlite3 \
        CELERY_BROKER_URL=memory:// \
        python manage.py collectstatic --noinput \
    && mkdir -p var/beat var/metrics \
    && chown -R app:app var

USER app

EXPOSE 8000

# Liveness: GET /healthz on the local gunicorn (python, no curl in the image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["python", "docker/healthcheck.py"]

CMD ["gunicorn", "--config", "docker/gunicorn.conf.py", "config.wsgi"]
