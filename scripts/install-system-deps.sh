#!/usr/bin/env bash
# Debian packages the test suite drives for real: nginx, Samba AD DC, PostgreSQL, Chromium,
# Tomcat 10 (a servlet back end for the path-handling attacks, tests/integration/test_bypass.py),
# oathtool (an independent TOTP implementation), wrk (benchmarks). Idempotent: installs only
# what is missing. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  nginx
  postgresql
  chromium chromium-driver
  samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind
  krb5-user ldb-tools smbclient attr acl openssl faketime
  tomcat10 caddy
  oathtool wrk
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "need root to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# krb5-user asks for a default realm; answer it up front so the install never blocks.
echo "krb5-config krb5-config/default_realm string CITY.TEST" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts services on install where it can; the tests run their own instances.
for svc in nginx samba-ad-dc smbd nmbd winbind postgresql tomcat10; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "system packages: installed"
