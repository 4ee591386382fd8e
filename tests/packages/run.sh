#!/usr/bin/env bash
# The Debian packages (packaging/build-deb.sh): built for PostgreSQL 15, 16
# and 18 and for the command, inspected, and the PostgreSQL 15 one installed the
# way an operator does, `apt-get install ./<file>.deb`, on a cluster that
# never saw a source build:
#   - each package's name, Depends and files are PostgreSQL's own layout;
#   - 15: the source-built files are moved away first, so everything the
#     cluster loads comes from the package (dpkg -S owns it, dpkg --verify is
#     clean); a new cluster preloading it, CREATE EXTENSION, the regress
#     suite (tests/regress) against it, the packaged check_consistency
#     against a database;
#   - removal (apt-get remove, then purge) takes away exactly the package's
#     files and leaves the databases alone: tables, rows, version columns
#     and values unchanged, the cluster still up;
#   - 16, 18: their postgresql-16/-18 dependency is not installable from
#     Debian bookworm, so these packages are built and inspected, and their
#     files are unpacked (dpkg-deb -x) into the PostgreSQL 16 and 18 of the
#     PyPI wheels (same major, same layout under their lib and share
#     directories) where CREATE EXTENSION and the regress suite run.
# Last, the source-built extension files moved away are put back (also on
# failure), so the rest of a test run and other users of the machine keep
# the build they installed.
# Dirs and ports: $PACKAGE_DIR (the .debs; default /tmp/mfc-packages),
# $PACKAGE_TEST_DIR (default /tmp/mfc-package-test), $PACKAGE_TEST_PORT
# (default 55500) and the next two ports. Run as root.
source "$(dirname "$0")/../../scripts/common.sh"
source "$(dirname "$0")/../lib.sh"
DEBS="${PACKAGE_DIR:-/tmp/mfc-packages}"
DIR="${PACKAGE_TEST_DIR:-/tmp/mfc-package-test}"
PORT="${PACKAGE_TEST_PORT:-55500}"
EXT=motofinai_consistency
PKG15=postgresql-15-motofinai-consistency
CLI=motofinai-check-consistency
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
LIB15=/usr/lib/postgresql/15/lib SHARE15=/usr/share/postgresql/15/extension
BACKUP="$DIR/source-build"

restore() { # put the source-built files back; take our packages away
    stop15 "$DIR/cluster"; stop16 "$DIR/pg16"; stop18 "$DIR/pg18"
    for p in $PKG15 $CLI; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
            && DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$p" >/dev/null 2>&1
    done
    if [ -d "$BACKUP" ] && [ -n "$(ls -A "$BACKUP" 2>/dev/null)" ]; then
        cp -p "$BACKUP/$EXT.so" "$LIB15/" 2>/dev/null || true
        cp -p "$BACKUP/$EXT".control "$BACKUP/$EXT"--*.sql "$SHARE15/" 2>/dev/null || true
        rm -rf "$BACKUP"
    fi
    rm -rf "$tmp"
}
stop15() { (use_major 15; cluster_stop "$1"); }
stop16() { (use_major 16; cluster_stop "$1"); }
stop18() { (use_major 18; cluster_stop "$1"); }
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap restore EXIT

echo "== build (packaging/build-deb.sh)"
as_root rm -rf "$DEBS"
if debs=$(bash "$ROOT/packaging/build-deb.sh" --out "$DEBS"); then pass "packaging/build-deb.sh"
else fail "packaging/build-deb.sh failed"; summary packages; exit 1; fi
echo "$debs" | sed 's/^/    /'
arch=$(dpkg --print-architecture)
deb15="$DEBS/${PKG15}_$VERSION-1_$arch.deb"
debcli="$DEBS/${CLI}_$VERSION-1_$arch.deb"

echo "== inspect (dpkg-deb)"
for major in 15 16 18; do
    deb="$DEBS/postgresql-$major-motofinai-consistency_$VERSION-1_$arch.deb"
    expect_eq "$major: Package" "$(dpkg-deb -f "$deb" Package)" "postgresql-$major-motofinai-consistency"
    expect_eq "$major: Depends on its server first" "$(dpkg-deb -f "$deb" Depends | cut -d, -f1)" "postgresql-$major"
    dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./||' | sort >"$tmp/files$major"
    {
        echo "usr/lib/postgresql/$major/lib/$EXT.so"
        for f in "$ROOT"/sql/$EXT--*.sql; do
            [ -e "$f" ] && echo "usr/share/postgresql/$major/extension/$(basename "$f")"
        done
        echo "usr/share/postgresql/$major/extension/$EXT--$VERSION.sql"
        echo "usr/share/postgresql/$major/extension/$EXT.control"
        echo "usr/share/doc/postgresql-$major-motofinai-consistency/changelog.Debian.gz"
        echo "usr/share/doc/postgresql-$major-motofinai-consistency/copyright"
    } | sort >"$tmp/want$major"
    expect_same "$major: files where postgresql-$major looks for them, and nothing else" "$tmp/want$major" "$tmp/files$major"
done
expect_eq "the command's package: files" "$(dpkg-deb -c "$debcli" | awk '$1 !~ /^d/ {print $6}' | grep -v /doc/ | paste -sd,)" \
    "./usr/bin/check_consistency"
dpkg-deb -I "$deb15" | sed -n 's/^ \(Package\|Version\|Depends\|Installed-Size\):/    \1:/p'

echo "== PostgreSQL 15: apt-get install ./$(basename "$deb15")"
cluster_stop "$DIR/cluster"
as_root rm -rf "$DIR"
as_root install -d "$DIR" "$BACKUP"
# Move the source build aside: what the cluster loads must come from the package.
for f in "$LIB15/$EXT.so" "$SHARE15/$EXT".control "$SHARE15/$EXT"--*.sql; do
    [ -e "$f" ] && mv "$f" "$BACKUP/"
done
expect_eq "no extension files left before the install" "$(ls "$LIB15/$EXT.so" "$SHARE15/$EXT"* 2>/dev/null | wc -l)" 0
if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb15" "$debcli" >"$tmp/apt.log" 2>&1; then
    pass "apt-get install ./$(basename "$deb15") ./$(basename "$debcli")"
else fail "apt-get install:"; cat "$tmp/apt.log"; fi
expect_eq "dpkg -S: the library belongs to the package" "$(dpkg -S "$LIB15/$EXT.so" 2>/dev/null | cut -d: -f1)" $PKG15
expect_eq "dpkg --verify: installed files as packaged" "$(dpkg --verify $PKG15 $CLI 2>&1)" ""
cluster_start "$DIR/cluster" "$PORT" "shared_preload_libraries = '$EXT'"
export PGHOST="$DIR/cluster" PGPORT="$PORT"
fresh_db pkg_db
q -d pkg_db -c "CREATE EXTENSION $EXT"
expect_eq "CREATE EXTENSION from the package: version, library" \
    "$(val -d pkg_db -c "SELECT extversion, (SELECT DISTINCT probin FROM pg_proc WHERE probin LIKE '%motofinai%') FROM pg_extension WHERE extname = '$EXT'")" \
    "$VERSION|\$libdir/$EXT"
expect_eq "statistics on (preloaded from the package)" \
    "$(val -d pkg_db -c "SELECT motofinai.conflict_stats_enabled()")" t

# regress DIR MAJOR_BIN PGXS_TEST HOST PORT: the regress suite; pass/fail per test.
regress() {
    local suite="$1" out status
    as_root cp -r "$ROOT/tests" "$suite"
    [ "$6" = 15 ] || as_root bash "$ROOT/tests/majors/adapt.sh" "$suite"
    as_root chown -R postgres: "$suite"
    local tests
    tests=$(cd "$suite/regress/sql" && ls -- *.sql | sed 's/\.sql$//')
    status=0
    out=$(cd "$suite/regress" && as_pg "$3/regress/pg_regress" --bindir="$2" --host="$4" --port="$5" \
        --inputdir=. --outputdir=. $tests 2>&1) || status=$?
    echo "$out" | grep -E '^(ok|not ok|test |# [0-9]+ of|# All)' | sed 's/^/    /'
    expect_eq "regress suite ($(echo $tests | wc -w) tests) against the PostgreSQL $6 package" "$status" 0
    [ "$status" = 0 ] || head -80 "$suite/regress/regression.diffs"
}
regress "$DIR/suite15" /usr/lib/postgresql/15/bin /usr/lib/postgresql/15/lib/pgxs/src/test "$DIR/cluster" "$PORT" 15

# User data, versioned, then the packaged command against it.
fresh_db pkg_data
load_motofinai pkg_data 200
q -d pkg_data >/dev/null <<'SQL'
SELECT motofinai.enable_versioning('loans_loanapplication');
UPDATE loans_loanapplication SET notes = 'kept' WHERE id % 4 = 0;
SQL
status=0
PGDATABASE=pkg_data /usr/bin/check_consistency --quick >"$tmp/cc" 2>&1 || status=$?
expect_eq "/usr/bin/check_consistency from its package runs the quick check (exit 0 or 1)" "$(( status <= 1 ))" 1
state() {
    val -d pkg_data -c "SELECT count(*), sum(version), md5(string_agg(l::text, ',' ORDER BY id)) FROM loans_loanapplication l"
    val -d pkg_data -c "SELECT md5(string_agg(p::text, ',' ORDER BY id)) FROM payments_payment p"
}
state >"$tmp/before"

echo "== removal leaves the data alone"
if DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq $PKG15 $CLI >"$tmp/apt.log" 2>&1; then pass "apt-get remove"
else fail "apt-get remove:"; cat "$tmp/apt.log"; fi
expect_eq "the package's files are gone" "$(ls "$LIB15/$EXT.so" "$SHARE15/$EXT"* /usr/bin/check_consistency 2>/dev/null | wc -l)" 0
expect_eq "the cluster is still up" "$(val -d postgres -c "SELECT 1")" 1
state >"$tmp/after"
expect_same "tables, rows, version columns and values unchanged" "$tmp/before" "$tmp/after"
expect_eq "the extension's catalog entries stay until DROP EXTENSION" \
    "$(val -d pkg_data -c "SELECT count(*) FROM pg_extension WHERE extname = '$EXT'")" 1
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $PKG15 $CLI >/dev/null 2>&1 || true
expect_eq "purged: dpkg knows it no more" "$(dpkg-query -W -f='${Status}' $PKG15 2>/dev/null | grep -c 'ok installed')" 0
state >"$tmp/after"
expect_same "and after purge" "$tmp/before" "$tmp/after"
stop15 "$DIR/cluster"

n=0
for major in 16 18; do
    n=$((n + 1))
    echo "== PostgreSQL $major: the package's files in the wheel's PostgreSQL $major"
    use_major $major
    rm -rf "$tmp/x"
    dpkg-deb -x "$DEBS/postgresql-$major-motofinai-consistency_$VERSION-1_$arch.deb" "$tmp/x"
    install -m 644 "$tmp/x/usr/lib/postgresql/$major/lib/$EXT.so" "$("$PG_CONFIG" --pkglibdir)/"
    install -m 644 "$tmp/x/usr/share/postgresql/$major/extension/"* "$("$PG_CONFIG" --sharedir)/extension/"
    cluster_start "$DIR/pg$major" "$((PORT + n))" "shared_preload_libraries = '$EXT'"
    expect_eq "$major: CREATE EXTENSION from the package's files" \
        "$(PGHOST="$DIR/pg$major" PGPORT=$((PORT + n)) val -d postgres -c "CREATE EXTENSION $EXT" -c "SELECT extversion FROM pg_extension WHERE extname = '$EXT'")" \
        "$VERSION"
    regress "$DIR/suite$major" "$PG_BIN" "$PGXS_TEST" "$DIR/pg$major" "$((PORT + n))" $major
    cluster_stop "$DIR/pg$major"
done
use_major 15
summary packages
