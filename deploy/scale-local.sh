#!/usr/bin/env bash
# `make scale`: the chat scaled out on this machine. Two daphne workers (or WORKER_PORTS)
# on loopback share Redis and the database, behind nginx on http://127.0.0.1:HTTP_PORT/.
# Checks that Redis answers, migrates, collects the static files, starts the workers (with --proxy-headers: they trust
# nginx's X-Forwarded-For, so the per-address cap counts clients, not nginx), waits for each
# to be healthy, then runs nginx in the foreground. Ctrl-C (or SIGTERM) stops all of them.
#
# Environment: REDIS_URL (default redis://127.0.0.1:6379/0), DATABASE_URL (default the
# SQLite file; use PostgreSQL across machines), DJANGO_SECRET_KEY (default: a random one for
# this run), HTTP_PORT (8080), WORKER_PORTS ("8001 8002"), NGINX (nginx's path), BIN (the
# virtualenv's bin folder), SCALE_DIR (nginx's pid, logs and temporary files: var/scale).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
HTTP_PORT=${HTTP_PORT:-8080}
WORKER_PORTS=${WORKER_PORTS:-8001 8002}
SCALE_DIR=${SCALE_DIR:-var/scale}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export DJANGO_BEHIND_PROXY=${DJANGO_BEHIND_PROXY:-true}
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
    DJANGO_SECRET_KEY=$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(50))')
    echo "scale: DJANGO_SECRET_KEY is not set; using a random one for this run"
fi
export DJANGO_SECRET_KEY

if [ ! -x "$NGINX" ]; then
    echo "scale: nginx not found (apt-get install nginx, or set NGINX=/path/to/nginx)" >&2
    exit 1
fi
if ! "$BIN/python" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()' "$REDIS_URL" 2>/dev/null; then
    echo "scale: Redis does not answer at $REDIS_URL (start redis-server, or set REDIS_URL)" >&2
    exit 1
fi

"$BIN/python" manage.py migrate --noinput
# DJANGO_DEBUG is off: the page refers to hashed, compressed static files (STATIC_ROOT).
"$BIN/python" manage.py collectstatic --noinput -v 0

# nginx's configuration: deploy/nginx.local.conf, with the ports asked for.
mkdir -p "$SCALE_DIR/nginx/logs" "$SCALE_DIR/nginx/tmp"
SCALE_DIR=$(cd "$SCALE_DIR" && pwd)
conf="$SCALE_DIR/nginx.conf"
upstreams=""
for port in $WORKER_PORTS; do
    upstreams+="        server 127.0.0.1:$port max_fails=3 fail_timeout=10s;\n"
done
awk -v http="$HTTP_PORT" -v ups="$upstreams" '
    /server 127\.0\.0\.1:[0-9]+ max_fails/ { if (!done) { printf "%s", ups; done = 1 } next }
    { sub(/listen 127\.0\.0\.1:[0-9]+;/, "listen 127.0.0.1:" http ";"); print }
' deploy/nginx.local.conf > "$conf"

pids=()
stop() {
    trap - INT TERM EXIT
    echo "scale: stopping"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait || true
}
trap stop INT TERM EXIT

for port in $WORKER_PORTS; do
    "$BIN/daphne" -b 127.0.0.1 -p "$port" --proxy-headers chatproject.asgi:application &
    pids+=("$!")
done
for port in $WORKER_PORTS; do
    if ! "$BIN/python" - "$port" <<'PY'
import sys, time, urllib.request
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=2):
            sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
PY
    then
        echo "scale: the worker on port $port did not become healthy" >&2
        exit 1
    fi
done

"$NGINX" -p "$SCALE_DIR/nginx/" -c "$conf" -e stderr &
pids+=("$!")
echo "scale: the chat is at http://127.0.0.1:$HTTP_PORT/ (workers on $WORKER_PORTS); Ctrl-C stops it"
# Until Ctrl-C, or until any of them exits (then the others are stopped too).
wait -n
