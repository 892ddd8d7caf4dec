#!/usr/bin/env bash
# Prepares a machine to run the WebSocket server (fonana-ws) from this checkout:
#   1. checks Node.js (>= 20.19) and that dependencies are installed (npm ci),
#   2. checks the environment: DATABASE_URL and NEXTAUTH_SECRET required; REDIS_URL,
#      WS_PUBLISH_SECRET, ALLOWED_ORIGINS recommended,
#   3. checks that Redis (when REDIS_URL is set) and PostgreSQL answer,
#   4. applies the database migrations,
#   5. compiles the server to JavaScript (WS_DIST_DIR, default websocket-server/dist) and checks
#      that the build loads,
#   6. prints what to run next.
# Safe to run again: migrations already applied are skipped and the build is rewritten.
#
# Variables come from the environment, else from ENV_FILE or ./.env (never overriding).
# Usage: scripts/setup-websocket-server.sh [--check]   (--check: steps 1-3 only, changes nothing)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ops-lib.sh"

check_only=0
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done
cd "$OPS_ROOT"

step "Node.js"
check_node
step "Environment"
load_env_file
check_ws_env
step "Services"
check_redis
check_database
if [ "$check_only" -eq 1 ]; then
  step "Checks passed (--check: nothing changed)"
  exit 0
fi
step "Database migrations"
migrate
step "Build"
build_ws
smoke_ws_build

port="${WS_PORT:-3002}"
step "Ready. Next:"
cat <<NEXT
  Start it in the foreground:      node --enable-source-maps $(ws_entry)
                                   (npm run ws:start:prod when WS_DIST_DIR is the default)
  Or under PM2 (cluster mode):     WS_INSTANCES=${WS_INSTANCES:-1} npx pm2 start ecosystem.config.cjs --only fonana-ws
  Check it:                        scripts/health-check.sh http://127.0.0.1:${port}/health
  Try it end to end:               npm run ws:test-client -- --url ws://127.0.0.1:${port}/ws --email alice@example.com
  Put nginx in front:              see nginx/sites-available/fonana.conf
NEXT
