#!/usr/bin/env bash
# Prepares a machine to run the WebSocket server (fonana-ws) from this checkout:
#   1. checks Node.js (>= 20.19) and that dependencies are installed (npm ci),
#   2. checks the environment: DATABASE_URL and NEXTAUTH_SECRET required; REDIS_URL,
#      WS_PUBLISH_SECRET, ALLOWED_ORIGINS recommended,
#   3. checks that Redis (when REDIS_URL is set) and PostgreSQL answer,
#   4. applies the database migrations,
#   5. compiles the server to JavaScript (WS_DIST_DIR, default websocket-server/dist) and checks
#      that the build loads,
#   6. prints what to run next: pm2 start, and what it does not do itself: `pm2 startup` +
#      `pm2 save` (start at boot) and --install-logrotate.
# Safe to run again: migrations already applied are skipped and the build is rewritten.
#
# Variables come from the environment, else from ENV_FILE or ./.env (never overriding).
# Usage: scripts/setup-websocket-server.sh [--check | --install-logrotate]
#   --check              steps 1-3 only, changes nothing
#   --install-logrotate  only this: writes ops/logrotate/fonana for LOG_DIR (default ./logs) to
#                        LOGROTATE_DIR (default /etc/logrotate.d, so as root) and checks it with
#                        `logrotate -d`. Never implied: it changes the system, not the checkout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ops-lib.sh"

check_only=0 install_logrotate=0
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    --install-logrotate) install_logrotate=1 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done
cd "$OPS_ROOT"

# LOG_DIR as ecosystem.config.js resolves it (relative to the checkout), created like it does.
resolve_log_dir() { mkdir -p "${LOG_DIR:-logs}" && (cd "${LOG_DIR:-logs}" && pwd); }
logrotate_dir="${LOGROTATE_DIR:-/etc/logrotate.d}"

if [ "$install_logrotate" -eq 1 ]; then
  load_env_file
  log_dir="$(resolve_log_dir)" || die "cannot create LOG_DIR ${LOG_DIR:-logs}"
  step "logrotate for the PM2 logs in $log_dir"
  target_dir="$logrotate_dir"
  [ -d "$target_dir" ] || die "$target_dir does not exist (apt-get install logrotate)"
  [ -w "$target_dir" ] || die "cannot write $target_dir: run as root (sudo $0 --install-logrotate)"
  owner="$(stat -c %U "$log_dir")" group="$(stat -c %G "$log_dir")"
  # 0644 and owned by whoever runs this: logrotate ignores a config file others can write.
  sed -e "s#@LOG_DIR@#$log_dir#g" -e "s#@LOG_OWNER@#$owner#g" -e "s#@LOG_GROUP@#$group#g" ops/logrotate/fonana >"$target_dir/fonana.tmp"
  chmod 0644 "$target_dir/fonana.tmp"
  mv "$target_dir/fonana.tmp" "$target_dir/fonana"
  ok "wrote $target_dir/fonana ($log_dir/*.log, daily or above 100 MB, 14 kept, copytruncate, as $owner:$group)"
  if command -v logrotate >/dev/null 2>&1; then
    state="$(mktemp)"
    out="$(logrotate -d -s "$state" "$target_dir/fonana" 2>&1)" || { rm -f "$state"; printf '%s\n' "$out" >&2; die "logrotate refuses $target_dir/fonana"; }
    rm -f "$state"
    ok "logrotate -d accepts it"
  else
    warn "logrotate is not installed (apt-get install logrotate): nothing will rotate these logs"
  fi
  exit 0
fi

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
  Or under PM2 (cluster mode):     WS_INSTANCES=${WS_INSTANCES:-1} npx pm2 start ecosystem.config.js --only fonana-ws
                                   (every app: npm run build, then npx pm2 start ecosystem.config.js)
  Check it:                        scripts/health-check.sh http://127.0.0.1:${port}/health
                                   (each process: http://127.0.0.1:${METRICS_PORT:-9610}/metrics, +1, +2…)
  Try it end to end:               npm run ws:test-client -- --url ws://127.0.0.1:${port}/ws --email alice@example.com
  Put nginx in front:              see nginx/sites-available/fonana.conf
NEXT

# Not done here, only offered: both change the machine, not this checkout.
pm2_path="$OPS_ROOT/node_modules/.bin/pm2"
step "Start at boot (once per machine; not run by this script)"
cat <<BOOT
  $pm2_path startup systemd -u $(id -un) --hp $HOME
      as root it installs the systemd unit pm2-$(id -un); as another user it prints the sudo
      line to run. The unit resurrects PM2_HOME=$HOME/.pm2 (the default; keep PM2_HOME unset).
  $pm2_path save
      after every pm2 start: the process list the unit restores (deploy.sh saves it for you).
BOOT
step "Log rotation (not run by this script)"
log_dir="$(resolve_log_dir)" || die "cannot create LOG_DIR ${LOG_DIR:-logs}"
if [ -f "$logrotate_dir/fonana" ]; then
  ok "$logrotate_dir/fonana is installed"
else
  cat <<ROTATE
  sudo $OPS_ROOT/scripts/setup-websocket-server.sh --install-logrotate
      rotates $log_dir/*.log (ops/logrotate/fonana: daily or above 100 MB, 14 kept, copytruncate)
ROTATE
fi
