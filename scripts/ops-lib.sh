# Shared by the operator scripts (setup-websocket-server.sh, deploy.sh, health-check.sh).
# Sourced, not run. Everything runs from the repository root.

OPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Where the compiled WebSocket server goes; ecosystem.config.js reads the same variable.
WS_DIST_DIR="${WS_DIST_DIR:-websocket-server/dist}"
export WS_DIST_DIR

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  _green=$'\e[32m' _yellow=$'\e[33m' _red=$'\e[31m' _bold=$'\e[1m' _reset=$'\e[0m'
else
  _green='' _yellow='' _red='' _bold='' _reset=''
fi
step() { printf '%s==> %s%s\n' "$_bold" "$*" "$_reset"; }
ok() { printf '  %sok%s    %s\n' "$_green" "$_reset" "$*"; }
warn() { printf '  %swarn%s  %s\n' "$_yellow" "$_reset" "$*"; }
fail() { printf '  %sFAIL%s  %s\n' "$_red" "$_reset" "$*" >&2; }
die() { fail "$*"; exit 1; }

# Loads KEY=VALUE lines from a file (ENV_FILE, else .env if present) into the environment,
# without overriding variables that are already set: the caller's environment wins, so
# `FOO=x scripts/deploy.sh` does what it says. Values are taken literally (surrounding quotes
# removed; no inline comments, no ${VAR} expansion), never evaluated as shell code.
load_env_file() {
  local file="${ENV_FILE:-}"
  if [ -z "$file" ]; then
    [ -f "$OPS_ROOT/.env" ] || return 0
    file="$OPS_ROOT/.env"
  fi
  [ -f "$file" ] || die "ENV_FILE=$file does not exist"
  local line key value count=0
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line#"${line%%[![:space:]]*}"}"
    case "$line" in '' | '#'*) continue ;; esac
    line="${line#export }"
    key="${line%%=*}"
    value="${line#*=}"
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    if [[ "$value" =~ ^\"(.*)\"$ ]] || [[ "$value" =~ ^\'(.*)\'$ ]]; then value="${BASH_REMATCH[1]}"; fi
    if [ -z "${!key+set}" ]; then
      export "$key=$value"
      count=$((count + 1))
    fi
  done <"$file"
  ok "loaded $count variable(s) from $file (already-set variables kept)"
}

# Prisma 7 needs Node ^20.19 (package.json "engines").
check_node() {
  command -v node >/dev/null 2>&1 || die "node not found (Node.js 20.19 or newer is required)"
  local version major minor
  version="$(node -p 'process.versions.node')"
  major="${version%%.*}"
  minor="${version#*.}"
  minor="${minor%%.*}"
  if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; }; then
    die "Node.js $version is too old: 20.19 or newer is required (Prisma 7)"
  fi
  ok "Node.js $version"
  [ -d "$OPS_ROOT/node_modules/typescript" ] && [ -d "$OPS_ROOT/node_modules/ws" ] ||
    die "dependencies are not installed: run npm ci first (with dev dependencies: the build needs TypeScript)"
  ok "dependencies installed"
}

# Variables fonana-ws cannot start without, and those whose absence changes behaviour.
check_ws_env() {
  local missing=0 name
  for name in DATABASE_URL NEXTAUTH_SECRET; do
    if [ -z "${!name:-}" ]; then
      fail "$name is not set"
      missing=1
    fi
  done
  [ "$missing" -eq 0 ] || die "set the variables above (in the environment or in ENV_FILE / .env)"
  ok "DATABASE_URL and NEXTAUTH_SECRET are set"
  [ "${#NEXTAUTH_SECRET}" -ge 32 ] || warn "NEXTAUTH_SECRET is shorter than 32 characters (openssl rand -base64 32)"
  if [ -n "${REDIS_URL:-}" ]; then ok "REDIS_URL set: events fan out through Redis"; else
    warn "REDIS_URL not set: in-process broker, one process only, publish with POST /publish"
    case "${WS_INSTANCES:-1}" in 1) ;; *) die "WS_INSTANCES=${WS_INSTANCES} needs REDIS_URL" ;; esac
  fi
  if [ -n "${WS_PUBLISH_SECRET:-}" ]; then ok "WS_PUBLISH_SECRET set: POST /publish enabled"; else
    warn "WS_PUBLISH_SECRET not set: POST /publish answers 503"
  fi
  [ -n "${ALLOWED_ORIGINS:-}" ] && ok "ALLOWED_ORIGINS=$ALLOWED_ORIGINS" ||
    warn "ALLOWED_ORIGINS not set: any Origin may open a socket with a user's cookie (set it in production)"
}

# Connects with the same client libraries the server uses; prints one line, fails on error.
check_redis() {
  [ -n "${REDIS_URL:-}" ] || return 0
  local out
  if out="$(cd "$OPS_ROOT" && node --input-type=module -e '
    import { Redis } from "ioredis";
    const redis = new Redis(process.env.REDIS_URL, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on("error", () => {});
    try { await redis.connect(); const pong = await redis.ping(); const info = await redis.info("server");
      console.log(`${pong}, redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? "?"}`); }
    catch (error) { console.error(error.message); process.exitCode = 1; }
    finally { redis.disconnect(); }
  ' 2>&1)"; then ok "Redis reachable: $out"; else die "Redis at REDIS_URL is not reachable: $out"; fi
}

check_database() {
  local out
  if out="$(cd "$OPS_ROOT" && node --input-type=module -e '
    import pg from "pg";
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 3000 });
    try { await client.connect(); const { rows } = await client.query("select current_database() as db, version() as v");
      console.log(`${rows[0].db} (${rows[0].v.split(" ").slice(0, 2).join(" ")})`); }
    catch (error) { console.error(error.message); process.exitCode = 1; }
    finally { await client.end().catch(() => {}); }
  ' 2>&1)"; then ok "database reachable: $out"; else die "database at DATABASE_URL is not reachable: $out"; fi
}

# Applies prisma/migrations (the equivalent of `prisma migrate deploy`); a no-op when up to date.
# $1: the tree whose migrations to apply (default the checkout; deploy.sh passes the release).
migrate() {
  local out root="${1:-$OPS_ROOT}"
  out="$(cd "$root" && node node_modules/tsx/dist/cli.mjs scripts/db/migrate.ts 2>&1)" || { printf '%s\n' "$out" >&2; die "migrations failed"; }
  printf '%s\n' "$out" | sed 's/^/        /'
  ok "database schema up to date"
}

# Same as `npm run ws:build` (tsc -p websocket-server/tsconfig.build.json), into WS_DIST_DIR.
# $1: the tree to build (default the checkout; deploy.sh passes the release).
build_ws() {
  local started=$SECONDS root="${1:-$OPS_ROOT}"
  (cd "$root" && node node_modules/typescript/bin/tsc -p websocket-server/tsconfig.build.json --outDir "$WS_DIST_DIR") ||
    die "the WebSocket server does not compile"
  ok "built the WebSocket server into $WS_DIST_DIR in $((SECONDS - started)) s"
}

ws_entry() { printf '%s/websocket-server/src/main.js' "$WS_DIST_DIR"; }

# Loads every module of the build without starting the server: a broken build (a missing file,
# an import that does not resolve) fails here, before PM2 replaces working processes with it.
smoke_ws_build() {
  local dir out root="${1:-$OPS_ROOT}"
  dir="$(cd "$root" && cd "$WS_DIST_DIR/websocket-server/src" 2>/dev/null && pwd)" || die "no build in $WS_DIST_DIR"
  if out="$(node --input-type=module -e '
    import { readdirSync } from "node:fs";
    import path from "node:path";
    import { pathToFileURL } from "node:url";
    const dir = process.argv[1];
    const files = readdirSync(dir, { recursive: true }).filter((f) => f.endsWith(".js") && f !== "main.js");
    for (const file of files) await import(pathToFileURL(path.join(dir, file)).href);
    console.log(files.length);
  ' "$dir" 2>&1)"; then ok "the build loads ($out modules besides main.js)"; else printf '%s\n' "$out" >&2; die "the build does not load"; fi
}

pm2_bin() {
  if [ -x "$OPS_ROOT/node_modules/.bin/pm2" ]; then printf '%s' "$OPS_ROOT/node_modules/.bin/pm2"; else command -v pm2 || die "pm2 not found"; fi
}
