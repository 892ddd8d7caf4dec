#!/usr/bin/env bash
# Health check of the WebSocket server for monitors, load balancers and scripts.
#
#   scripts/health-check.sh [URL] [--timeout MS] [--json]
#
# URL defaults to http://127.0.0.1:${WS_PORT:-3002}/health (a base URL gets /health appended).
# Prints one line (`OK fonana-ws node=… connections=… redis=… database=…`), or the JSON body
# with --json, and exits with the Nagios convention:
#   0  OK        200 {"status":"ok"}
#   2  CRITICAL  503 {"status":"degraded"} (database or Redis down, or shutting down), or no
#                answer at all (refused, timeout, not the health JSON)
#   3  UNKNOWN   bad arguments
# Under PM2 cluster mode each call reaches one process of the port; every process answers for
# itself (its own Redis and database connections).
set -uo pipefail

url="" timeout_ms=3000 json=0
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout_ms="${2:?--timeout needs milliseconds}"; shift 2 ;;
    --json) json=1; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 3 ;;
    *) url="$1"; shift ;;
  esac
done
url="${url:-http://127.0.0.1:${WS_PORT:-3002}/health}"
case "$url" in */health) ;; *) url="${url%/}/health" ;; esac

# node is on every machine that runs the server; curl may not be.
exec node --input-type=module -e '
  const [url, timeoutMs, json] = process.argv.slice(1);
  let response, body;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(Number(timeoutMs)) });
    body = await response.json();
  } catch (error) {
    const reason = error?.name === "TimeoutError" ? `no answer in ${timeoutMs} ms` : (error?.cause?.code ?? error?.cause?.message ?? error?.message ?? String(error));
    console.log(`CRITICAL fonana-ws ${url}: ${response ? `HTTP ${response.status}, not the health JSON` : reason}`);
    process.exit(2);
  }
  if (json === "1") console.log(JSON.stringify(body));
  else {
    const fields = ["nodeId", "state", "connections", "channels", "subscriptions", "redis", "database", "uptimeSeconds"]
      .filter((k) => body[k] !== undefined).map((k) => `${k}=${body[k]}`).join(" ");
    console.log(`${response.status === 200 && body.status === "ok" ? "OK" : "CRITICAL"} fonana-ws ${body.status ?? "?"} (HTTP ${response.status}) ${fields}`);
  }
  process.exit(response.status === 200 && body.status === "ok" ? 0 : 2);
' "$url" "$timeout_ms" "$json"
