#!/usr/bin/env bash
# Deploys a release under PM2 and keeps the one before it, switching back by itself when the new
# one fails its checks (layout: scripts/release-lib.sh; decision: docs/adr/, deploy and rollback):
#   1. checks Node.js, the environment, Redis and the database (as setup-websocket-server.sh),
#   2. prepares $DEPLOY_ROOT/releases/<id>: the sources of a commit (`git archive`, default HEAD
#      of this checkout) or of --source DIR; node_modules hardlinked from the current release or
#      this checkout when package-lock.json is the same, else `npm ci`; the Prisma client,
#   3. builds in the release: the Next.js app and the WebSocket server (WS_DIST_DIR, relative),
#      and checks that the server build loads — before anything running is touched,
#   4. applies the release's migrations. They must be expand-only (README, "Migrations: expand,
#      then contract"): the running release, and the one a rollback returns to, run on them;
#      then starts the release's server once on a free port and waits for /health OK,
#   5. points `current` at the release and runs `pm2 startOrReload current/ecosystem.config.js
#      --update-env`: fonana-ws (cluster mode) is replaced one process at a time, each new one
#      ready before an old one drains (its clients get 1001 and reconnect); fonana restarts,
#   6. verifies the release as clients see it, once the old processes have exited: every
#      fonana-ws process runs from it, answers /health OK, and the test client's checks pass
#      (as DEPLOY_CHECK_EMAIL, when set); the app answers,
#   7. on success: `previous` = the release that ran before, `pm2 save`, older releases pruned;
#      on a failure in 5-6: `current` back to the release that ran before, reload it, check its
#      health, mark the new one .failed, exit 1. A failure before 5 switches nothing.
#
# Usage: scripts/deploy.sh [--only fonana-ws|fonana] [--ref REF | --source DIR]
#                          [--next-build DIR] [--install] [--no-save]
#   --only        deploy one app; the other's build is carried over from the current release
#                 (hardlinked), so a restart of it from `current` runs what it ran before
#   --ref REF     the commit to deploy (default HEAD of this checkout)
#   --source DIR  deploy this tree instead (an export, a CI artifact; node_modules, .git, builds
#                 in it are ignored)
#   --next-build DIR  use this Next.js build (a `.next` directory made from the same sources)
#                 instead of running `next build`
#   --install     always `npm ci` in the release, even when package-lock.json is unchanged
#   --no-save     skip `pm2 save` (the process list PM2 restores at boot)
# Variables: DEPLOY_ROOT (default /srv/fonana), KEEP_RELEASES (5, at least 2),
# DEPLOY_CHECK_EMAIL (a user the test client connects as), and the apps' own: from the
# environment, else ENV_FILE, $DEPLOY_ROOT/shared/.env or ./.env (never overriding); they are
# handed to the apps by --update-env. LOG_DIR defaults to $DEPLOY_ROOT/shared/logs. PM2_HOME is
# respected as usual. Back to the previous release by hand: scripts/rollback.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ops-lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/release-lib.sh"

ONLY="" install=0 save=1 ref=HEAD source_dir="" next_build=""
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="${2:?--only needs fonana or fonana-ws}"; shift 2 ;;
    --ref) ref="${2:?--ref needs a commit}"; shift 2 ;;
    --source) source_dir="${2:?--source needs a directory}"; shift 2 ;;
    --next-build) next_build="${2:?--next-build needs a directory}"; shift 2 ;;
    --install) install=1; shift ;;
    --no-save) save=0; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$self"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
case "$ONLY" in "" | fonana | fonana-ws) ;; *) die "--only must be fonana or fonana-ws, not $ONLY" ;; esac
deploy_app() { [ "$ONLY" != fonana-ws ]; }
deploy_ws() { [ "$ONLY" != fonana ]; }
[ -z "$source_dir" ] || [ -d "$source_dir" ] || die "--source $source_dir is not a directory"
[ -z "$next_build" ] || [ -d "$next_build" ] || die "--next-build $next_build is not a directory"
[ -n "$source_dir" ] && source_dir="$(cd "$source_dir" && pwd)"
[ -n "$next_build" ] && next_build="$(cd "$next_build" && pwd)"
cd "$OPS_ROOT"

started=$SECONDS
step "Checks"
check_node
release_init
release_env_file
check_ws_env
check_redis
check_database
ok "DEPLOY_ROOT=$DEPLOY_ROOT (current: $(release_of current || true), previous: $(release_of previous || true))"

# ---------------------------------------------------------------------------------------------
step "Release"
if [ -n "$source_dir" ]; then
  label="$(basename "$source_dir" | tr -c 'A-Za-z0-9._\n-' '-')"
else
  label="$(git -C "$OPS_ROOT" rev-parse --short "$ref^{commit}" 2>/dev/null)" || die "--ref $ref is not a commit of $OPS_ROOT"
fi
id="$(date -u +%Y%m%dT%H%M%SZ)-$label"
n=1
while [ -e "$RELEASES_DIR/$id" ]; do n=$((n + 1)); id="$(date -u +%Y%m%dT%H%M%SZ)-$label-$n"; done
release="$RELEASES_DIR/$id"
mkdir "$release"
# From here until the switch, a failure leaves the release marked and changes nothing running.
phase=prepare
on_exit() {
  local code=$?
  if [ "$code" -ne 0 ] && [ "$phase" = prepare ]; then
    printf 'failed before the switch (exit %s)\n' "$code" >"$release/.failed"
    fail "release $id was not switched to; nothing running was changed"
  fi
}
trap on_exit EXIT

if [ -n "$source_dir" ]; then
  tar -C "$source_dir" --exclude=./.git --exclude=./node_modules --exclude=./websocket-server/node_modules \
    --exclude=./.next --exclude=./websocket-server/dist --exclude=./generated --exclude=./logs --exclude=./.pm2 \
    -cf - . | tar -C "$release" -xf -
  printf 'source=%s\n' "$source_dir" >"$release/.release"
else
  git -C "$OPS_ROOT" archive --format=tar "$ref" | tar -C "$release" -xf -
  printf 'commit=%s\n' "$(git -C "$OPS_ROOT" rev-parse "$ref^{commit}")" >"$release/.release"
fi
printf 'created=%s\n' "$(date -u +%FT%TZ)" >>"$release/.release"
ok "releases/$id from ${source_dir:-$ref}"

current="$(release_of current)"
current_dir=""
[ -n "$current" ] && [ -d "$RELEASES_DIR/$current" ] && current_dir="$RELEASES_DIR/$current"
# node_modules: a hardlinked copy (seconds, no extra space) of a tree installed from the same
# lock file; `npm ci` otherwise. Hardlinks are safe because npm replaces files, never edits them.
modules_from=""
if [ "$install" -eq 0 ]; then
  for candidate in "$current_dir" "$OPS_ROOT"; do
    if [ -n "$candidate" ] && [ -d "$candidate/node_modules" ] && cmp -s "$candidate/package-lock.json" "$release/package-lock.json"; then
      modules_from="$candidate"
      break
    fi
  done
fi
if [ -n "$modules_from" ]; then
  cp -al "$modules_from/node_modules" "$release/node_modules"
  [ -d "$modules_from/websocket-server/node_modules" ] && cp -al "$modules_from/websocket-server/node_modules" "$release/websocket-server/node_modules"
  ok "node_modules hardlinked from $modules_from (same package-lock.json)"
  (cd "$release" && npm run --silent db:generate >/dev/null 2>&1) || die "prisma generate failed in the release"
else
  (cd "$release" && npm ci --no-audit --no-fund) || die "npm ci failed in the release"
fi
ok "Prisma client generated"

step "Build"
next_dir="${NEXT_DIST_DIR:-.next}"
if deploy_app; then
  if [ -n "$next_build" ]; then
    # NEXT_DIST_DIR may be nested (.next/e2e): its parent must exist for cp to create it.
    mkdir -p "$(dirname "$release/$next_dir")"
    cp -al "$next_build" "$release/$next_dir"
    ok "Next.js build taken from $next_build"
  else
    app_started=$SECONDS
    (cd "$release" && NEXT_TELEMETRY_DISABLED=1 node node_modules/next/dist/bin/next build) || die "next build failed"
    ok "built the Next.js app in $((SECONDS - app_started)) s"
  fi
elif [ -n "$current_dir" ] && [ -d "$current_dir/$next_dir" ]; then
  mkdir -p "$(dirname "$release/$next_dir")"
  cp -al "$current_dir/$next_dir" "$release/$next_dir"
  warn "--only fonana-ws: the Next.js build of releases/$current is carried over (the app is not reloaded)"
fi
if deploy_ws; then
  build_ws "$release"
  smoke_ws_build "$release"
elif [ -n "$current_dir" ] && [ -d "$current_dir/$WS_DIST_DIR" ]; then
  mkdir -p "$(dirname "$release/$WS_DIST_DIR")"
  cp -al "$current_dir/$WS_DIST_DIR" "$release/$WS_DIST_DIR"
  warn "--only fonana: the WebSocket server build of releases/$current is carried over (it is not reloaded)"
fi

step "Database migrations (expand only: the running release keeps working on them)"
migrate "$release"
if deploy_ws; then
  step "Smoke start"
  smoke_start_ws "$release"
fi

# ---------------------------------------------------------------------------------------------
step "Switch to releases/$id"
old_pids=()
deploy_ws && mapfile -t old_pids < <(app_pids fonana-ws)
phase=switched
point current "$id"
ok "current -> releases/$id (was ${current:-nothing})"

# Back to the release that ran before: link, reload, health. Exits 1 in every case.
roll_back() {
  local reason="$1" pids=()
  printf '%s\n' "$reason" >"$release/.failed"
  fail "releases/$id: $reason"
  if [ -z "$current" ] || [ ! -d "$RELEASES_DIR/$current" ]; then
    die "no previous release to roll back to: current still points at the failed releases/$id (fix it and deploy again)"
  fi
  step "Rolling back to releases/$current"
  deploy_ws && mapfile -t pids < <(app_pids fonana-ws)
  point current "$current"
  ok "current -> releases/$current"
  reload_current "${pids[@]}" || die "deploy of releases/$id failed ($reason); the rollback to releases/$current could not reload it: check npx pm2 logs"
  verify_release "$current" || die "deploy of releases/$id failed ($reason); rolled back to releases/$current, which is not healthy either: $VERIFY_FAILURE"
  die "deploy of releases/$id failed ($reason); rolled back to releases/$current, which is healthy again"
}

step "PM2"
reload_current "${old_pids[@]}" || roll_back "pm2 could not start it"

step "Verify releases/$id"
verify_release "$id" || roll_back "$VERIFY_FAILURE"

# ---------------------------------------------------------------------------------------------
step "Keep"
if [ -n "$current" ] && [ "$current" != "$id" ]; then
  point previous "$current"
  ok "previous -> releases/$current (scripts/rollback.sh returns to it)"
fi
if [ "$save" -eq 1 ]; then
  "$(pm2_bin)" save >/dev/null && ok "pm2 save: this process list is restored at boot (after pm2 startup)"
fi
prune_releases
step "Deployed releases/$id in $((SECONDS - started)) s"
