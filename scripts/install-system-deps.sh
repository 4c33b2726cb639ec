#!/usr/bin/env bash
# Debian packages the test suite drives for real: nginx, Samba AD DC, PostgreSQL, Chromium,
# Tomcat 10 (a servlet back end for the path-handling attacks, tests/integration/test_bypass.py),
# oathtool (an independent TOTP implementation), wrk (benchmarks), prometheus (promtool checks
# the shipped alert rules). Idempotent: installs only what is missing. Needs root (or sudo).
# Then axe-core (the browser suite's accessibility check, tests/browser/axe.py) from the npm
# registry, pinned with its integrity hash.
set -euo pipefail

install_axe() {
  # npm ci installs exactly the version and sha512 in tests/browser/npm/package-lock.json
  # into .cache/axe (never the repository tree); no browser or other download.
  local root dest
  root="$(cd "$(dirname "$0")/.." && pwd)"
  dest="$root/.cache/axe"
  if cmp -s "$root/tests/browser/npm/package-lock.json" "$dest/package-lock.json" \
     && [ -f "$dest/node_modules/axe-core/axe.min.js" ]; then
    echo "axe-core: present"
    return
  fi
  mkdir -p "$dest"
  cp "$root/tests/browser/npm/package.json" "$root/tests/browser/npm/package-lock.json" "$dest/"
  npm ci --prefix "$dest" --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "axe-core: installed"
}

PACKAGES=(
  nginx
  postgresql
  chromium chromium-driver
  samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind
  krb5-user ldb-tools smbclient attr acl openssl faketime
  tomcat10 caddy
  oathtool wrk
  prometheus
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm for axe-core: Debian's package only when no npm is there (NodeSource ships its own)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  install_axe
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
for svc in nginx samba-ad-dc smbd nmbd winbind postgresql tomcat10 prometheus; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "system packages: installed"
install_axe
