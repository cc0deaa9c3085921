#!/usr/bin/env bash
# Installs what vqd needs on a Debian machine and its npm dependencies. Safe to run again.
# System packages (nats-server, ffmpeg, python3; redis-server and socat for the benchmarks and tests;
# systemd's tools and shellcheck for the unit and script checks) come from apt-get when absent;
# that needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
{ command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; } || need+=(ffmpeg)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v python3 >/dev/null 2>&1 || need+=(python3) # the spawn helper (src/pipeline/spawn-helper.py); test/systemd's sd_notify listener
command -v openssl >/dev/null 2>&1 || need+=(openssl) # test/security: a CA and a server certificate
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck) # test/systemd: install.sh and uninstall.sh
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
