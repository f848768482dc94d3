#!/bin/sh
# Creates (once) and starts a development instance of Rampart under ./run/:
# a configuration, a self-signed certificate, a SQLite directory with the domain
# example.test and the user dev@example.test (password generated and printed
# once), then runs rampartd in the foreground on loopback ports. Ctrl-C stops it.
set -eu
BUILD=${1:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
RUN="$TOP/run"
RAMPART="$TOP/$BUILD/rampart"
RAMPARTD="$TOP/$BUILD/rampartd"
CONF="$RUN/rampart.conf"
MX_PORT=${RAMPART_MX_PORT:-2525}
SUB_PORT=${RAMPART_SUBMISSION_PORT:-5587}
SUBS_PORT=${RAMPART_SUBMISSIONS_PORT:-5465}

mkdir -p "$RUN/tls"
chmod 700 "$RUN"
if [ ! -f "$RUN/tls/cert.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 \
        -keyout "$RUN/tls/key.pem" -out "$RUN/tls/cert.pem" \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
    chmod 600 "$RUN/tls/key.pem"
fi
if [ ! -f "$RUN/dns.zone" ]; then
    cat > "$RUN/dns.zone" <<'ZONE'
; DNS for the development instance (dns.zone in rampart.conf): mail arriving on
; the MX port is checked (SPF, DKIM, DMARC) against these records instead of the
; network. Delete the dns.zone line of rampart.conf to use real DNS.
$TTL 300
$ORIGIN example.org.
@       TXT "v=spf1 ip4:127.0.0.0/8 -all"
_dmarc  TXT "v=DMARC1; p=quarantine"
$ORIGIN spoofed.example.
@       TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc  TXT "v=DMARC1; p=reject"
ZONE
fi
if [ ! -f "$CONF" ]; then
    cat > "$CONF" <<CONF
# Development instance created by 'make run'. Every setting: docs/configuration.md
hostname = "localhost"
state_dir = "$RUN/state"
data_dir = "$TOP/data"
tls_cert = "$RUN/tls/cert.pem"
tls_key = "$RUN/tls/key.pem"
queue_retry_min = 10s
dns.zone = "$RUN/dns.zone"
listener mx          { role = mx          address = "127.0.0.1" port = $MX_PORT }
listener submission  { role = submission  address = "127.0.0.1" port = $SUB_PORT }
listener submissions { role = submissions address = "127.0.0.1" port = $SUBS_PORT }
CONF
fi
"$RAMPARTD" -n -c "$CONF" >/dev/null
if ! "$RAMPART" -c "$CONF" domain list | grep -qx example.test; then
    "$RAMPART" -c "$CONF" domain add example.test
fi
if ! "$RAMPART" -c "$CONF" user list example.test | grep -qx dev@example.test; then
    echo "Created user dev@example.test with password (shown once):"
    "$RAMPART" -c "$CONF" user add dev@example.test --generate-password
fi
if ! ls "$RUN/state/dkim/example.test/"*.key >/dev/null 2>&1; then
    # Outgoing mail is signed by default: one ed25519 and one RSA key.
    "$RAMPART" -c "$CONF" dkim keygen example.test --type ed25519 >/dev/null
    "$RAMPART" -c "$CONF" dkim keygen example.test --type rsa >/dev/null
fi

cat <<INFO

Rampart development instance (config $CONF)
  mx           127.0.0.1:$MX_PORT    (SMTP, STARTTLS offered)
  submission   127.0.0.1:$SUB_PORT    (STARTTLS)
  submissions  127.0.0.1:$SUBS_PORT    (implicit TLS)
  mail store   $RUN/state/mail/example.test/dev/Maildir

Send a test message from another terminal (as a stranger, over the MX port):
  swaks --server 127.0.0.1:$MX_PORT --from you@example.org --to dev@example.test
  /usr/bin/python3 -c "import smtplib; smtplib.SMTP('127.0.0.1', $MX_PORT).sendmail('you@example.org', ['dev@example.test'], 'From: you@example.org\r\nSubject: hello\r\n\r\nIt works.\r\n')"
Then: ls $RUN/state/mail/example.test/dev/Maildir/new   (Authentication-Results on top:
spf=pass, dmarc=pass, from the records in $RUN/dns.zone). A forged sender is refused
by its domain's DMARC policy (550 5.7.1):
  swaks --server 127.0.0.1:$MX_PORT --from ceo@spoofed.example --to dev@example.test

Submit as dev@example.test (STARTTLS, then AUTH; swaks asks for the password):
  swaks --server 127.0.0.1:$SUB_PORT --tls --auth PLAIN --auth-user dev@example.test --from dev@example.test --to dev@example.test
Every login attempt is in $RUN/state/audit.log:  build/rampart -c $CONF log -f
What dev@example.test sends is DKIM-signed (ed25519 and RSA); the DNS records to
publish:  build/rampart -c $CONF dkim list example.test
Mail to other domains leaves by their MX hosts (here answered from dns.zone, so it
bounces back to dev with an RFC 3464 report); set relay.host for a smarthost.
Watch the queue:  build/rampart -c $CONF queue list

INFO
exec "$RAMPARTD" -d -c "$CONF"
