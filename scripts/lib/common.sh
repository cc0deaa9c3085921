# Shared by scripts/install.sh and scripts/uninstall.sh (sourced; bash). The caller sets
# SCRIPT_NAME (message prefix) and DRY_RUN (0/1) before using these.

die() {
  echo "$SCRIPT_NAME: $*" >&2
  exit 1
}

note() { echo "$SCRIPT_NAME: $*"; }

# Paths end up in unit files and sed expressions: keep them to plain characters.
# safe_path WHAT PATH
safe_path() {
  if ! [[ $2 =~ ^/[A-Za-z0-9._/+-]*$ ]] || [[ $2 == *..* ]] || [ "$2" = / ]; then
    die "$1 must be an absolute path of [A-Za-z0-9._/+-] (got '$2')"
  fi
}

# systemctl_mode MODE: checks auto|yes|no and prints yes or no (auto: whether systemd runs here).
systemctl_mode() {
  case "$1" in
    yes | no) echo "$1" ;;
    auto) if [ -d /run/systemd/system ]; then echo yes; else echo no; fi ;;
    *) die "--systemctl takes auto, yes or no (got '$1')" ;;
  esac
}

# Every change goes through run: with --dry-run it prints the command instead.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}
