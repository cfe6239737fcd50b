#!/usr/bin/env bash
# The MCP conformance suite (@modelcontextprotocol/conformance) against `verity serve --http`,
# in both protocol eras. Runs every server scenario that applies to a server without the suite's
# own fixture tools (test_simple_text, test://static-text, ...); the README lists them. A failure
# outside conformance/expected-failures.<era>.yml fails the script, and so does an entry there
# that has started to pass (the lists may only shrink).
# Usage: scripts/conformance.sh [RESULTS_DIR]    (PYTHON picks the interpreter; default python3)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
results="${1:-$(mktemp -d)}"
mkdir -p "$results"
node_bin="$(scripts/node-tools.sh)"  # exits 3 when npm is missing
export PATH="$node_bin:$PATH"

scenarios_2025_11_25=(
  server-initialize server-session-lifecycle ping tools-list server-sse-multiple-streams
  resources-list prompts-list dns-rebinding-protection
)
scenarios_2026_07_28=(
  server-stateless tools-list server-sse-multiple-streams resources-list
  sep-2164-resource-not-found prompts-list dns-rebinding-protection caching
  http-header-validation
)

scratch="$(mktemp -d)"
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "$python" -m verity serve --http --port "$port" \
  --trace-db "$scratch/traces.db" 2>"$scratch/server.log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 300); do
  if "$python" -c "import socket, sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then
    break
  fi
  kill -0 "$server" 2>/dev/null || { cat "$scratch/server.log" >&2; exit 1; }
  sleep 0.1
done

status=0
for era in 2025-11-25 2026-07-28; do
  list="scenarios_${era//-/_}[@]"
  for scenario in "${!list}"; do
    if ! conformance server --url "http://127.0.0.1:$port/mcp" --spec-version "$era" \
        --scenario "$scenario" --expected-failures "conformance/expected-failures.$era.yml" \
        -o "$results/$era" >"$results/$era-$scenario.txt" 2>&1; then
      echo "conformance: $scenario ($era) FAILED" >&2
      tail -40 "$results/$era-$scenario.txt" >&2
      status=1
    else
      echo "conformance: $scenario ($era) ok"
    fi
  done
done
exit "$status"
