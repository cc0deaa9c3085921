#!/usr/bin/env bash
# Removes what scripts/install.sh installed: stops and disables the units, removes them, the
# program under PREFIX and the `vqd` command. The data (/var/lib/vqd), the configuration
# (/etc/vqd), the secrets (/etc/credstore/vqd-*) and the user `vqd` are kept unless --purge.
#
# --dry-run prints every command without changing anything.
set -euo pipefail
SCRIPT_NAME=uninstall
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

PREFIX=/opt/vqd
BINDIR=/usr/local/bin
PURGE=0
DRY_RUN=0
SYSTEMCTL=auto
SERVICE_USER=vqd
UNITS=(vqd.service vqd-worker.service)
UNITDIR=/etc/systemd/system

usage() {
  cat <<'EOF'
usage: sudo scripts/uninstall.sh [options]
  --prefix DIR       where the program was installed (default /opt/vqd)
  --bindir DIR       where the `vqd` command was installed (default /usr/local/bin)
  --purge            also delete /var/lib/vqd (database, outputs), /etc/vqd, /etc/credstore/vqd-*,
                     the units' drop-ins and the user vqd
  --systemctl MODE   auto (default: only when systemd is running), yes, or no
  -n, --dry-run      print the commands instead of running them
  -h, --help         this text
EOF
}

while [ $# -gt 0 ]; do
  if common_option "$@"; then
    shift "$OPT_WORDS"
    continue
  fi
  case "$1" in
    --purge) PURGE=1; shift ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

check_common_options

if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo scripts/uninstall.sh), or try --dry-run"
fi
# Never delete a tree this script's sibling did not install.
if [ -e "$PREFIX" ] && [ ! -f "$PREFIX/.vqd-install" ]; then
  die "$PREFIX has no .vqd-install marker: it was not installed by scripts/install.sh; not removing it"
fi

# --- Units ----------------------------------------------------------------------------------------
if [ "$SYSTEMCTL" = yes ]; then
  for unit in "${UNITS[@]}"; do
    if [ -e "$UNITDIR/$unit" ]; then run systemctl disable --now "$unit"; fi
  done
else
  note "systemd is not running here (or --systemctl no): not stopping or disabling units"
fi
for unit in "${UNITS[@]}"; do
  if [ -e "$UNITDIR/$unit" ] || [ "$DRY_RUN" = 1 ]; then run rm -f -- "$UNITDIR/$unit"; fi
done
if [ "$PURGE" = 1 ]; then
  for unit in "${UNITS[@]}"; do run rm -rf -- "$UNITDIR/$unit.d"; done
fi
[ "$SYSTEMCTL" = no ] || run systemctl daemon-reload

# --- Program and command -----------------------------------------------------------------------------
if [ -e "$PREFIX" ] || [ "$DRY_RUN" = 1 ]; then run rm -rf -- "$PREFIX"; fi
if [ -f "$BINDIR/vqd" ] && grep -q "installed by scripts/install.sh" "$BINDIR/vqd"; then
  run rm -f -- "$BINDIR/vqd"
elif [ "$DRY_RUN" = 1 ]; then
  run rm -f -- "$BINDIR/vqd"
fi

# --- Data, configuration, secrets, user ------------------------------------------------------------------
if [ "$PURGE" = 1 ]; then
  run rm -rf -- /var/lib/vqd /etc/vqd
  shopt -s nullglob
  secrets=(/etc/credstore/vqd-* /etc/credstore/vqd.*)
  shopt -u nullglob
  [ ${#secrets[@]} -eq 0 ] || run rm -f -- "${secrets[@]}"
  if getent passwd "$SERVICE_USER" >/dev/null || [ "$DRY_RUN" = 1 ]; then run userdel "$SERVICE_USER"; fi
  note "purged the data, the configuration, the secrets and the user $SERVICE_USER"
else
  note "kept /var/lib/vqd (database, outputs), /etc/vqd, /etc/credstore/vqd-* and the user $SERVICE_USER (--purge removes them)"
fi
note "vqd removed from $PREFIX"
