#!/usr/bin/env bash
# A throwaway Samba AD domain controller (realm CITY.TEST, domain CITY) on loopback, entirely
# inside one directory, for authgate's tests and benchmarks.
#
#   scripts/samba-dc.sh start DIR    provision (first time only), start, wait for LDAPS, write DIR/dc.env
#   scripts/samba-dc.sh stop DIR     stop the DC whose pid file is in DIR (never by process name)
#   scripts/samba-dc.sh status DIR   exit 0 when running, 3 when not
#
# Only one DC can run per machine (ports 389/636 are fixed): `start` refuses if they are taken.
# Facts and pitfalls behind every step: shared/docs/real-components.md.
set -euo pipefail

REALM=CITY.TEST
DOMAIN=CITY
BASE_DN="DC=city,DC=test"
CITY_OU="OU=City,$BASE_DN"
PEOPLE_OU="OU=People,$CITY_OU"
GROUPS_OU="OU=Groups,$CITY_OU"
SERVICE_OU="OU=Service Accounts,$CITY_OU"
ADMIN_PASSWORD='Adm1n-City-Pass!'
SVC_PASSWORD='Svc-Authgate-2024!'
USER_PASSWORD='Staff-Pass-2024!'
# accountExpires for frank: 2020-01-01T00:00:00Z as a FILETIME (100 ns since 1601) [MS-ADTS 2.2.1]
PAST_FILETIME=132223104000000000

die() { echo "samba-dc: $*" >&2; exit 1; }

usage() { die "usage: $0 {start|stop|status} DIR"; }

pid_of() {  # the running DC's pid, from its pid file only
    local f="$1/run/samba.pid" pid
    [[ -s $f ]] || return 1
    pid=$(tr -dc '0-9' <"$f")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

ports_taken() { ss -Hltn '( sport = :389 or sport = :636 )' | grep -q .; }

utf16_b64() { printf '"%s"' "$1" | iconv -f utf-8 -t utf-16le | base64 -w0; }

make_tls() {  # a small CA and a server cert with SANs; Samba's own cert has none
    local d="$1/tls"
    mkdir -p "$d"
    (
        cd "$d"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -keyout ca.key -out ca.pem -subj "/CN=authgate test CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout server.key -out server.csr -subj "/CN=dc1.city.test"
        printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1,DNS:dc1.city.test" \
            "extendedKeyUsage=serverAuth" "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature" >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
            -out server.pem -extfile server.ext
        chmod 600 ca.key server.key  # Samba's LDAP task dies on a group/world-readable key
    ) >>"$1/log/provision.log" 2>&1
}

provision() {
    local t="$1"
    rm -rf "$t/etc" "$t/private" "$t/state" "$t/cache" "$t/bind-dns" "$t/run" "$t/tls" "$t/log"
    mkdir -p "$t/etc" "$t/run" "$t/log" "$t/ncalrpc" "$t/winbindd" "$t/ntp_signd"
    : >"$t/etc/empty.conf"  # never let Debian's /etc/samba/smb.conf leak in
    make_tls "$t" &
    local tls_job=$!
    samba-tool domain provision -s "$t/etc/empty.conf" --targetdir="$t" \
        --realm="$REALM" --domain="$DOMAIN" --host-name=dc1 --server-role=dc \
        --dns-backend=NONE --use-rfc2307 --adminpass="$ADMIN_PASSWORD" \
        --option="interfaces = lo" --option="bind interfaces only = yes" \
        --option="server services = ldap cldap kdc" \
        --option="pid directory = $t/run" --option="ncalrpc dir = $t/ncalrpc" \
        --option="winbindd socket directory = $t/winbindd" \
        --option="ntp signd socket directory = $t/ntp_signd" \
        --option="log file = $t/log/samba.log" --option="tls enabled = yes" \
        --option="tls keyfile = $t/tls/server.key" --option="tls certfile = $t/tls/server.pem" \
        --option="tls cafile = $t/tls/ca.pem" >>"$t/log/provision.log" 2>&1 \
        || die "provision failed, see $t/log/provision.log"
    wait "$tls_job" || die "certificate generation failed, see $t/log/provision.log"
    seed "$t"
    touch "$t/.provisioned"
}

user_ldif() {  # user_ldif SAM CN UAC [extra lines...]
    local sam="$1" cn="$2" uac="$3" ou="${OU:-$PEOPLE_OU}"
    shift 3
    printf 'dn: CN=%s,%s\nobjectClass: user\nsAMAccountName: %s\n' "$cn" "$ou" "$sam"
    printf 'userPrincipalName: %s@city.test\ndisplayName: %s\nmail: %s@city.test\n' "$sam" "${cn//\\/}" "$sam"
    printf 'userAccountControl: %s\nunicodePwd:: %s\n' "$uac" "$(utf16_b64 "${PW:-$USER_PASSWORD}")"
    local line
    for line in "$@"; do printf '%s\n' "$line"; done
    printf '\n'
}

group_ldif() {  # group_ldif NAME MEMBER_DN...
    local name="$1"
    shift
    printf 'dn: CN=%s,%s\nobjectClass: group\nsAMAccountName: %s\n' "$name" "$GROUPS_OU" "$name"
    local m
    for m in "$@"; do printf 'member: %s\n' "$m"; done
    printf '\n'
}

seed_ldif() {
    local ou
    for ou in "$CITY_OU" "$PEOPLE_OU" "$GROUPS_OU" "$SERVICE_OU"; do
        printf 'dn: %s\nobjectClass: organizationalUnit\n\n' "$ou"
    done
    # 66048 = NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD [MS-ADTS 2.2.16]; 514 = disabled
    OU="$SERVICE_OU" PW="$SVC_PASSWORD" user_ldif svc-authgate svc-authgate 66048
    user_ldif alice "Alice Example" 512
    user_ldif bob "Bob Example" 512
    user_ldif carol "Carol Disabled" 514
    user_ldif dave "Dave Lockable" 512
    user_ldif erin "Erin Mustchange" 512
    user_ldif frank "Frank Expired" 512 "accountExpires: $PAST_FILETIME"
    user_ldif grace "Grace Oldpassword" 512
    user_ldif adam "Adam Admin" 512
    user_ldif audrey "Audrey Auditor" 512
    # A CN full of filter metacharacters: group search must escape the DN (RFC 4515)
    user_ldif pat 'Pat (Ops)* O\, Brien' 512
    local i
    for i in $(seq -w 1 20); do user_ldif "user$i" "Spray User $i" 512; done
    group_ldif IT-Dept "CN=Alice Example,$PEOPLE_OU" "CN=Pat (Ops)* O\\, Brien,$PEOPLE_OU"
    group_ldif City-Staff "CN=IT-Dept,$GROUPS_OU" "CN=Bob Example,$PEOPLE_OU"
    group_ldif authgate-admins "CN=Adam Admin,$PEOPLE_OU"
    group_ldif authgate-auditors "CN=Audrey Auditor,$PEOPLE_OU"
}

policy_ldif() {  # domain policy and account states that can only be set after creation
    # Intervals are negative 100 ns counts [MS-ADTS 3.1.1.5.3]: 30 days / 30 minutes.
    printf 'dn: %s\nchangetype: modify\n' "$BASE_DN"
    printf 'replace: lockoutThreshold\nlockoutThreshold: 3\n-\n'
    printf 'replace: lockoutDuration\nlockoutDuration: -18000000000\n-\n'
    printf 'replace: lockOutObservationWindow\nlockOutObservationWindow: -18000000000\n-\n'
    printf 'replace: maxPwdAge\nmaxPwdAge: -25920000000000\n-\n'
    printf 'replace: minPwdAge\nminPwdAge: 0\n\n'
    printf 'dn: CN=Erin Mustchange,%s\nchangetype: modify\nreplace: pwdLastSet\npwdLastSet: 0\n\n' "$PEOPLE_OU"
}

seed() {
    local t="$1" sam="$1/private/sam.ldb"
    seed_ldif >"$t/log/seed.ldif"
    ldbadd -H "$sam" "$t/log/seed.ldif" >>"$t/log/provision.log" 2>&1 || die "seeding failed, see $t/log/provision.log"
    policy_ldif | ldbmodify -H "$sam" >>"$t/log/provision.log" 2>&1 || die "policy failed, see $t/log/provision.log"
    # grace's password is set "60 days ago" (> maxPwdAge of 30 days), so it is expired now.
    printf 'dn: CN=Grace Oldpassword,%s\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n\n' \
        "$PEOPLE_OU" "$(utf16_b64 "$USER_PASSWORD")" \
        | LDB_MODULES_DISABLE_DEEPBIND=1 faketime -f '-60d' ldbmodify -H "$sam" >>"$t/log/provision.log" 2>&1 \
        || die "ageing grace's password failed, see $t/log/provision.log"
}

write_env() {
    local t="$1" f="$1/dc.env"
    install -m 600 /dev/null "$t/svc-authgate.password"
    printf '%s' "$SVC_PASSWORD" >"$t/svc-authgate.password"
    cat >"$f.tmp" <<EOF
# Facts about the test DC in $t (sourceable; single-quoted values)
AD_DIR='$t'
AD_REALM='$REALM'
AD_DOMAIN='$DOMAIN'
AD_UPN_SUFFIX='city.test'
AD_LDAPS_URL='ldaps://localhost:636'
AD_LDAP_URL='ldap://localhost:389'
AD_BASE_DN='$BASE_DN'
AD_USER_BASE_DN='$PEOPLE_OU'
AD_GROUP_BASE_DN='$GROUPS_OU'
AD_CA_FILE='$t/tls/ca.pem'
AD_BIND_DN='CN=svc-authgate,$SERVICE_OU'
AD_BIND_PASSWORD='$SVC_PASSWORD'
AD_BIND_PASSWORD_FILE='$t/svc-authgate.password'
AD_USER_PASSWORD='$USER_PASSWORD'
AD_ADMIN_DN='CN=Administrator,CN=Users,$BASE_DN'
AD_ADMIN_PASSWORD='$ADMIN_PASSWORD'
AD_SMB_CONF='$t/etc/smb.conf'
AD_SAM_LDB='$t/private/sam.ldb'
AD_PID_FILE='$t/run/samba.pid'
AD_LOCKOUT_THRESHOLD='3'
AD_USERS='alice bob carol dave erin frank grace adam audrey pat user01..user20'
EOF
    mv "$f.tmp" "$f"
}

wait_ldaps() {  # ready = a TLS handshake on 636 that verifies against our CA; 2: it exited
    local t="$1" i
    for i in $(seq 1 200); do
        if timeout 2 openssl s_client -connect 127.0.0.1:636 -CAfile "$t/tls/ca.pem" \
            -verify_return_error -brief </dev/null >/dev/null 2>&1; then
            return 0
        fi
        pid_of "$t" >/dev/null || return 2
        sleep 0.05
    done
    die "LDAPS did not answer within 10 s, see $t/log/samba.log"
}

cmd_start() {
    local t="$1" pid
    mkdir -p "$t"
    t=$(cd "$t" && pwd)
    if pid=$(pid_of "$t"); then
        write_env "$t"
        echo "samba-dc: already running (pid $pid), facts in $t/dc.env"
        return 0
    fi
    command -v samba >/dev/null || die "samba is not installed (apt-get install samba samba-ad-dc samba-ad-provision ...)"
    ports_taken && die "ports 389/636 are already in use (another DC?): $(ss -Hltnp '( sport = :389 or sport = :636 )' | head -2)"
    [[ -e $t/.provisioned ]] || provision "$t"
    # A restart right after a stop on a loaded machine sometimes exits at once without a word
    # in its log (seen once in CI after a SIGKILL stop): one more try before giving up.
    local attempt
    for attempt in 1 2; do
        samba -D -M single -s "$t/etc/smb.conf" >>"$t/log/provision.log" 2>&1 || die "samba failed to start, see $t/log/samba.log"
        wait_ldaps "$t" && break
        [[ $attempt -eq 2 ]] && die "samba exited during start-up, see $t/log/samba.log"
        sleep 1
    done
    write_env "$t"
    echo "samba-dc: running (pid $(pid_of "$t")), facts in $t/dc.env"
}

cmd_stop() {
    local t="$1" pid i
    pid=$(pid_of "$t") || { echo "samba-dc: not running"; return 0; }
    kill -TERM "$pid"
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    for i in $(seq 1 100); do ports_taken || break; sleep 0.05; done
    rm -f "$t/run/samba.pid"
    echo "samba-dc: stopped (pid $pid)"
}

cmd_status() {
    local pid
    if pid=$(pid_of "$1"); then echo "samba-dc: running (pid $pid)"; else echo "samba-dc: not running"; exit 3; fi
}

[[ $# -eq 2 ]] || usage
case "$1" in
    start) cmd_start "$2" ;;
    stop) cmd_stop "$2" ;;
    status) cmd_status "$2" ;;
    *) usage ;;
esac
