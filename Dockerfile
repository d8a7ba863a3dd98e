# Lobby chat: one daphne process per container. Run several behind nginx with
# docker-compose.yml; they share state through Redis (REDIS_URL).
#
# Migrations are NOT run here: the image must build without a database, and one image
# starts many containers. docker-compose.yml runs `manage.py migrate` once, in a one-shot
# service, before any web container starts.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, in their own layer: code changes do not reinstall them.
# psycopg[binary] ships its own libpq, so no system packages are needed.
# The lock pins every dependency, direct and indirect, with its hashes (`make lock`).
COPY requirements.lock .
RUN pip install --require-hashes -r requirements.lock

# A non-root user that cannot change the code it runs. /app/data is its one writable
# place, for a lone container on SQLite (DATABASE_URL=sqlite:////app/data/db.sqlite3
# with a volume there); docker-compose.yml uses PostgreSQL instead.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin chat \
    && mkdir /app/data && chown chat /app/data
COPY . .
# Hashed, gzip- and brotli-compressed static files in /app/staticfiles (chat.staticfiles):
# built once per image, read-only for the server. The key is a placeholder for this one
# command: settings refuse to load without one when debug is off.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --clear -v 0
USER chat

EXPOSE 8000

# Readiness: 200 only when the database answers, this worker's Redis subscription is live and
# its presence heartbeat is recent (urlopen raises on 503); see the README's health section.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz/ready', timeout=4)"]

# --proxy-headers: the client address comes from X-Forwarded-For, which nginx overwrites
#   with the real peer (the per-IP socket limit depends on it). Never publish port 8000
#   to the outside: anyone reaching daphne directly could forge that header.
# --websocket-max-message-size / --websocket-max-frame-size: daphne's hard cap, 128 KiB,
#   twice CHAT_MAX_FRAME's default (daphne's own default is 1 MiB). A frame between the two
#   reaches the application, which closes the socket with 4009; a larger one is dropped by
#   daphne (the client sees 1006) before it is buffered. If you raise CHAT_MAX_FRAME, raise
#   these too (override `command:`).
# --ping-interval / --ping-timeout: keepalive pings (daphne's defaults, stated here) keep
#   idle sockets alive through nginx and find dead peers.
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", \
     "--websocket-max-message-size", "131072", "--websocket-max-frame-size", "131072", \
     "--ping-interval", "20", "--ping-timeout", "30", \
     "chatproject.asgi:application"]
