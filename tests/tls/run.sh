#!/usr/bin/env bash
# check_consistency over TLS. Makes a certificate authority (self-signed), a
# server certificate it signs for the name "localhost" only, and a second,
# unrelated CA; starts its own PostgreSQL 15 cluster with ssl = on whose
# pg_hba.conf accepts TCP connections only over TLS (hostssl), under
# $TLS_DIR (default /tmp/mfc-tls) on $TLS_PORT (default 55495). Then runs the
# command with each sslmode, from the URL (both URL and key=value forms) and
# from PGSSLMODE/PGSSLROOTCERT:
#   disable                   refused by the server (exit 2, says why)
#   prefer (default), require connect (over TLS: the server takes nothing else)
#   verify-ca, verify-full    connect with the right CA
#   wrong CA, wrong host name fail with exit status 2 and a message saying why
# Run as root (the cluster runs as postgres) or as postgres.
source "$(dirname "$0")/../../scripts/common.sh"
source "$(dirname "$0")/../lib.sh"
DIR="${TLS_DIR:-/tmp/mfc-tls}"
PORT="${TLS_PORT:-55495}"
CC="${CHECK_CONSISTENCY:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/check_consistency}"
DB=mfc_tls
trap 'cluster_stop "$DIR/cluster"' EXIT

[ -x "$CC" ] || (cd "$ROOT" && cargo build -q -p check_consistency)

echo "== certificates"
cluster_stop "$DIR/cluster"
as_root rm -rf "$DIR"
as_root install -d -o postgres "$DIR" "$DIR/certs"
certs="$DIR/certs"
tmp=$(mktemp -d)
trap 'cluster_stop "$DIR/cluster"; rm -rf "$tmp"' EXIT
ca() { # ca NAME CN: a self-signed certificate authority
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" -keyout "$tmp/$1.key" -out "$tmp/$1.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
ca ca "Motofinai test CA"
ca other-ca "Some other CA"
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tmp/server.key" -out "$tmp/server.csr" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:localhost" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$tmp/server.ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial -days 2 \
    -extfile "$tmp/server.ext" -out "$tmp/server.crt" 2>/dev/null
as_root cp "$tmp/ca.crt" "$tmp/other-ca.crt" "$tmp/server.crt" "$tmp/server.key" "$certs/"
as_root chown postgres: "$certs/server.key" && as_root chmod 600 "$certs/server.key"
as_root chmod a+r "$certs/ca.crt" "$certs/other-ca.crt" "$certs/server.crt"
echo "server certificate: $(openssl x509 -in "$certs/server.crt" -noout -subject -ext subjectAltName 2>/dev/null | tr '\n' ' ')"

echo "== a server that takes TCP connections over TLS only"
cluster_start "$DIR/cluster" "$PORT" "ssl = on" "ssl_cert_file = '$certs/server.crt'" "ssl_key_file = '$certs/server.key'"
printf '%s\n' "local all all trust" "hostssl all all 127.0.0.1/32 trust" "hostssl all all ::1/128 trust" \
    | as_pg tee "$DIR/cluster/data/pg_hba.conf" >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$DIR/cluster/data" reload >/dev/null
sleep 1
export PGHOST="$DIR/cluster" PGPORT="$PORT"
fresh_db $DB
load_motofinai $DB   # the tables and the extension, no rows: the quick check finds nothing (exit 0)

# connect WHAT WANT_STATUS WANT_IN_STDERR [VAR=VALUE...]: run the quick check
# with only the given connection variables (and an empty HOME, so no
# ~/.postgresql/root.crt of the machine's is read).
connect() {
    local what="$1" want="$2" msg="$3" status=0
    shift 3
    env -u DATABASE_URL -u PGSSLMODE -u PGSSLROOTCERT -u PGHOST -u PGPORT -u PGDATABASE HOME="$tmp" \
        PGUSER=postgres "$@" "$CC" --quick --no-color >"$tmp/out" 2>"$tmp/err" || status=$?
    expect_eq "$what: exit status" "$status" "$want"
    if [ -n "$msg" ]; then
        if grep -qF -- "$msg" "$tmp/err"; then pass "$what: says \"$msg\""
        else fail "$what: the message lacks \"$msg\""; fi
    fi
    [ -s "$tmp/err" ] && sed 's/^/    /' "$tmp/err"
    return 0
}
url="postgresql://postgres@localhost:$PORT/$DB"
ip_url="postgresql://postgres@127.0.0.1:$PORT/$DB"

echo "== from the URL"
connect "sslmode=disable is refused by a TLS-only server" 2 "no encryption" DATABASE_URL="$url?sslmode=disable"
connect "no sslmode (prefer)" 0 "" DATABASE_URL="$url"
connect "sslmode=prefer" 0 "" DATABASE_URL="$url?sslmode=prefer"
connect "sslmode=require" 0 "" DATABASE_URL="$url?sslmode=require"
connect "sslmode=require by IP (the name is not checked)" 0 "" DATABASE_URL="$ip_url?sslmode=require"
connect "verify-full with the right CA" 0 "" DATABASE_URL="$url?sslmode=verify-full&sslrootcert=$certs/ca.crt"
connect "verify-ca with the right CA, by IP" 0 "" DATABASE_URL="$ip_url?sslmode=verify-ca&sslrootcert=$certs/ca.crt"
connect "verify-full with the wrong CA" 2 "not signed by a certificate authority in $certs/other-ca.crt" \
    DATABASE_URL="$url?sslmode=verify-full&sslrootcert=$certs/other-ca.crt"
connect "verify-ca with the wrong CA" 2 "not signed by a certificate authority in $certs/other-ca.crt" \
    DATABASE_URL="$url?sslmode=verify-ca&sslrootcert=$certs/other-ca.crt"
connect "verify-full with the wrong host name" 2 'not issued for the host name "127.0.0.1"' \
    DATABASE_URL="$ip_url?sslmode=verify-full&sslrootcert=$certs/ca.crt"
connect "require with a root CA file verifies as verify-ca (libpq)" 2 "not signed by a certificate authority" \
    DATABASE_URL="$url?sslmode=require&sslrootcert=$certs/other-ca.crt"
connect "verify-full without a root CA file" 2 "root.crt\" does not exist" DATABASE_URL="$url?sslmode=verify-full"
connect "an unknown sslmode" 2 'invalid sslmode "verify"' DATABASE_URL="$url?sslmode=verify"
connect "key=value form, verify-full" 0 "" \
    DATABASE_URL="host=localhost port=$PORT user=postgres dbname=$DB sslmode=verify-full sslrootcert=$certs/ca.crt"

echo "== from PGSSLMODE and PGSSLROOTCERT"
connect "PGSSLMODE=verify-full, right CA" 0 "" PGHOST=localhost PGPORT="$PORT" PGDATABASE=$DB \
    PGSSLMODE=verify-full PGSSLROOTCERT="$certs/ca.crt"
connect "PGSSLMODE=verify-full, wrong CA" 2 "not signed by a certificate authority in $certs/other-ca.crt" \
    PGHOST=localhost PGPORT="$PORT" PGDATABASE=$DB PGSSLMODE=verify-full PGSSLROOTCERT="$certs/other-ca.crt"
connect "PGSSLMODE=verify-full, wrong host name" 2 'not issued for the host name "127.0.0.1"' \
    PGHOST=127.0.0.1 PGPORT="$PORT" PGDATABASE=$DB PGSSLMODE=verify-full PGSSLROOTCERT="$certs/ca.crt"
connect "PGSSLMODE=disable" 2 "no encryption" PGHOST=localhost PGPORT="$PORT" PGDATABASE=$DB PGSSLMODE=disable
connect "the URL's sslmode wins over PGSSLMODE" 0 "" DATABASE_URL="$url?sslmode=require" PGSSLMODE=disable
connect "a Unix socket ignores sslmode (as libpq)" 0 "" PGHOST="$DIR/cluster" PGPORT="$PORT" PGDATABASE=$DB \
    PGSSLMODE=verify-full PGSSLROOTCERT="$certs/other-ca.crt"

echo "== the server saw TLS"
expect_eq "every TCP connection of the command was encrypted (pg_stat_ssl, live check)" \
    "$(env -u PGHOST psql -X -At -h localhost -p "$PORT" "sslmode=require dbname=$DB" \
        -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)" t

drop_db $DB
summary tls
