#!/bin/sh
# Installs the Debian packages Rampart needs to build, run and test, if missing.
# Idempotent: does nothing (and needs no network) when everything is present.
set -eu
PKGS="build-essential meson ninja-build pkg-config
libssl-dev libsodium-dev libevent-dev libsqlite3-dev libconfuse-dev libjansson-dev
libzxcvbn-dev libcmocka-dev clang libclang-rt-14-dev
libunbound-dev libpsl-dev publicsuffix dns-root-data
openssl sqlite3 procps python3 python3-pytest swaks fail2ban gdb
unbound ldnsutils python3-spf python3-dkim python3-dnspython python3-yaml python3-authheaders"
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
# fail2ban is only the oracle for contrib/fail2ban's filter (fail2ban-regex):
# its service must not start here, so keep services down during the install
# unless a policy already says so (containers usually have one).
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing || { [ -n "$own_policy" ] && rm -f "$policy"; exit 1; }
[ -n "$own_policy" ] && rm -f "$policy"
exit 0
