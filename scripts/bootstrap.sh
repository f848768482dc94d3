#!/bin/sh
# Installs the Debian packages Rampart needs to build, run and test, if missing.
# Idempotent: does nothing (and needs no network) when everything is present.
set -eu
PKGS="build-essential meson ninja-build pkg-config
libssl-dev libsodium-dev libevent-dev libsqlite3-dev libconfuse-dev libjansson-dev
libzxcvbn-dev libcmocka-dev clang libclang-rt-14-dev
openssl sqlite3 procps python3 python3-pytest swaks"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: missing packages:$missing (run as root, or install them)" >&2
    exit 1
fi
echo "bootstrap: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
