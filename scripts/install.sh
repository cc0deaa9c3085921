#!/usr/bin/env bash
# Installs vqd as a systemd service on this machine (see docs/deploy.md):
#   - builds it (npm ci when needed, npm run build) and installs the program under PREFIX
#     (default /opt/vqd) with its production dependencies only; an upgrade replaces the old tree;
#   - creates the system user `vqd` (no login shell, no home of its own);
#   - installs /etc/vqd/vqd.yaml from config/default.yaml (dataDir: /var/lib/vqd) unless it exists,
#     /etc/credstore/ for secrets, the units vqd.service and vqd-worker.service, and a `vqd`
#     command in BINDIR that uses /etc/vqd/vqd.yaml;
#   - reloads systemd and enables and (re)starts vqd.service (or vqd-worker.service with --worker),
#     unless --no-start.
# Run it again to upgrade: the config and the data are kept.
#
# --dry-run prints every command (and every file it would write) without changing anything.
set -euo pipefail
umask 022
SCRIPT_NAME=install
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

PREFIX=/opt/vqd
BINDIR=/usr/local/bin
DESTDIR=""
UNIT=vqd.service
START=1
BUILD=1
DRY_RUN=0
SYSTEMCTL=auto
SERVICE_USER=vqd

usage() {
  cat <<'EOF'
usage: sudo scripts/install.sh [options]
  --prefix DIR       where the program goes (default /opt/vqd)
  --bindir DIR       where the `vqd` command goes (default /usr/local/bin)
  --worker           enable and start vqd-worker.service instead of vqd.service
  --no-start         install only: do not enable or start a unit
  --skip-build       use the dist/ that is already built
  --systemctl MODE   auto (default: only when systemd is running), yes, or no
  --destdir DIR      stage everything under DIR (packaging): no user, no ownership, no systemctl
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
    --destdir) DESTDIR=${2:?--destdir needs a directory}; shift 2 ;;
    --destdir=*) DESTDIR=${1#*=}; shift ;;
    --worker) UNIT=vqd-worker.service; shift ;;
    --no-start) START=0; shift ;;
    --skip-build) BUILD=0; shift ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

check_common_options
[ -z "$DESTDIR" ] || safe_path --destdir "$DESTDIR"
if [ -n "$DESTDIR" ]; then
  SYSTEMCTL=no
  START=0
fi

cd "$(dirname "$0")/.."
SRC=$(pwd)

# Every change goes through run (a command, lib/common.sh) or write_file (a file from stdin).
# write_file DEST MODE OWNER:GROUP < content   (atomically: a temp file renamed over DEST)
write_file() {
  local dest=$1 mode=$2 owner=$3 tmp
  if [ "$DRY_RUN" = 1 ]; then
    printf '+ write %q (mode %s, owner %s):\n' "$dest" "$mode" "$owner"
    sed 's/^/    | /'
    return
  fi
  tmp=$(mktemp "$dest.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  [ -n "$DESTDIR" ] || chown "$owner" "$tmp"
  mv -f "$tmp" "$dest"
}

# --- Preconditions --------------------------------------------------------------------------
if [ "$DRY_RUN" = 0 ] && [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo scripts/install.sh), or try --dry-run"
fi
NODE=$(command -v node) || die "node is not installed (vqd needs Node.js >= 20.6)"
NODE=$(readlink -f "$NODE")
safe_path node "$NODE"
"$NODE" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 6) ? 0 : 1)' ||
  die "node $("$NODE" --version) is too old: vqd needs >= 20.6"
command -v npm >/dev/null || die "npm is not installed"
if [ "$SYSTEMCTL" = yes ] && ! command -v systemctl >/dev/null; then die "systemctl not found"; fi
NOLOGIN=/usr/sbin/nologin
[ -x "$NOLOGIN" ] || NOLOGIN=/sbin/nologin

ROOT=$DESTDIR
STAGE="$ROOT$PREFIX.new"
UNITDIR="$ROOT/etc/systemd/system"
CONFDIR="$ROOT/etc/vqd"
CREDSTORE="$ROOT/etc/credstore"
STATEDIR="$ROOT/var/lib/vqd"
VERSION=$("$NODE" -p 'require("./package.json").version')

WAS_ACTIVE=0
if [ "$SYSTEMCTL" = yes ] && [ "$START" = 1 ] && systemctl is-active --quiet "$UNIT" 2>/dev/null; then WAS_ACTIVE=1; fi

# --- Build ----------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    run npm ci --no-audit --no-fund
  fi
  run npm run build
elif [ ! -f dist/src/bin/vqd.js ] && [ "$DRY_RUN" = 0 ]; then
  die "--skip-build, but dist/src/bin/vqd.js does not exist: run npm run build"
fi

# --- Program: staged next to PREFIX, then swapped in ------------------------------------------
if [ -e "$ROOT$PREFIX" ] && [ ! -f "$ROOT$PREFIX/.vqd-install" ] && [ -n "$(ls -A "$ROOT$PREFIX" 2>/dev/null)" ]; then
  die "$ROOT$PREFIX exists and was not installed by this script (no .vqd-install); choose another --prefix"
fi
run rm -rf -- "$STAGE"
run mkdir -p -- "$STAGE/dist"
run cp -R -- "$SRC/package.json" "$SRC/package-lock.json" "$SRC/README.md" "$SRC/config" "$SRC/docs" "$SRC/systemd" "$STAGE/"
run cp -R -- "$SRC/dist/src" "$STAGE/dist/"
# The dependencies as built here (better-sqlite3's native module included), minus the dev ones:
# no compiler and no download on the way.
run cp -R -- "$SRC/node_modules" "$STAGE/"
run npm --prefix "$STAGE" prune --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error
run find "$STAGE/node_modules" -mindepth 1 -maxdepth 1 -type d -empty -delete
printf 'vqd %s installed %s from %s\n' "$VERSION" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$SRC" | write_file "$STAGE/.vqd-install" 0644 root:root
[ -n "$DESTDIR" ] || run chown -R root:root -- "$STAGE"
if [ -e "$ROOT$PREFIX" ]; then
  run rm -rf -- "$ROOT$PREFIX.old"
  run mv -- "$ROOT$PREFIX" "$ROOT$PREFIX.old"
fi
run mkdir -p -- "$(dirname "$ROOT$PREFIX")"
run mv -- "$STAGE" "$ROOT$PREFIX"
run rm -rf -- "$ROOT$PREFIX.old"

# --- User and directories ---------------------------------------------------------------------
if [ -n "$DESTDIR" ]; then
  note "--destdir: not creating the user $SERVICE_USER (the package's postinst must)"
elif ! getent passwd "$SERVICE_USER" >/dev/null; then
  run useradd --system --user-group --home-dir /var/lib/vqd --no-create-home --shell "$NOLOGIN" --comment "vqd video queue daemon" "$SERVICE_USER"
fi
OWNER=(-o root -g root)
STATE_OWNER=(-o "$SERVICE_USER" -g "$SERVICE_USER")
if [ -n "$DESTDIR" ]; then
  OWNER=()
  STATE_OWNER=()
fi
run install -d -m 0755 "${OWNER[@]}" -- "$CONFDIR" "$UNITDIR" "$ROOT$BINDIR"
# Secrets for LoadCredential= (see the units): root-only.
[ -d "$CREDSTORE" ] || run install -d -m 0700 "${OWNER[@]}" -- "$CREDSTORE"
# systemd creates it too (StateDirectory=); made here so `vqd doctor` works before the first start.
[ -d "$STATEDIR" ] || run install -d -m 0700 "${STATE_OWNER[@]}" -- "$STATEDIR"

# --- Config -------------------------------------------------------------------------------------
if [ -e "$CONFDIR/vqd.yaml" ]; then
  note "keeping $CONFDIR/vqd.yaml (compare with $PREFIX/config/default.yaml after an upgrade)"
else
  {
    echo "# /etc/vqd/vqd.yaml: vqd's configuration, read through VQD_CONFIG by vqd.service,"
    echo "# vqd-worker.service and the vqd command. Installed by scripts/install.sh from"
    echo "# $PREFIX/config/default.yaml: every key shows its default except dataDir. Edit what you"
    echo "# need, then: sudo -u $SERVICE_USER vqd doctor && systemctl restart vqd"
    echo "#"
    echo "# Precedence: built-in defaults < this file < VQD_* environment variables (the units set"
    echo "# VQD_DATADIR). Unknown keys are errors (exit 78, key named). Secrets never go here: use the"
    echo "# *File keys with credential:NAME and put the secret in /etc/credstore/NAME (docs/deploy.md)."
    # The default file's own header ("not read automatically") does not apply to this copy.
    sed -e '1,/^$/d' -e 's|^dataDir: .*|dataDir: /var/lib/vqd|' "$SRC/config/default.yaml"
  } | write_file "$CONFDIR/vqd.yaml" 0640 "root:$SERVICE_USER"
fi

# --- Units and the vqd command --------------------------------------------------------------------
for unit in vqd.service vqd-worker.service; do
  sed -e "s|/usr/bin/node |$NODE |" -e "s|/opt/vqd|$PREFIX|g" "$SRC/systemd/$unit" | write_file "$UNITDIR/$unit" 0644 root:root
done
write_file "$ROOT$BINDIR/vqd" 0755 root:root <<EOF
#!/bin/sh
# vqd command, installed by scripts/install.sh: the service's configuration unless told otherwise.
# Run it as the service user so that files it creates stay usable: sudo -u vqd vqd doctor
: "\${VQD_CONFIG:=/etc/vqd/vqd.yaml}"
export VQD_CONFIG
exec $NODE $PREFIX/dist/src/bin/vqd.js "\$@"
EOF

# --- systemd ------------------------------------------------------------------------------------
if [ "$SYSTEMCTL" = yes ]; then
  run systemctl daemon-reload
  if [ "$START" = 1 ]; then
    run systemctl enable --now "$UNIT"
    # An upgrade: the running daemon drains and comes back on the new program.
    [ "$WAS_ACTIVE" = 0 ] || run systemctl restart "$UNIT"
  fi
elif [ -z "$DESTDIR" ]; then
  note "systemd is not running here (or --systemctl no): units installed, nothing enabled or started"
fi

note "vqd $VERSION installed in $ROOT$PREFIX"
if [ -z "$DESTDIR" ]; then
  note "check it:  sudo -u $SERVICE_USER vqd doctor   |   systemctl status $UNIT   |   journalctl -u $UNIT -f"
fi
