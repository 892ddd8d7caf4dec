#!/usr/bin/env bash
# Returns to the previous release in one command: points $DEPLOY_ROOT/current at what
# $DEPLOY_ROOT/previous names (and `previous` at the release it leaves, so a second run undoes
# the first), `pm2 startOrReload` from it (fonana-ws clients get 1001 and reconnect), waits for
# the replaced processes to exit, then checks that every fonana-ws process runs from it and
# answers /health OK, the test client's checks (DEPLOY_CHECK_EMAIL, when set) and the app.
# Migrations are not undone: they are expand-only (README, "Migrations: expand, then contract"),
# so the previous release runs on the current schema. Nothing is built: the release is as it
# was deployed.
#
# Usage: scripts/rollback.sh [--only fonana-ws|fonana] [--no-save]
#   --only      reload one app (the one deployed with --only, typically)
#   --no-save   skip `pm2 save`
# Variables as for deploy.sh: DEPLOY_ROOT (default /srv/fonana), the apps' environment (from
# the environment, else ENV_FILE, $DEPLOY_ROOT/shared/.env or ./.env), PM2_HOME.
# Exit: 0 rolled back and healthy, 1 nothing to roll back to or the release is not healthy.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ops-lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/release-lib.sh"

ONLY="" save=1
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="${2:?--only needs fonana or fonana-ws}"; shift 2 ;;
    --no-save) save=0; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$self"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
case "$ONLY" in "" | fonana | fonana-ws) ;; *) die "--only must be fonana or fonana-ws, not $ONLY" ;; esac
cd "$OPS_ROOT"

started=$SECONDS
step "Checks"
check_node
[ -d "$DEPLOY_ROOT/releases" ] || die "no releases in DEPLOY_ROOT=$DEPLOY_ROOT"
release_init
release_env_file
check_ws_env
current="$(release_of current)" previous="$(release_of previous)"
[ -n "$previous" ] || die "no previous release recorded in $DEPLOY_ROOT (previous is set by a successful deploy)"
[ -d "$RELEASES_DIR/$previous" ] || die "the previous release releases/$previous is gone"
[ "$previous" != "$current" ] || die "previous and current are the same release ($current)"
ok "current releases/${current:-?} -> releases/$previous"

step "Switch to releases/$previous"
old_pids=()
[ "$ONLY" != fonana ] && mapfile -t old_pids < <(app_pids fonana-ws)
point current "$previous"
[ -n "$current" ] && point previous "$current"
ok "current -> releases/$previous, previous -> releases/${current:-nothing}"

step "PM2"
reload_current "${old_pids[@]}" || die "pm2 could not reload releases/$previous (current points at it; check npx pm2 logs)"

step "Verify releases/$previous"
verify_release "$previous" || die "rolled back to releases/$previous, but it fails its checks: $VERIFY_FAILURE"

if [ "$save" -eq 1 ]; then
  "$(pm2_bin)" save >/dev/null && ok "pm2 save"
fi
step "Rolled back to releases/$previous in $((SECONDS - started)) s"
