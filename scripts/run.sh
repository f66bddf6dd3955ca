#!/usr/bin/env bash
# `make run`: find Redis (or start a private one), then run the Procfile's processes under honcho:
# web, worker, webhooks, flower and, when GEMINI_API_KEY is unset, the local Gemini emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export GEMQ_RUN_DIR=${GEMQ_RUN_DIR:-run}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export WEB_PORT=${WEB_PORT:-8000} FLOWER_PORT=${FLOWER_PORT:-5555} EMULATOR_PORT=${EMULATOR_PORT:-8090}
export NO_PROXY=${NO_PROXY:-127.0.0.1,localhost}
mkdir -p "$GEMQ_RUN_DIR"
GEMQ_RUN_DIR=$(cd "$GEMQ_RUN_DIR" && pwd)  # absolute: redis-server and Flower run with other working dirs

# Development secrets: generated once per checkout, kept in the run folder (never committed).
secrets="$GEMQ_RUN_DIR/dev-secrets.env"
touch "$secrets" && chmod 600 "$secrets"
for name in DEV_API_KEY DEV_WEBHOOK_SECRET DEV_FLOWER_PASSWORD; do
  grep -q "^$name=" "$secrets" || python -c 'import secrets, sys; print(f"{sys.argv[1]}=dev-{secrets.token_urlsafe(24)}")' "$name" >> "$secrets"
done
# shellcheck disable=SC1090
. "$secrets"
export GEMQ_API_KEYS=${GEMQ_API_KEYS:-dev:$DEV_API_KEY}
export GEMQ_WEBHOOK_SECRET=${GEMQ_WEBHOOK_SECRET:-$DEV_WEBHOOK_SECRET}
# Flower refuses to start without basic auth (outside GEMQ_ENV=development): a generated password here.
export FLOWER_BASIC_AUTH=${FLOWER_BASIC_AUTH:-admin:$DEV_FLOWER_PASSWORD}
api_key=${GEMQ_API_KEYS#*:}; api_key=${api_key%%,*}

# Redis: use the one at REDIS_URL if it answers, else start a private one with AOF on.
if python -m scripts.redis_ping "$REDIS_URL"; then
  echo "gemq: using Redis at $REDIS_URL"
else
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "gemq: no Redis answers at $REDIS_URL and redis-server is missing."
    echo "      install it with 'sudo apt-get install -y redis-server' (Debian/Ubuntu) or 'brew install redis' (macOS)"
    exit 1
  fi
  port=$(python -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).port or 6379)' "$REDIS_URL")
  mkdir -p "$GEMQ_RUN_DIR/redis"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$GEMQ_RUN_DIR/redis" --appendonly yes \
    --appendfsync everysec --maxmemory-policy noeviction --daemonize yes \
    --pidfile "$GEMQ_RUN_DIR/redis/redis.pid" --logfile "$GEMQ_RUN_DIR/redis/redis.log"
  for _ in $(seq 50); do python -m scripts.redis_ping "$REDIS_URL" && break; sleep 0.1; done
  echo "gemq: started a private redis-server on port $port (AOF on, data in $GEMQ_RUN_DIR/redis)"
fi

processes="web worker webhooks flower"
if [ -z "${GEMINI_API_KEY:-}" ]; then
  export GEMINI_BASE_URL=${GEMINI_BASE_URL:-http://127.0.0.1:$EMULATOR_PORT}
  processes="$processes emulator"
  echo
  echo "  ################################################################################"
  echo "  #  GEMINI_API_KEY is unset: jobs go to the LOCAL GEMINI EMULATOR at $GEMINI_BASE_URL"
  echo "  #  (deterministic fake text). Set GEMINI_API_KEY to call Google's Gemini API.     "
  echo "  ################################################################################"
fi

cat <<BANNER

  gemq is starting:
    API      http://127.0.0.1:$WEB_PORT        (OpenAPI: http://127.0.0.1:$WEB_PORT/openapi.json)
    Flower   http://127.0.0.1:$FLOWER_PORT       (user:password  $FLOWER_BASIC_AUTH)
    Metrics  http://127.0.0.1:$WEB_PORT/metrics
    API key  $api_key

  Submit a job, then read it (use the "id" from the first answer):
    curl -s -X POST http://127.0.0.1:$WEB_PORT/v1/jobs -H 'Authorization: Bearer $api_key' -H 'Content-Type: application/json' -d '{"prompt": "Write a haiku about queues"}'
    curl -s http://127.0.0.1:$WEB_PORT/v1/jobs/<id> -H 'Authorization: Bearer $api_key'

  Or from the shell:  GEMQ_API_KEY=$api_key .venv/bin/gemq submit "Write a haiku about queues" --wait

BANNER
# shellcheck disable=SC2086
exec honcho start -f Procfile $processes
