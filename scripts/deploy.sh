#!/usr/bin/env bash
# Deploys the checked-out release under PM2, without dropping the WebSocket service:
#   1. checks Node.js, the environment, Redis and the database (as setup-websocket-server.sh),
#   2. builds: the Next.js app (`next build`) and the WebSocket server (WS_DIST_DIR), and checks
#      that the server build loads — before anything running is touched,
#   3. applies the database migrations (write them backward compatible: old processes keep
#      serving until they are replaced),
#   4. `pm2 startOrReload ecosystem.config.js --update-env`: starts what is not running;
#      fonana-ws (cluster mode) is replaced one process at a time, each new one ready before an
#      old one drains (its clients get 1001 and reconnect); fonana (fork mode) restarts,
#   5. waits for /health of fonana-ws (and for the app to answer), then `pm2 save`.
#
# Usage: scripts/deploy.sh [--only fonana-ws|fonana] [--install] [--no-save]
#   --only      deploy one app (the other is neither built nor reloaded)
#   --install   run `npm ci` first (when package-lock.json changed)
#   --no-save   skip `pm2 save` (the process list PM2 restores at boot)
# Variables come from the environment, else from ENV_FILE or ./.env (never overriding); they
# are handed to the apps by --update-env. PM2_HOME is respected as usual.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ops-lib.sh"

only="" install=0 save=1
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="${2:?--only needs fonana or fonana-ws}"; shift 2 ;;
    --install) install=1; shift ;;
    --no-save) save=0; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$self"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
case "$only" in "" | fonana | fonana-ws) ;; *) die "--only must be fonana or fonana-ws, not $only" ;; esac
deploy_app() { [ "$only" != fonana-ws ]; }
deploy_ws() { [ "$only" != fonana ]; }
cd "$OPS_ROOT"

# One deploy at a time per checkout: two concurrent builds would write the same files.
lock="${TMPDIR:-/tmp}/fonana-deploy-$(printf '%s' "$OPS_ROOT" | cksum | cut -d' ' -f1).lock"
exec 9>"$lock"
flock -n 9 || die "another deploy of $OPS_ROOT is running (lock $lock)"

started=$SECONDS
if [ "$install" -eq 1 ]; then
  step "npm ci"
  npm ci --no-audit --no-fund
fi
step "Checks"
check_node
load_env_file
check_ws_env
check_redis
check_database

step "Build"
if deploy_app; then
  app_started=$SECONDS
  NEXT_TELEMETRY_DISABLED=1 node node_modules/next/dist/bin/next build || die "next build failed; nothing was reloaded"
  ok "built the Next.js app in $((SECONDS - app_started)) s"
fi
if deploy_ws; then
  build_ws
  smoke_ws_build
fi

step "Database migrations"
migrate

step "PM2"
pm2="$(pm2_bin)"
only_args=()
[ -n "$only" ] && only_args=(--only "$only")
reload_started=$SECONDS
"$pm2" startOrReload ecosystem.config.js --update-env "${only_args[@]}"
ok "pm2 startOrReload done in $((SECONDS - reload_started)) s (PM2_HOME=${PM2_HOME:-~/.pm2})"

step "Health"
if deploy_ws; then
  ws_url="http://127.0.0.1:${WS_PORT:-3002}/health"
  for attempt in $(seq 1 40); do
    if line="$("$OPS_ROOT/scripts/health-check.sh" "$ws_url")"; then break; fi
    [ "$attempt" -eq 40 ] && die "fonana-ws is not healthy after 20 s: $line (logs: npx pm2 logs fonana-ws)"
    sleep 0.5
  done
  ok "$line"
fi
if deploy_app; then
  app_url="http://127.0.0.1:${PORT:-3000}/"
  for attempt in $(seq 1 60); do
    # Any answer below 500 means Next.js is serving (/ may redirect to the sign-in page).
    if status="$(node -e 'fetch(process.argv[1], { redirect: "manual", signal: AbortSignal.timeout(2000) }).then((r) => { console.log(r.status); process.exit(r.status < 500 ? 0 : 1); }, () => process.exit(1))' "$app_url")"; then break; fi
    [ "$attempt" -eq 60 ] && die "the app does not answer at $app_url after 30 s (logs: npx pm2 logs fonana)"
    sleep 0.5
  done
  ok "fonana answers at $app_url (HTTP $status)"
fi

if [ "$save" -eq 1 ]; then
  "$pm2" save >/dev/null && ok "pm2 save: this process list is restored at boot (after pm2 startup)"
fi
step "Deployed in $((SECONDS - started)) s"
