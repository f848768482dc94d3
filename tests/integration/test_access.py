"""Who may log in, from where, and who may connect at all.

  - per-user and per-domain protocol switches (`rampart user set ADDR smtp-auth=...`,
    `rampart domain set DOMAIN smtp-auth=...`) and their `show` output;
  - per-user networks (`networks=CIDR,...|any`), checked before the password is hashed;
  - disabled accounts (`enabled=no`);
  - listener allow/deny lists (554 5.7.1 instead of the greeting, RFC 5321 §3.1),
    from the configuration file and from `rampartd -o listener.NAME.deny=...`;
  - CLI usage errors change nothing; every CLI change writes an `admin` audit line.
All refusals of a login are the same 535 5.7.8 to the client (no account oracle);
only the audit log says why. Changes apply to the next login without a restart.
"""
import socket
import subprocess
import time

import pytest

from conftest import BUILD, Rampart, audit_events, auth_plain_b64, login, smtp_client, wait_audit
from test_smtp_support import SMTPRaw

ALICE = "alice@example.test"
BOB = "bob@example.test"
FAST = {"auth_failure_delay": "50ms"}


@pytest.fixture
def srv(make_checked_server):
    """A server whose failed logins are answered after 50 ms instead of 2 s."""
    return make_checked_server(settings=FAST)


def try_login(srv, user, password=None, source=None, listener="submission"):
    """One AUTH PLAIN on a fresh TLS session: (code, enhanced, client port)."""
    s = smtp_client(srv, listener, source=source)
    port = s.sock.getsockname()[1]
    pw = Rampart.PASSWORDS[user] if password is None else password
    code, text = s.docmd("AUTH", "PLAIN " + auth_plain_b64(user, pw))
    s.close()
    return code, text.decode().split()[0], port


def audit_for(srv, port):
    ev, = wait_audit(srv, 1, pred=lambda e: e.get("port") == port)
    return ev


def assert_refused(srv, user, reason, source=None, password=None):
    code, enh, port = try_login(srv, user, password=password, source=source)
    assert (code, enh) == (535, "5.7.8"), (user, code, enh)
    ev = audit_for(srv, port)
    assert (ev["result"], ev["reason"], ev["user"]) == ("fail", reason, user), ev
    if source:
        assert ev["ip"] == source, ev


def assert_accepted(srv, user, source=None, listener="submission"):
    code, enh, port = try_login(srv, user, source=source, listener=listener)
    assert (code, enh) == (235, "2.7.0"), (user, code, enh)
    assert audit_for(srv, port)["result"] == "ok"


def show(srv, user):
    return srv.cli("user", "show", user).stdout


# ---- protocol switches ----

def test_user_show_defaults(srv):
    """A new user: enabled, every protocol on by the domain's default, any network."""
    assert show(srv, BOB) == ("user bob@example.test\nenabled yes\n"
                              "smtp-auth on (domain default)\nimap on (domain default)\n"
                              "pop3 on (domain default)\nnetworks any\n")
    assert srv.cli("domain", "show", "example.test").stdout == \
        "domain example.test\nsmtp-auth on\nimap on\npop3 on\n"


def test_user_smtp_auth_off_and_back_to_default(srv):
    """smtp-auth=off for bob: his right password gets 535 (audit protocol-disabled) while
    alice still gets in; `default` gives him the domain's (on) again. Other protocols'
    switches do not touch SMTP AUTH."""
    srv.cli("user", "set", BOB, "smtp-auth=off")
    assert "smtp-auth off\n" in show(srv, BOB)
    assert_refused(srv, BOB, "protocol-disabled")
    assert_accepted(srv, ALICE)
    srv.cli("user", "set", BOB, "smtp-auth=default", "imap=off", "pop3=off")
    out = show(srv, BOB)
    assert "smtp-auth on (domain default)\n" in out and "imap off\n" in out and "pop3 off\n" in out
    assert_accepted(srv, BOB)
    srv.cli("user", "set", BOB, "smtp-auth=on")
    assert "smtp-auth on\n" in show(srv, BOB)
    assert_accepted(srv, BOB)


def test_domain_default_off_user_on(srv):
    """domain set smtp-auth=off is the default of users without their own setting: alice
    (default) is refused, bob with smtp-auth=on gets in; domain back on lets alice in."""
    srv.cli("domain", "set", "example.test", "smtp-auth=off")
    assert "smtp-auth off\n" in srv.cli("domain", "show", "example.test").stdout
    srv.cli("user", "set", BOB, "smtp-auth=on")
    assert "smtp-auth off (domain default)\n" in show(srv, ALICE)
    assert "smtp-auth on\n" in show(srv, BOB)
    assert_refused(srv, ALICE, "protocol-disabled")
    assert_accepted(srv, BOB)
    srv.cli("domain", "set", "example.test", "smtp-auth=on")
    assert_accepted(srv, ALICE)
    # A user's explicit off wins over the domain's on.
    srv.cli("user", "set", BOB, "smtp-auth=off")
    assert_refused(srv, BOB, "protocol-disabled")


def test_switched_off_user_session_already_authenticated(srv):
    """The switch applies to the next login: a session that logged in before keeps its
    authentication (like a password change), a new one is refused."""
    s = login(srv, BOB)
    srv.cli("user", "set", BOB, "smtp-auth=off")
    s.mail(BOB)
    assert s.rcpt(ALICE)[0] == 250
    s.quit()
    assert_refused(srv, BOB, "protocol-disabled")


# ---- networks ----

def test_user_networks(srv):
    """networks=10.0.0.0/8: bob from 127.0.0.1 is refused (network-not-allowed); after
    networks=127.0.0.0/8 he gets in; a list allows each of its members only; `any`
    lifts the restriction. `show` prints the normalised list."""
    srv.cli("user", "set", BOB, "networks=10.0.0.0/8")
    assert "networks 10.0.0.0/8\n" in show(srv, BOB)
    assert_refused(srv, BOB, "network-not-allowed")
    assert_accepted(srv, ALICE)
    srv.cli("user", "set", BOB, "networks=127.0.0.0/8")
    assert_accepted(srv, BOB)
    srv.cli("user", "set", BOB, "networks=10.0.0.0/8,127.0.0.2,::1")
    assert "networks 10.0.0.0/8,127.0.0.2/32,::1/128\n" in show(srv, BOB)
    assert_accepted(srv, BOB, source="127.0.0.2")
    assert_refused(srv, BOB, "network-not-allowed", source="127.0.0.1")
    assert_refused(srv, BOB, "network-not-allowed", source="127.0.0.3")
    srv.cli("user", "set", BOB, "networks=any")
    assert "networks any\n" in show(srv, BOB)
    assert_accepted(srv, BOB, source="127.0.0.3")


def test_network_checked_before_password(srv):
    """Outside its networks the password is not even tried: a wrong password is audited
    network-not-allowed too, and the reply is the same 535 5.7.8."""
    srv.cli("user", "set", BOB, "networks=10.0.0.0/8")
    assert_refused(srv, BOB, "network-not-allowed", password="Surely-Not-Bobs-Password-1")


# ---- disabled accounts ----

def test_disabled_user(srv):
    """enabled=no: the right password gets 535 (account-disabled); enabled=yes again
    lets the user in; alice is never affected."""
    srv.cli("user", "set", BOB, "enabled=no")
    assert show(srv, BOB).splitlines()[1] == "enabled no"
    assert_refused(srv, BOB, "account-disabled")
    assert_accepted(srv, ALICE)
    srv.cli("user", "set", BOB, "enabled=yes")
    assert show(srv, BOB).splitlines()[1] == "enabled yes"
    assert_accepted(srv, BOB)


def test_wrong_password_of_disabled_user_is_bad_credentials(srv):
    """The account's state is only considered once the password is right: a wrong
    password for a disabled or switched-off user is bad-credentials."""
    srv.cli("user", "set", BOB, "enabled=no", "smtp-auth=off")
    assert_refused(srv, BOB, "bad-credentials", password="Surely-Not-Bobs-Password-2")


# ---- the CLI ----

@pytest.mark.parametrize("args,rc,err", [
    (("user", "set", BOB, "smtp-auth=maybe"), 2, "smtp-auth takes on, off or default"),
    (("user", "set", BOB, "enabled=default"), 2, "enabled takes yes or no"),
    (("user", "set", BOB, "colour=red"), 2, "unknown setting 'colour'"),
    (("user", "set", BOB, "smtp-auth"), 2, "expected KEY=VALUE"),
    (("user", "set", BOB, "networks=banana"), 1, "banana"),
    (("user", "set", BOB, "networks=10.0.0.0/33"), 1, "10.0.0.0/33"),
    (("user", "set", "nobody@example.test", "smtp-auth=off"), 1, "No such user: nobody@example.test."),
    (("user", "show", "nobody@example.test"), 1, "No such user: nobody@example.test."),
    (("domain", "set", "example.test", "smtp-auth=default"), 2, "expected smtp-auth, imap or pop3"),
    (("domain", "show", "nowhere.test"), 1, "No such domain: nowhere.test."),
])
def test_cli_errors(srv, args, rc, err):
    """Usage errors exit 2, refusals 1, with one sentence on stderr and no change."""
    before = show(srv, BOB)
    r = srv.cli(*args, check=False)
    assert r.returncode == rc, (r.returncode, r.stdout, r.stderr)
    assert err in r.stderr and r.stdout == "", r.stderr
    assert show(srv, BOB) == before


def test_cli_checks_every_pair_first(srv):
    """A bad pair anywhere in the command changes nothing, not even the good ones."""
    r = srv.cli("user", "set", BOB, "smtp-auth=off", "enabled=no", "colour=red", check=False)
    assert r.returncode == 2
    assert "smtp-auth on (domain default)" in show(srv, BOB)
    assert "enabled yes" in show(srv, BOB)
    assert_accepted(srv, BOB)


def test_cli_changes_write_admin_audit_lines(srv):
    """Every CLI change writes {"event":"admin","result":"ok","action":...,"target":...,
    "actor":...}; reads (show, list) and refused commands write nothing."""
    srv.cli("user", "add", "carol@example.test", "--password-stdin",
            input="Staple-Lamp-Horizon-7731\n")
    srv.cli("user", "set", "carol@example.test", "smtp-auth=off")
    srv.cli("domain", "set", "example.test", "pop3=off")
    srv.cli("sendas", "add", ALICE, "@partner.test")
    srv.cli("alias", "add", "sales@example.test", ALICE)
    srv.cli("user", "del", "carol@example.test")
    show(srv, BOB)
    srv.cli("sendas", "list")
    srv.cli("user", "set", "nobody@example.test", "smtp-auth=off", check=False)
    evs = audit_events(srv, "admin")
    # provision(): domain add + two user adds come first.
    got = [(e["action"], e["target"]) for e in evs[3:]]
    assert got == [("user add", "carol@example.test"),
                   ("user set", "carol@example.test smtp-auth=off"),
                   ("domain set", "example.test pop3=off"),
                   ("sendas add", "alice@example.test @partner.test"),
                   ("alias add", "sales@example.test alice@example.test"),
                   ("user del", "carol@example.test")], got
    for e in evs:
        assert e["result"] == "ok" and e["actor"] and e["ts"].endswith("Z"), e
    # The password given on stdin is not in the audit log.
    assert "Staple-Lamp-Horizon-7731" not in (srv.state / "audit.log").read_text()


# ---- listener allow / deny ----

def greeting_from(srv, listener, source):
    """What a client bound to source gets on connecting: (first line, closed after)."""
    s = socket.create_connection(("127.0.0.1", srv.ports[listener]), source_address=(source, 0),
                                 timeout=5)
    data = b""
    try:
        while not data.endswith(b"\r\n"):
            chunk = s.recv(1000)
            if not chunk:
                break
            data += chunk
        s.settimeout(2)
        try:
            closed = s.recv(1000) == b""
        except (socket.timeout, TimeoutError):
            closed = False
        except ConnectionResetError:
            closed = True
    finally:
        s.close()
    return data.decode(errors="replace"), closed


def test_listener_deny_from_config(make_checked_server):
    """listener mx { deny = "127.0.0.5/32" }: a client from 127.0.0.5 gets 554 5.7.1
    instead of the greeting and is disconnected (RFC 5321 §3.1); 127.0.0.1 and
    127.0.0.6 are served; the other listeners do not deny 127.0.0.5."""
    srv = make_checked_server(settings=FAST, listener_options={"mx": {"deny": '"127.0.0.5/32"'}})
    line, closed = greeting_from(srv, "mx", "127.0.0.5")
    assert line == "554 5.7.1 Access denied\r\n" and closed, (line, closed)
    assert "front: 127.0.0.5 refused on mx: network not allowed" in srv.log_text()
    for src in ("127.0.0.1", "127.0.0.6"):
        line, closed = greeting_from(srv, "mx", src)
        assert line.startswith("220 mx.example.test") and not closed, (src, line)
    line, _ = greeting_from(srv, "submission", "127.0.0.5")
    assert line.startswith("220 "), line
    # The refused client never got a session: no transaction, nothing delivered.
    assert srv.messages("alice") == []


def test_listener_deny_from_command_line(make_checked_server):
    """rampartd -o listener.mx.deny=127.0.0.0/30 refuses .1 to .3, serves .4."""
    srv = make_checked_server(settings=FAST, start=False)
    srv.start("-o", "listener.mx.deny=127.0.0.0/30")
    try:
        for src in ("127.0.0.2", "127.0.0.3"):
            line, closed = greeting_from(srv, "mx", src)
            assert line == "554 5.7.1 Access denied\r\n" and closed, (src, line)
        line, closed = greeting_from(srv, "mx", "127.0.0.4")
        assert line.startswith("220 ") and not closed, line
    finally:
        assert srv.stop() == 0


def test_listener_allow_and_deny(make_checked_server):
    """allow = 127.0.0.0/29 with deny = 127.0.0.5/32 on submission: deny is checked
    first (127.0.0.5 refused though allowed), outside allow is refused (127.0.0.9),
    the rest is served and can log in."""
    srv = make_checked_server(settings=FAST, listener_options={
        "submission": {"allow": '"127.0.0.0/29"', "deny": '"127.0.0.5/32"'}})
    for src, ok in (("127.0.0.1", True), ("127.0.0.4", True), ("127.0.0.5", False),
                    ("127.0.0.9", False)):
        line, closed = greeting_from(srv, "submission", src)
        if ok:
            assert line.startswith("220 ") and not closed, (src, line)
        else:
            assert line == "554 5.7.1 Access denied\r\n" and closed, (src, line)
    assert_accepted(srv, ALICE, source="127.0.0.4")
    # mx has no list: 127.0.0.9 is served there.
    line, _ = greeting_from(srv, "mx", "127.0.0.9")
    assert line.startswith("220 "), line


def test_listener_deny_on_implicit_tls_sends_no_clear_text(make_checked_server):
    """RFC 8314 §3: on submissions the first byte must be TLS, so a denied client is
    closed without the clear-text 554; an allowed one completes the handshake."""
    srv = make_checked_server(settings=FAST, listener_options={
        "submissions": {"deny": '"127.0.0.5/32"'}})
    line, closed = greeting_from(srv, "submissions", "127.0.0.5")
    assert line == "" and closed, line
    assert_accepted(srv, ALICE, source="127.0.0.4", listener="submissions")


def test_bad_listener_network_refused_at_start(make_checked_server):
    """A deny list that does not parse is a configuration error: `rampartd -n` exits
    non-zero naming the listener and the setting."""
    srv = make_checked_server(settings=FAST, start=False)
    text = srv.config.read_text()
    mx_line = f'port = {srv.ports["mx"]} }}'
    assert mx_line in text
    srv.config.write_text(text.replace(mx_line, f'port = {srv.ports["mx"]} deny = "127.0.0.300/32" }}'))
    r = subprocess.run([str(BUILD / "rampartd"), "-n", "-c", str(srv.config)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "listener mx" in r.stderr and "deny" in r.stderr and "127.0.0.300" in r.stderr, r.stderr
