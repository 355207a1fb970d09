#!/usr/bin/env bash
# Installs the Debian packages Tickstream's local infrastructure and tests need, and only those missing.
#
#   nats-server  NATS broker for the Moleculer transporter (JetStream included)      — scripts/infra.ts, tests
#   kcat         independent Kafka client used by the integration tests               — test/infra.test.ts
#   chromium     headless browser for dashboard end-to-end tests                       — later issues
#   prometheus   real scraper for the end-to-end metrics check                         — later issues
#   openjdk-17-jre-headless, maven   run/fetch the Kafka broker jars (scripts/infra/kafka/pom.xml)
#   postgresql   PostgreSQL server binaries for the history store's tests (scripts/infra/postgres.ts
#                starts a private cluster; the Debian service itself is not started)
#
# Usage:  sudo scripts/infra/install-system-deps.sh [package ...]
#   With no arguments installs the full list above. With arguments installs only those (e.g. `nats-server kcat`).
# Idempotent: packages already installed are skipped; `apt-get update` runs only if something must be installed.
# Non-interactive (DEBIAN_FRONTEND=noninteractive), suitable for CI running as root.
set -euo pipefail

DEFAULT_PACKAGES=(nats-server kcat chromium prometheus openjdk-17-jre-headless maven postgresql)
if [ "$#" -gt 0 ]; then PACKAGES=("$@"); else PACKAGES=("${DEFAULT_PACKAGES[@]}"); fi

export DEBIAN_FRONTEND=noninteractive

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

command_of() {
  case "$1" in
    openjdk-17-jre-headless) echo java ;;
    maven) echo mvn ;;
    *) echo "$1" ;;
  esac
}

# Already provided some other way (e.g. a CI image's own JDK or Maven on PATH)? Then it is not missing.
provided_otherwise() {
  case "$1" in
    openjdk-17-jre-headless) command -v java >/dev/null 2>&1 && [ "$(java_major)" -ge 17 ] 2>/dev/null ;;
    maven) command -v mvn >/dev/null 2>&1 ;;
    nats-server | kcat | chromium | prometheus) command -v "$(command_of "$1")" >/dev/null 2>&1 ;;
    postgresql) compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null ;;
    *) return 1 ;;
  esac
}

missing=()
for p in "${PACKAGES[@]}"; do
  if is_installed "$p"; then
    echo "ok       $p ($(dpkg-query -W -f='${Version}' "$p"))"
  elif provided_otherwise "$p"; then
    echo "ok       $p (not its Debian package, but $(command -v "$(command_of "$p")") is on PATH)"
  else
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "All system dependencies present."
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "Installing: ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
# The services Debian would auto-start (nats-server, prometheus, postgresql) are not wanted: the project starts its own.
# policy-rc.d exit 101 stops invoke-rc.d from starting them during installation (only while we install).
POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod +x "$POLICY"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT

$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"

for p in "${missing[@]}"; do
  if ! is_installed "$p"; then echo "error: $p did not install" >&2; exit 1; fi
  echo "installed $p ($(dpkg-query -W -f='${Version}' "$p"))"
done
