#!/bin/bash
# From a fresh Debian 12 VM to a protected app: every command of docs/deployment.md, in order.
# Generated from that page's `<!-- deploy.sh -->` blocks (python -m
# tests.integration.test_deployment_guide rewrites it); a test fails if the two differ.
# Run as root from the checkout: REVIEWER="Jane Doe, CISO" ./deploy/install/deploy.sh
set -euo pipefail

ROOT=${ROOT:-}                                       # "" = this machine (a test: a temp dir)
SRC=${SRC:-$PWD}                                     # the authgate checkout
PORTAL_HOST=${PORTAL_HOST:-auth.city.test}           # the sign-in portal
APP_HOST=${APP_HOST:-permits.city.test}              # the protected application
APP_UPSTREAM=${APP_UPSTREAM:-127.0.0.1:8080}         # where the application listens
PORTAL_PORT=${PORTAL_PORT:-443}                      # HTTPS ports nginx listens on
APP_PORT=${APP_PORT:-443}
GATEWAY_PORT=${GATEWAY_PORT:-9091}                   # authgate's portal pool (loopback)
VERIFY_PORT=${VERIFY_PORT:-9092}                     # authgate's forward-auth pool (loopback)
LISTEN_V4=${LISTEN_V4:-0.0.0.0}
LISTEN_V6=${LISTEN_V6:-[::]}
AD_URLS=${AD_URLS:-ldaps://dc1.city.test:636,ldaps://dc2.city.test:636}
AD_BASE_DN=${AD_BASE_DN:-DC=city,DC=test}
AD_BIND_DN=${AD_BIND_DN:-CN=svc-authgate,OU=Service Accounts,DC=city,DC=test}
AD_BIND_PASSWORD_FILE=${AD_BIND_PASSWORD_FILE:-/root/svc-authgate.password}
AD_CA_FILE=${AD_CA_FILE:-/root/city-ad-ca.pem}
AD_UPN_SUFFIX=${AD_UPN_SUFFIX:-city.test}
AD_NETBIOS=${AD_NETBIOS:-CITY}
RP_ID=${RP_ID:-city.test}                            # WebAuthn: the domain keys are bound to
FIRST_ADMIN=${FIRST_ADMIN:-}                         # an AD user in authgate-admins (step 11)
REVIEWER=${REVIEWER:?name the person who reviewed the policy, e.g. REVIEWER="Jane Doe, CISO"}
KEEP_DEMO_POLICY=${KEEP_DEMO_POLICY:-0}              # 1 only for a trial on localhost
SERVICE_USER=${SERVICE_USER:-authgate}             # the service's own account
VENV=${VENV:-/opt/authgate}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
ETC=$ROOT/etc/authgate
STATE=$ROOT/var/lib/authgate
WITNESS=$ROOT/var/log/authgate-witness
NGINX_PREFIX=$ROOT/var/lib/authgate-nginx
UNITS=$ROOT/etc/systemd/system
PUBLIC_URL=https://$PORTAL_HOST$([ "$PORTAL_PORT" = 443 ] || echo ":$PORTAL_PORT")
export AUTHGATE_CONFIG=$ETC/authgate.yaml             # every authgate command reads it
authgate() { "$ROOT/usr/local/bin/authgate" "$@"; }   # made in step 3

missing=""
for package in nginx python3-venv openssl gettext-base; do
  dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
[ -z "$missing" ] || { apt-get update && apt-get install -y --no-install-recommends $missing; }
[ -x "$VENV/bin/authgate" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install "$SRC"; }

if [ "$SERVICE_USER" != root ] && ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/authgate --shell /usr/sbin/nologin "$SERVICE_USER"
fi
umask 077
install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$ETC" "$STATE" "$WITNESS"
install -d -m 0755 "$ROOT/usr/local/bin" "$NGINX_PREFIX" "$NGINX_PREFIX/temp" "$UNITS"
install -d -m 0700 "$ETC/tls"
cat >"$ROOT/usr/local/bin/authgate" <<WRAPPER
#!/bin/sh
# authgate as its service account, with this installation's configuration
export AUTHGATE_CONFIG="\${AUTHGATE_CONFIG:-$ETC/authgate.yaml}"
exec runuser -u $SERVICE_USER -- $VENV/bin/authgate "\$@"
WRAPPER
chmod 0755 "$ROOT/usr/local/bin/authgate"
authgate --help >/dev/null

[ -s "$ETC/session_key" ] || openssl rand -base64 48 >"$ETC/session_key"
[ -s "$ETC/audit_key" ] || openssl rand -base64 48 >"$ETC/audit_key"
[ -s "$ETC/encryption_keys" ] || authgate keys generate >"$ETC/encryption_keys"
[ -s "$ETC/audit-signing.pem" ] || authgate audit keygen "$ETC/audit-signing.pem"
install -m 0600 "$AD_BIND_PASSWORD_FILE" "$ETC/ad_bind_password"
install -m 0644 "$AD_CA_FILE" "$ETC/ad-ca.pem"
chown "$SERVICE_USER:" "$ETC"/session_key "$ETC"/audit_key "$ETC"/encryption_keys \
  "$ETC"/ad_bind_password
chmod 0600 "$ETC"/session_key "$ETC"/audit_key "$ETC"/encryption_keys "$ETC"/audit-signing.pem

cat >"$ETC/authgate.yaml" <<EOF
mode: production
server:
  public_url: $PUBLIC_URL
  trusted_proxies: ["127.0.0.1/32", "::1/128"]    # nginx on this host, nothing wider
  protected_domains: [$PORTAL_HOST, $APP_HOST]
storage:
  url: sqlite:///$STATE/authgate.db
directory:
  backend: ldap
  ldap:
    urls: [${AD_URLS//,/, }]
    base_dn: "$AD_BASE_DN"
    bind_dn: "$AD_BIND_DN"
    bind_password_file: $ETC/ad_bind_password
    ca_file: $ETC/ad-ca.pem
    upn_suffix: $AD_UPN_SUFFIX
    netbios_domain: $AD_NETBIOS
policy:
  path: $ETC/policies
  require_approval: true
webauthn:
  rp_id: $RP_ID
secrets:
  session_key_file: $ETC/session_key
  audit_key_file: $ETC/audit_key
  encryption_keys_file: $ETC/encryption_keys
audit:
  signing_key_file: $ETC/audit-signing.pem
  witness: $WITNESS
logging:
  level: INFO
  format: json
EOF
chown "$SERVICE_USER:" "$ETC/authgate.yaml"

[ -d "$ETC/policies" ] || cp -r "$SRC/policies" "$ETC/policies"
if [ "$KEEP_DEMO_POLICY" != 1 ]; then
  rm -f "$ETC/policies/90-localhost-demo.yaml" "$ETC/policies/tests/localhost-demo.yaml"
fi
chown -R "$SERVICE_USER:" "$ETC/policies"   # the running service still cannot write it
authgate policy test
authgate policy approve --reviewer "$REVIEWER" --note "initial deployment"

authgate check-config
authgate db upgrade
authgate directory check

if [ ! -s "$ETC/tls/server.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/CN=$PORTAL_HOST" -addext "subjectAltName=DNS:$PORTAL_HOST,DNS:$APP_HOST" \
    -keyout "$ETC/tls/server.key" -out "$ETC/tls/server.pem" 2>/dev/null
fi
chmod 0600 "$ETC/tls/server.key"
export PREFIX=$NGINX_PREFIX LISTEN_V4 LISTEN_V6 APP_HOST APP_PORT PORTAL_HOST PORTAL_PORT \
  GATEWAY_PORT VERIFY_PORT UPSTREAM_PORT=${APP_UPSTREAM##*:} \
  TLS_CERT=$ETC/tls/server.pem TLS_KEY=$ETC/tls/server.key
envsubst '${PREFIX} ${LISTEN_V4} ${LISTEN_V6} ${APP_HOST} ${APP_PORT} ${PORTAL_HOST}
  ${PORTAL_PORT} ${GATEWAY_PORT} ${VERIFY_PORT} ${UPSTREAM_PORT} ${TLS_CERT} ${TLS_KEY}' \
  <"$SRC/deploy/nginx/authgate.conf.template" >"$ETC/nginx.conf"
nginx -t -q -p "$NGINX_PREFIX" -c "$ETC/nginx.conf" -e stderr

export VENV ETC STATE WITNESS NGINX_PREFIX SERVICE_USER GATEWAY_PORT VERIFY_PORT
for unit in authgate.service authgate-nginx.service; do
  envsubst '${VENV} ${ETC} ${STATE} ${WITNESS} ${NGINX_PREFIX} ${SERVICE_USER}
    ${GATEWAY_PORT} ${VERIFY_PORT}' <"$SRC/deploy/systemd/$unit" >"$UNITS/$unit"
  chmod 0644 "$UNITS/$unit"
done
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$UNITS/authgate.service" "$UNITS/authgate-nginx.service"
fi

$SYSTEMCTL daemon-reload
$SYSTEMCTL disable --now nginx.service
$SYSTEMCTL enable --now authgate.service authgate-nginx.service

if [ -n "$FIRST_ADMIN" ]; then
  authgate enrol issue "$FIRST_ADMIN" --ttl 24h
fi
