#!/usr/bin/env bash
# Debian packages, named and laid out as PostgreSQL's own apt packages are:
#
#   postgresql-<major>-motofinai-consistency_<version>-<rev>_<arch>.deb
#       usr/lib/postgresql/<major>/lib/motofinai_consistency.so
#       usr/share/postgresql/<major>/extension/motofinai_consistency.control
#       usr/share/postgresql/<major>/extension/motofinai_consistency--*.sql
#       Depends: postgresql-<major> (the server it was built against)
#   motofinai-check-consistency_<version>-<rev>_<arch>.deb
#       usr/bin/check_consistency
#
# one extension package per supported major (15: Debian's server; 16 and 18:
# built against the PyPI wheels' PostgreSQL 16 and 18 (scripts/common.sh),
# whose server ABI is that of the PGDG/Debian postgresql-16/-18 packages they
# depend on) and one of the command. A release build each (cargo pgrx
# package), stripped.
#
#   bash packaging/build-deb.sh [--majors "15 16 18"] [--out DIR] [--skip-cli]
#
# Prints the path of each .deb it built. Needs the build dependencies of
# scripts/setup.sh (and, for 16 and 18, scripts/common.sh installs their PostgreSQL).
source "$(dirname "$0")/../scripts/common.sh"
MAJORS="15 16 18"
OUT="$ROOT/target/debian"
CLI=1
while [ $# -gt 0 ]; do
    case "$1" in
        --majors) MAJORS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --skip-cli) CLI=0; shift ;;
        *) echo "usage: $0 [--majors \"15 16 18\"] [--out DIR] [--skip-cli]" >&2; exit 2 ;;
    esac
done
EXT=motofinai_consistency
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
REVISION="${DEB_REVISION:-1}"
ARCH="$(dpkg --print-architecture)"
MAINTAINER="${DEB_MAINTAINER:-Motofinai maintainers <maintainers@motofinai.invalid>}"
mkdir -p "$OUT"

# depends_of FILE...: libc6 and libgcc-s1 at the versions the binaries need.
depends_of() {
    local glibc
    glibc="$(objdump -T "$@" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
    echo "libc6 (>= ${glibc:-2.17}), libgcc-s1 (>= 4.2)"
}

# docs PKGROOT PACKAGE: the copyright and changelog Debian policy asks for.
docs() {
    local doc="$1/usr/share/doc/$2"
    install -d "$doc"
    cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: motofinai_consistency

Files: *
Copyright: Motofinai
License: MIT
EOF
    printf '%s (%s-%s) unstable; urgency=medium\n\n  * Built from the motofinai_consistency source tree.\n\n -- %s  %s\n' \
        "$2" "$VERSION" "$REVISION" "$MAINTAINER" "$(date -R)" | gzip -9n >"$doc/changelog.Debian.gz"
}

# finish PKGROOT PACKAGE DEPENDS DESCRIPTION LONG: control file, build the .deb.
finish() {
    local root="$1" pkg="$2" size deb
    size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
    install -d "$root/DEBIAN"
    cat >"$root/DEBIAN/control" <<EOF
Package: $pkg
Version: $VERSION-$REVISION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $size
Depends: $3
Section: database
Priority: optional
Description: $4
$(fold -s -w 72 <<<"$5" | sed 's/ *$//; s/^/ /')
EOF
    find "$root" -type d -exec chmod 755 {} +
    deb="$OUT/${pkg}_${VERSION}-${REVISION}_${ARCH}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
    echo "$deb"
}

for major in $MAJORS; do
    if [ "$major" != 15 ]; then ensure_pg "$major" >&2; fi
    use_major "$major"
    pkg="postgresql-$major-motofinai-consistency"
    log "building $pkg $VERSION-$REVISION (release build against $("$PG_CONFIG" --version))"
    stage="$(mktemp -d)"
    (cd "$ROOT" && cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$stage/pgrx" >&2)
    # cargo pgrx package lays files out under the pg_config's own paths; the
    # package puts them where Debian's postgresql-<major> looks.
    so="$(find "$stage/pgrx" -name "$EXT.so" | head -1)"
    control="$(find "$stage/pgrx" -name "$EXT.control" | head -1)"
    [ -n "$so" ] && [ -n "$control" ] || { echo "cargo pgrx package produced no $EXT.so/.control" >&2; exit 1; }
    root="$stage/root"
    install -d "$root/usr/lib/postgresql/$major/lib" "$root/usr/share/postgresql/$major/extension"
    install -m 644 "$so" "$root/usr/lib/postgresql/$major/lib/"
    strip --strip-unneeded "$root/usr/lib/postgresql/$major/lib/$EXT.so"
    install -m 644 "$control" "$(dirname "$control")/$EXT"--*.sql "$root/usr/share/postgresql/$major/extension/"
    docs "$root" "$pkg"
    finish "$root" "$pkg" "postgresql-$major, $(depends_of "$root/usr/lib/postgresql/$major/lib/$EXT.so")" \
        "Motofinai consistency: optimistic locking and checks for PostgreSQL $major" \
        "The motofinai_consistency extension for PostgreSQL $major: optimistic locking enforced by a row trigger (version and last_modified_at columns, stale writes rejected with SQLSTATE 40001), row helpers, the Motofinai consistency checks as set-returning functions, transaction safety at COMMIT, conflict statistics and check history. Load it with CREATE EXTENSION motofinai_consistency; for conflict statistics add it to shared_preload_libraries."
    rm -rf "$stage"
done

if [ "$CLI" = 1 ]; then
    pkg=motofinai-check-consistency
    log "building $pkg $VERSION-$REVISION (release build)"
    (cd "$ROOT" && cargo build --release -p check_consistency >&2)
    stage="$(mktemp -d)"
    root="$stage/root"
    install -d "$root/usr/bin"
    install -m 755 "${CARGO_TARGET_DIR:-$ROOT/target}/release/check_consistency" "$root/usr/bin/"
    strip --strip-unneeded "$root/usr/bin/check_consistency"
    docs "$root" "$pkg"
    finish "$root" "$pkg" "$(depends_of "$root/usr/bin/check_consistency")" \
        "Motofinai consistency: the check_consistency command" \
        "check_consistency runs the motofinai_consistency extension's checks on a Motofinai database and reports them, for cron and for people; --fix applies the safe repairs. Connects with a URL or the libpq variables, with TLS (sslmode, sslrootcert). Needs the extension in the database, not on this machine."
    rm -rf "$stage"
fi
