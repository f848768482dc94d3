"""No open relay: every address form of ../shared/conformance/smtp-relay/ (nmap's
smtp-open-relay templates and supplemental cases, see its PROVENANCE.md) is sent as
RCPT on the mx listener without authentication. Each must be refused with 5xx
(550/553/554/501, RFC 5321 §3.6 / §4.1.2 / Appendix C) and nothing may be queued for
a remote domain or stored outside example.test.

The same cases run on the submission listeners inside TLS without AUTH: there MAIL
itself is refused (530 5.7.0, RFC 4954 §6), and RCPT/DATA find no transaction. The
positive control (nmap-02 after AUTH) runs on a server of its own.

One server is shared by the whole module (the cases are independent sessions); its
shutdown is checked like the `server` fixture does.
"""
import json
import re
import time

import pytest

from conftest import SHARED, Rampart, auth_plain_b64
from test_smtp_support import SMTPRaw, dot_stuff, message, settle, spool_files

RELAY_DIR = SHARED / "conformance" / "smtp-relay"
CASES_FILE = RELAY_DIR / "open-relay-tests.json"

VALUES = {
    "from": "antispam",
    "to": "relaytest",
    "domain": "relaytest.example",
    "DOMAIN_UPPER": "RELAYTEST.EXAMPLE",
    "ip": "127.0.0.1",
    "srvname": "mx.example.test",
    "local_domain": "example.test",
}


def load_cases():
    if not CASES_FILE.exists():
        return []
    return json.loads(CASES_FILE.read_text())["cases"]


CASES = load_cases()
pytestmark = pytest.mark.skipif(not CASES, reason=f"open-relay conformance data absent: {CASES_FILE}")


def fill(template):
    out = template
    for k, v in VALUES.items():
        out = out.replace("{" + k + "}", v)
    assert "{" not in out, f"unknown placeholder in {template!r}"
    return out


@pytest.fixture(scope="module")
def relay_server(tmp_path_factory, tls_files):
    r = Rampart(tmp_path_factory.mktemp("relay"), tls_files)
    r.provision()
    r.start()
    yield r
    rc = r.stop()
    assert rc == 0, "rampartd exited with %s:\n%s" % (rc, r.log_text()[-6000:])
    assert "ERROR: AddressSanitizer" not in r.log_text()
    assert "runtime error:" not in r.log_text()


def case_lines(case):
    """(EHLO name, MAIL FROM address, RCPT line, RCPT address) of one case, with the
    notes of supp-15/16/17."""
    cid = case["id"]
    ehlo = "localhost" if cid == "supp-15" else "client.relaytest.example"
    mail_from = fill(case["mail_from"])
    rcpt_to = fill(case["rcpt_to"])
    if cid == "supp-16":
        rcpt_line = f"RCPT TO: {rcpt_to}"                         # no angle brackets
    elif cid == "supp-17":
        rcpt_line = (f"RCPT TO:<{rcpt_to}> NOTIFY=NEVER "
                     f"ORCPT=rfc822;{VALUES['to']}@{VALUES['local_domain']}")
    else:
        rcpt_line = f"RCPT TO:<{rcpt_to}>"
    return ehlo, mail_from, rcpt_line, rcpt_to


def run_case(srv, case):
    """The procedure of the JSON file: EHLO, RSET, MAIL FROM, RCPT TO (with the notes of
    supp-15/16/17). Returns (mail reply, rcpt reply or None, transcript)."""
    cid = case["id"]
    ehlo, mail_from, rcpt_line, rcpt_to = case_lines(case)
    log = []
    with SMTPRaw(srv.ports["mx"]) as c:
        c.ehlo(ehlo)
        assert c.cmd("RSET").code == 250
        mail = c.cmd(f"MAIL FROM:<{mail_from}>")
        log.append((f"MAIL FROM:<{mail_from}>", mail))
        rcpt = None
        if mail.code // 100 == 2:
            rcpt = c.cmd(rcpt_line)
            log.append((rcpt_line, rcpt))
            if rcpt.code // 100 == 2:
                # What metasploit does next: try to get the message queued.
                r = c.cmd("DATA")
                log.append(("DATA", r))
                if r.code == 354:
                    c.send(dot_stuff(message(f"relay {cid}", to=rcpt_to).encode()))
                    log.append(("<message>", c.reply()))
        c.cmd("QUIT")
    return mail, rcpt, log


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_open_relay_form_refused(relay_server, case):
    """RFC 5321 §3.6 / Appendix C: relaying is refused without authentication, whatever
    the address form (source routes, %-hack, bang paths, quoted @, literals, case,
    trailing dot, look-alike domains, spoofed sender or EHLO, no brackets, DSN)."""
    mail, rcpt, log = run_case(relay_server, case)
    if mail.code // 100 == 5:
        return   # MAIL itself refused: the case passes (see the file's "expected")
    assert mail.code == 250, log
    assert rcpt is not None and rcpt.code in (501, 550, 553, 554), \
        f"{case['id']}: RCPT not refused with 5xx: {log}"
    assert rcpt.enhanced is not None and rcpt.enhanced.startswith("5."), log


def run_case_submission(srv, case, listener):
    """The same procedure on a submission listener, inside TLS (STARTTLS, or implicit
    TLS), without AUTH; after MAIL whatever its reply, RCPT and DATA are tried too, as
    a relay tester would. Returns (mail, rcpt, data replies, transcript)."""
    cid = case["id"]
    ehlo, mail_from, rcpt_line, rcpt_to = case_lines(case)
    log = []
    c = SMTPRaw(srv.ports[listener], tls=listener == "submissions")
    with c:
        if listener == "submission":
            c.ehlo(ehlo)
            c.starttls()
        c.ehlo(ehlo)
        assert c.cmd("RSET").code == 250
        mail = c.cmd(f"MAIL FROM:<{mail_from}>")
        log.append((f"MAIL FROM:<{mail_from}>", mail))
        rcpt = c.cmd(rcpt_line)
        log.append((rcpt_line, rcpt))
        data = c.cmd("DATA")
        log.append(("DATA", data))
        if data.code == 354:
            c.send(dot_stuff(message(f"relay {cid}", to=rcpt_to).encode()))
            log.append(("<message>", c.reply()))
        c.cmd("QUIT")
    return mail, rcpt, data, log


@pytest.mark.parametrize("listener", ["submission", "submissions"])
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_open_relay_form_refused_on_submission(relay_server, case, listener):
    """RFC 4954 §6 / RFC 6409 §4.3: on a submission listener, even inside TLS, no mail
    transaction starts without AUTH: MAIL is 530 5.7.0 whatever the address form, RCPT
    and DATA that follow are refused (5xx, no transaction)."""
    mail, rcpt, data, log = run_case_submission(relay_server, case, listener)
    assert (mail.code, mail.enhanced) == (530, "5.7.0"), log
    assert rcpt.code // 100 == 5 and data.code // 100 == 5, log


def test_open_relay_nothing_queued_or_stored(relay_server):
    """After all cases (run again here so this test stands alone, on mx and on both
    submission listeners): the spool queue is empty, nothing is waiting in incoming/,
    `rampart queue list` has no message, and the mail store holds nothing outside
    example.test — in particular no relaytest.example directory."""
    for case in CASES:
        run_case(relay_server, case)
        run_case_submission(relay_server, case, "submission")
        run_case_submission(relay_server, case, "submissions")
    settle(relay_server)
    assert not spool_files(relay_server, "queue")
    assert not spool_files(relay_server, "incoming")
    if relay_server.mail.exists():
        domains = sorted(p.name for p in relay_server.mail.iterdir())
        assert set(domains) <= {"example.test"}, domains
    r = relay_server.cli("queue", "list", check=False)
    assert "relaytest" not in r.stdout.lower(), r.stdout
    assert r.stdout == "0 messages in the queue\n", r.stdout
    # No session of the module authenticated.
    audit = relay_server.state / "audit.log"
    if audit.exists():
        auth_ok = [ln for ln in audit.read_text().splitlines()
                   if json.loads(ln).get("event") == "auth" and json.loads(ln)["result"] == "ok"]
        assert auth_ok == []


def test_positive_control_local_delivery(relay_server):
    """The positive control: on the same listener a local recipient IS accepted and
    delivered, so the refusals above are relay control, not a broken server. (The
    authenticated-relay control nmap-02 is test_positive_control_after_auth.)"""
    with SMTPRaw(relay_server.ports["mx"]) as c:
        c.ehlo("client.relaytest.example")
        assert c.cmd(f"MAIL FROM:<{VALUES['from']}@{VALUES['domain']}>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<relaytest@relaytest.example>").code == 554
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("relay-control", frm="antispam@relaytest.example").encode()))
        assert c.reply().code == 250
        c.quit()
    msgs = relay_server.wait_messages("alice", 1)
    assert any(b"relay-control" in p.read_bytes() for p in msgs)
    settle(relay_server)
    assert not spool_files(relay_server, "queue")


def test_positive_control_after_auth(make_checked_server):
    """The file's positive control: after AUTH on submission, relaying IS accepted, so
    the 530s above are authentication, not a broken listener. nmap-02's envelope sender
    (antispam@relaytest.example) is not alice's, so it is 553 5.7.1 (sender
    accountability) until alice gets a send-as grant for @relaytest.example; then the
    case exactly as written is accepted and queued for the external recipient."""
    srv = make_checked_server(settings={"auth_failure_delay": "50ms"})
    nmap02, = [c for c in CASES if c["id"] == "nmap-02"]
    mail_from, rcpt_to = fill(nmap02["mail_from"]), fill(nmap02["rcpt_to"])
    alice = "alice@example.test"

    def session():
        c = SMTPRaw(srv.ports["submission"])
        c.ehlo("client.relaytest.example")
        c.starttls()
        c.ehlo("client.relaytest.example")
        assert c.cmd("AUTH PLAIN " + auth_plain_b64(alice, Rampart.PASSWORDS[alice])).code == 235
        assert c.cmd("RSET").code == 250
        return c

    with session() as c:
        r = c.cmd(f"MAIL FROM:<{mail_from}>")
        assert (r.code, r.enhanced) == (553, "5.7.1"), r
        c.quit()
    srv.cli("sendas", "add", alice, "@" + VALUES["domain"])
    with session() as c:
        assert c.cmd(f"MAIL FROM:<{mail_from}>").code == 250
        r = c.cmd(f"RCPT TO:<{rcpt_to}>")
        assert (r.code, r.enhanced) == (250, "2.1.5"), r
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("relay-auth-control", frm=mail_from, to=rcpt_to).encode()))
        r = c.reply()
        assert r.code == 250, r
        qid = re.search(r"queued as (\S+)", r.text).group(1)
        c.quit()
    deadline = time.time() + 10
    while True:
        out = srv.cli("queue", "list").stdout
        if re.search(r"^\s+pending\s+%s " % re.escape(rcpt_to), out, re.M):
            break
        assert time.time() < deadline, out
        time.sleep(0.1)
    assert qid in out, out
    # Never delivered locally: relaytest.example is not a local domain.
    assert not (srv.mail / VALUES["domain"]).exists()
