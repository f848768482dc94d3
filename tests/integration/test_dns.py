"""`rampart dns query NAME TYPE`: what Rampart's resolver answers, from a static
zone file (--dns-zone) and from a real server (`unbound` on a loopback port,
reached with --resolver HOST@PORT through libunbound), which must agree.

Exit statuses: 0 for an answer (NXDOMAIN and NODATA included), 1 for a
temporary failure, 2 for bad usage.
"""
import subprocess
import time

import pytest

from conftest import BUILD
from unbound import Unbound, free_port

RECORDS = [
    ("@", "TXT", '"v=spf1 " "-all"'),
    ("@", "MX", "10 mail"),
    ("mail", "A", "192.0.2.1"),
    ("mail", "AAAA", "2001:db8::1"),
    ("alias", "CNAME", "mail"),
    ("esc", "TXT", '"a\\"b" "\\065\\066"'),
]

ZONE = """$ORIGIN example.test.
$TTL 300
@      TXT   "v=spf1 " "-all"
       MX    10 mail
mail   A     192.0.2.1
       AAAA  2001:db8::1
alias  CNAME mail
esc    TXT   "a\\"b" "\\065\\066"
slow   TIMEOUT
"""


def rampart(*args, config="/nonexistent", timeout=30):
    start = time.monotonic()
    r = subprocess.run([str(BUILD / "rampart"), "-c", str(config), "dns", "query", *args],
                       capture_output=True, text=True, timeout=timeout)
    r.elapsed = time.monotonic() - start
    return r


def parsed(r):
    """{"status":..., "secure":..., "ttl":..., "why":...} and the record lines."""
    head, records = {}, []
    for line in r.stdout.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in ("status", "secure", "ttl", "why"):
            head[key] = value
        else:
            records.append(line)
    return head, records


@pytest.fixture(scope="module")
def zone_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("zone") / "example.zone"
    path.write_text(ZONE)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    u = Unbound(tmp_path_factory.mktemp("unbound"),
                {"example.test": RECORDS, "refused.test": "refuse"})
    yield u
    u.stop()


@pytest.fixture(params=["zone", "unbound"])
def source(request, zone_file, server):
    """The options that pick the DNS source."""
    if request.param == "zone":
        return ["--dns-zone", str(zone_file)]
    return ["--resolver", server.addr, "--timeout", "3000"]


def query(source, name, rtype, code=0):
    r = rampart(name, rtype, *source)
    assert r.returncode == code, r.stdout + r.stderr
    return parsed(r)


def test_a_aaaa(source):
    head, records = query(source, "mail.example.test", "A")
    assert head == {"status": "ok", "secure": "no", "ttl": "300"}
    assert records == ["300 IN A 192.0.2.1"]
    head, records = query(source, "MAIL.Example.Test.", "AAAA")
    assert head["status"] == "ok"
    assert records == ["300 IN AAAA 2001:db8::1"]


def test_mx(source):
    head, records = query(source, "example.test", "MX")
    assert head["status"] == "ok"
    assert records == ["300 IN MX 10 mail.example.test."]


def test_txt_strings_concatenated(source):
    # RFC 7208 §3.3: the strings of one TXT record are joined with nothing between.
    head, records = query(source, "example.test", "TXT")
    assert head["status"] == "ok"
    assert records == ['300 IN TXT "v=spf1 -all"']
    head, records = query(source, "esc.example.test", "txt")
    assert records == ['300 IN TXT "a\\"bAB"']


def test_nxdomain(source):
    head, records = query(source, "nope.example.test", "A")
    assert head["status"] == "nxdomain"
    assert records == []


def test_nodata(source):
    head, records = query(source, "mail.example.test", "TXT")
    assert head["status"] == "ok"
    assert records == []


def test_cname_followed(source):
    head, records = query(source, "alias.example.test", "A")
    assert head["status"] == "ok"
    assert records == ["300 IN A 192.0.2.1"]
    head, records = query(source, "alias.example.test", "CNAME")
    assert records == ["300 IN CNAME mail.example.test."]


def test_invalid_name_is_refused(source):
    head, records = query(source, "a" * 64 + ".example.test", "A", code=1)
    assert head["status"] == "formerr"
    assert "longer than 63" in head["why"]


def test_timeout_name_in_zone(zone_file):
    r = rampart("slow.example.test", "A", "--dns-zone", str(zone_file))
    assert r.returncode == 1, r.stdout + r.stderr
    head, records = parsed(r)
    assert head["status"] == "tempfail"
    assert "timed out" in head["why"]
    assert records == []


def test_refused_is_tempfail(server):
    r = rampart("x.refused.test", "A", "--resolver", server.addr, "--timeout", "3000")
    assert r.returncode == 1, r.stdout + r.stderr
    assert parsed(r)[0]["status"] == "tempfail"


def closed_port():
    return free_port()   # free: nobody answers there


def test_closed_port_tempfail_within_timeout():
    r = rampart("mail.example.test", "A", "--resolver", f"127.0.0.1@{closed_port()}",
                "--timeout", "500")
    assert r.returncode == 1, r.stdout + r.stderr
    head, records = parsed(r)
    assert head["status"] == "tempfail"
    assert records == []
    assert r.elapsed < 5


def test_configured_resolver_and_timeout(tmp_path, server):
    # Neither option: the configuration's dns.resolver and dns.timeout.
    conf = tmp_path / "rampart.conf"
    conf.write_text(f'dns.resolver = "127.0.0.1@{closed_port()}"\n'
                    'dns.trust_anchor = ""\ndns.timeout = 400ms\n')
    r = rampart("mail.example.test", "A", config=conf)
    assert r.returncode == 1, r.stdout + r.stderr
    assert parsed(r)[0]["status"] == "tempfail"
    assert r.elapsed < 5
    conf.write_text(f'dns.resolver = "{server.addr}"\ndns.trust_anchor = ""\n')
    r = rampart("mail.example.test", "A", config=conf)
    assert r.returncode == 0, r.stdout + r.stderr
    assert parsed(r)[1] == ["300 IN A 192.0.2.1"]


def test_configured_zone(tmp_path, zone_file):
    conf = tmp_path / "rampart.conf"
    conf.write_text(f'dns.zone = "{zone_file}"\n')
    r = rampart("example.test", "MX", config=conf)
    assert r.returncode == 0, r.stdout + r.stderr
    assert parsed(r)[1] == ["300 IN MX 10 mail.example.test."]


def test_usage_errors(zone_file, server):
    both = rampart("mail.example.test", "A", "--dns-zone", str(zone_file),
                   "--resolver", server.addr)
    assert both.returncode == 2
    assert "exclude each other" in both.stderr
    assert rampart("mail.example.test", "--dns-zone", str(zone_file)).returncode == 2
    assert rampart("mail.example.test", "BOGUS", "--dns-zone", str(zone_file)).returncode == 2
    assert rampart("mail.example.test", "A", "--frobnicate").returncode == 2
    assert rampart("mail.example.test", "A", "--timeout", "0").returncode == 2
    assert rampart("mail.example.test", "A", "--dns-zone").returncode == 2


def test_bad_zone_file(tmp_path):
    bad = tmp_path / "bad.zone"
    bad.write_text("ok.test A 192.0.2.1\nbroken.test A 300.1.2.3\n")
    r = rampart("ok.test", "A", "--dns-zone", str(bad))
    assert r.returncode == 1
    assert str(bad) in r.stderr
    assert "line 2" in r.stderr
    assert r.stdout == ""
