#!/usr/bin/env bash
# Debian packages the test suite runs for real (slapd, chromium, sipp, …).
# Installs only what is missing; needs root (CI and the dev machines run as root).
# Each issue that needs a real server adds its packages to PACKAGES.
set -euo pipefail

PACKAGES=(
  chromium espeak-ng sox
  slapd ldap-utils
  sip-tester nginx libnginx-mod-rtmp
  postgresql
  redis-server
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
