# Releases under DEPLOY_ROOT, shared by deploy.sh and rollback.sh. Sourced after ops-lib.sh.
#
#   $DEPLOY_ROOT/releases/<UTC time>-<commit or source>/   one self-contained tree per release:
#                                          sources, node_modules, builds
#   $DEPLOY_ROOT/current  -> releases/<id>  what PM2 runs: every app's cwd and script go through
#                                          this link (FONANA_ROOT in ecosystem.config.js)
#   $DEPLOY_ROOT/previous -> releases/<id>  the release before it, for rollback.sh
#   $DEPLOY_ROOT/shared/                   what outlives releases: logs/ (LOG_DIR), .env
#   releases/<id>/.release                 where it came from; .failed: why it was rolled back
# Links are relative, so the whole directory can move. See docs/adr/ (deploy and rollback).

DEPLOY_ROOT="${DEPLOY_ROOT:-/srv/fonana}"
RELEASES_DIR="$DEPLOY_ROOT/releases"

# Creates the layout, makes DEPLOY_ROOT absolute, and takes the lock deploy.sh and rollback.sh
# share: one switch at a time (fd 9, released when the script exits).
release_init() {
  mkdir -p "$DEPLOY_ROOT/releases" "$DEPLOY_ROOT/shared" 2>/dev/null || die "cannot create DEPLOY_ROOT=$DEPLOY_ROOT (set DEPLOY_ROOT to a directory you can write)"
  DEPLOY_ROOT="$(cd "$DEPLOY_ROOT" && pwd)"
  RELEASES_DIR="$DEPLOY_ROOT/releases"
  exec 9>"$DEPLOY_ROOT/.lock"
  flock -n 9 || die "another deploy or rollback is running in $DEPLOY_ROOT (lock $DEPLOY_ROOT/.lock)"
  # ecosystem.config.js resolves its paths against this, unresolved (see `root` there).
  export FONANA_ROOT="$DEPLOY_ROOT/current"
  # Logs outlive releases (a relative LOG_DIR is taken from DEPLOY_ROOT, not from a release).
  case "${LOG_DIR:-}" in
    '') export LOG_DIR="$DEPLOY_ROOT/shared/logs" ;;
    /*) ;;
    *) export LOG_DIR="$DEPLOY_ROOT/$LOG_DIR" ;;
  esac
  # Each release holds its own builds: an absolute directory would be shared by all of them.
  case "$WS_DIST_DIR" in /*) die "WS_DIST_DIR must be relative to the release (got $WS_DIST_DIR)" ;; esac
  case "${NEXT_DIST_DIR:-}" in /*) die "NEXT_DIST_DIR must be relative to the release (got $NEXT_DIST_DIR)" ;; esac
}

# The variables file: ENV_FILE, else $DEPLOY_ROOT/shared/.env, else the checkout's .env.
release_env_file() {
  if [ -z "${ENV_FILE:-}" ] && [ -f "$DEPLOY_ROOT/shared/.env" ]; then ENV_FILE="$DEPLOY_ROOT/shared/.env"; fi
  load_env_file
}

# The release id a link points to ('' when the link does not exist).
release_of() {
  local target
  target="$(readlink "$DEPLOY_ROOT/$1" 2>/dev/null)" || return 0
  printf '%s' "${target##*/}"
}

# Points link $1 (current, previous) at release $2, atomically: rename(2) over the old link, so
# a reader sees the old target or the new one, never none.
point() {
  ln -sfn "releases/$2" "$DEPLOY_ROOT/.$1.tmp"
  mv -Tf "$DEPLOY_ROOT/.$1.tmp" "$DEPLOY_ROOT/$1"
}

# PM2's processes as "name status pid" lines (pid 0 when not running).
pm2_processes() {
  "$(pm2_bin)" jlist 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      // The JSON is the last line that parses: a daemon spawned by this call prints first.
      const list = s.split("\n").reverse().filter((l) => l.startsWith("[")).map((l) => { try { return JSON.parse(l); } catch { return null; } }).find(Array.isArray) ?? [];
      for (const p of list) console.log(`${p.name} ${p.pm2_env?.status ?? "?"} ${p.pid ?? 0}`);
    });'
}

# Pids of the online processes of a PM2 app, one a line.
app_pids() { pm2_processes | awk -v app="$1" '$1 == app && $2 == "online" && $3 > 0 { print $3 }'; }

# Starts the release's server once on a free loopback port, with the environment PM2 would give
# it, and waits for /health OK: a release that cannot start (or is unhealthy from the start)
# fails here, before anything running is replaced. Stopped with SIGINT afterwards.
smoke_start_ws() {
  local root="$1" port pid line="" started=$SECONDS log="$1/.smoke-start.log"
  port="$(node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
  (cd "$root" && NODE_ENV=production WS_PORT="$port" WS_HOST=127.0.0.1 METRICS_PORT='' exec node --enable-source-maps "$WS_DIST_DIR/websocket-server/src/main.js") >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 60); do
    if line="$("$OPS_ROOT/scripts/health-check.sh" "http://127.0.0.1:$port/health" --timeout 1000)"; then break; fi
    alive "$pid" || break
    sleep 0.25
  done
  alive "$pid" && kill -INT "$pid" 2>/dev/null
  wait_gone 10 "$pid" || kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  case "$line" in
    OK*) ok "the release's server starts: /health OK on 127.0.0.1:$port in $((SECONDS - started)) s (stopped again)" ;;
    *) { grep -m 3 -E 'Error|error' "$log" || tail -n 5 "$log"; } | cut -c1-300 | sed 's/^/        /' >&2; die "the release's server does not start healthy (${line:-it exited}); log: $log" ;;
  esac
}

# True while pid $1 runs (a zombie nobody reaped yet counts as gone: it holds no socket).
alive() { [ -r "/proc/$1/stat" ] && ! awk '{ sub(/.*\) /, ""); exit ($1 == "Z" || $1 == "X") ? 0 : 1 }' "/proc/$1/stat"; }

# Waits up to $1 seconds for every pid in the rest of the arguments to exit.
wait_gone() {
  local seconds="$1" pid left
  shift
  for _ in $(seq 1 $((seconds * 4))); do
    left=0
    for pid in "$@"; do alive "$pid" && left=1; done
    [ "$left" -eq 0 ] && return 0
    sleep 0.25
  done
  return 1
}

# `pm2 startOrReload` of the release `current` points at, for the apps of $ONLY (all if empty).
# Then waits for the processes it replaced ($@, old fonana-ws pids) to have exited, so what
# answers afterwards is the new release only. Returns non-zero on failure.
reload_current() {
  local pm2 only_args=() started=$SECONDS drain
  local action=startOrReload stuck
  pm2="$(pm2_bin)"
  [ -n "${ONLY:-}" ] && only_args=(--only "$ONLY")
  # A reload waits for each new process to be ready; processes that are not online (crashing,
  # waiting for a restart) are restarted instead: there is nothing to hand over from them.
  stuck="$(pm2_processes | awk -v only="${ONLY:-}" '($1 == only || (only == "" && $1 ~ /^fonana(-ws|-outbox)?$/)) && $2 != "online"' | wc -l)"
  if [ "$stuck" -gt 0 ]; then
    action=startOrRestart
    warn "$stuck process(es) not online: restarting instead of reloading"
  fi
  "$pm2" "$action" "$DEPLOY_ROOT/current/ecosystem.config.js" --update-env "${only_args[@]}" || { fail "pm2 $action failed"; return 1; }
  # kill_timeout of fonana-ws (SHUTDOWN_TIMEOUT_MS + 5 s) plus a margin.
  drain=$(( (${SHUTDOWN_TIMEOUT_MS:-5000} + 5000) / 1000 + 5 ))
  if [ $# -gt 0 ] && ! wait_gone "$drain" "$@"; then fail "old fonana-ws processes still run ${drain} s after the reload"; return 1; fi
  ok "pm2 $action done in $((SECONDS - started)) s (PM2_HOME=${PM2_HOME:-~/.pm2})"
}

# Checks the running release $1, as clients will see it. Returns non-zero with the reason in
# VERIFY_FAILURE. fonana-ws: every process runs from releases/$1 (its cwd), every process
# answers /health OK, and the test client's checks pass (DEPLOY_CHECK_EMAIL); fonana: answers.
verify_release() {
  local id="$1" dir pids pid cwd line out status ok_ids=() n
  VERIFY_FAILURE=""
  dir="$(cd "$RELEASES_DIR/$id" && pwd -P)"
  if [ "${ONLY:-}" != fonana ]; then
    # A restart (not a reload) returns before its processes are ready: wait up to 20 s.
    for attempt in $(seq 1 40); do
      mapfile -t pids < <(app_pids fonana-ws)
      [ "${#pids[@]}" -gt 0 ] && [ "$(pm2_processes | awk '$1 == "fonana-ws" && $2 != "online"' | wc -l)" -eq 0 ] && break
      [ "$attempt" -eq 40 ] && { VERIFY_FAILURE="fonana-ws processes are not online after 20 s ($(pm2_processes | awk '$1 == "fonana-ws" { print $2 }' | sort | uniq -c | paste -sd, -))"; return 1; }
      sleep 0.5
    done
    if [ -d /proc/self ]; then
      for pid in "${pids[@]}"; do
        cwd="$(readlink -f "/proc/$pid/cwd" 2>/dev/null || true)"
        [ "$cwd" = "$dir" ] || { VERIFY_FAILURE="fonana-ws pid $pid runs from ${cwd:-?}, not releases/$id"; return 1; }
      done
      ok "fonana-ws pid(s) ${pids[*]} run from releases/$id"
    fi
    # Each fresh connection reaches the next process (cluster round robin): collect distinct
    # healthy nodes until there are as many as processes.
    for attempt in $(seq 1 40); do
      if line="$("$OPS_ROOT/scripts/health-check.sh" "http://127.0.0.1:${WS_PORT:-3002}/health")"; then
        n="$(printf '%s' "$line" | sed -n 's/.*nodeId=\([^ ]*\).*/\1/p')"
        case " ${ok_ids[*]} " in *" $n "*) ;; *) ok_ids+=("$n") ;; esac
        [ "${#ok_ids[@]}" -ge "${#pids[@]}" ] && break
      fi
      [ "$attempt" -eq 40 ] && { VERIFY_FAILURE="fonana-ws is not healthy after 20 s: $line"; return 1; }
      sleep 0.5
    done
    ok "$line (${#ok_ids[@]} of ${#pids[@]} process(es) healthy)"
    if [ -n "${DEPLOY_CHECK_EMAIL:-}" ]; then
      # The deploying checkout's client checks the release: the verifier is not the thing verified.
      if out="$(node "$OPS_ROOT/node_modules/tsx/dist/cli.mjs" "$OPS_ROOT/scripts/test-client/main.ts" \
        --email "$DEPLOY_CHECK_EMAIL" --url "ws://127.0.0.1:${WS_PORT:-3002}/ws" \
        ${ALLOWED_ORIGINS:+--origin "$(printf '%s' "${ALLOWED_ORIGINS%%,*}" | tr -d ' ')"} --timeout 5000 2>&1)"; then
        printf '%s\n' "$out" | grep -E 'PASS|SKIP|test-client:' | sed 's/^ */        /'
        ok "test client: every check passed as $DEPLOY_CHECK_EMAIL"
      else
        printf '%s\n' "$out" | sed 's/^ */        /' >&2
        VERIFY_FAILURE="the test client's checks failed: $(printf '%s\n' "$out" | grep -E 'FAIL|cannot get a session|crashed' | sed 's/  */ /g' | head -3 | paste -sd ';' -)"
        return 1
      fi
    else
      warn "DEPLOY_CHECK_EMAIL not set: the test client's checks are skipped, /health alone decides"
    fi
  fi
  if [ "${ONLY:-}" != fonana-ws ]; then
    local app_url="http://127.0.0.1:${PORT:-3000}/"
    for attempt in $(seq 1 60); do
      # Any answer below 500 means Next.js is serving (/ may redirect to the sign-in page).
      if status="$(node -e 'fetch(process.argv[1], { redirect: "manual", signal: AbortSignal.timeout(2000) }).then((r) => { console.log(r.status); process.exit(r.status < 500 ? 0 : 1); }, () => process.exit(1))' "$app_url")"; then break; fi
      [ "$attempt" -eq 60 ] && { VERIFY_FAILURE="the app does not answer at $app_url after 30 s"; return 1; }
      sleep 0.5
    done
    ok "fonana answers at $app_url (HTTP $status)"
  fi
}

# Keeps KEEP_RELEASES releases (default 5, at least 2): current and previous always, then the
# newest others; removes the rest (failed ones included).
prune_releases() {
  local keep="${KEEP_RELEASES:-5}" cur prev kept=0 id removed=()
  [[ "$keep" =~ ^[0-9]+$ ]] && [ "$keep" -ge 2 ] || { warn "KEEP_RELEASES=$keep is not a number >= 2: nothing pruned"; return 0; }
  cur="$(release_of current)" prev="$(release_of previous)"
  [ -n "$cur" ] && kept=$((kept + 1))
  [ -n "$prev" ] && [ "$prev" != "$cur" ] && kept=$((kept + 1))
  for id in $(ls -1 "$RELEASES_DIR" | sort -r); do
    [ "$id" = "$cur" ] || [ "$id" = "$prev" ] && continue
    if [ "$kept" -lt "$keep" ]; then kept=$((kept + 1)); continue; fi
    rm -rf "${RELEASES_DIR:?}/$id" && removed+=("$id")
  done
  if [ "${#removed[@]}" -gt 0 ]; then ok "pruned ${removed[*]} (KEEP_RELEASES=$keep)"; fi
}
