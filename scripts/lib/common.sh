# Shared by scripts/install.sh and scripts/uninstall.sh (sourced; bash). The caller sets
# SCRIPT_NAME (message prefix) and DRY_RUN (0/1) before using these, and defines usage().

die() {
  echo "$SCRIPT_NAME: $*" >&2
  exit 1
}

note() { echo "$SCRIPT_NAME: $*"; }

# The options both scripts take. common_option "$@": handles "$1" (and its value) and sets
# OPT_WORDS to the number of words used, or returns 1 when "$1" is not one of them.
common_option() {
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; OPT_WORDS=2 ;;
    --prefix=*) PREFIX=${1#*=}; OPT_WORDS=1 ;;
    --bindir) BINDIR=${2:?--bindir needs a directory}; OPT_WORDS=2 ;;
    --bindir=*) BINDIR=${1#*=}; OPT_WORDS=1 ;;
    --systemctl) SYSTEMCTL=${2:?--systemctl needs auto, yes or no}; OPT_WORDS=2 ;;
    --systemctl=*) SYSTEMCTL=${1#*=}; OPT_WORDS=1 ;;
    -n | --dry-run) DRY_RUN=1; OPT_WORDS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) return 1 ;;
  esac
}

# After parsing: checks PREFIX and BINDIR, drops a trailing slash, settles SYSTEMCTL to yes or no.
check_common_options() {
  safe_path --prefix "$PREFIX"
  safe_path --bindir "$BINDIR"
  PREFIX=${PREFIX%/}
  BINDIR=${BINDIR%/}
  SYSTEMCTL=$(systemctl_mode "$SYSTEMCTL")
}

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
