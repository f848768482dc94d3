"""DNSSEC validation by Rampart's libunbound resolver (src/dns/dns-unbound.c),
seen through `rampart -c CONF dns query NAME TYPE`.

A loopback `unbound` serves, with auth-zone:, two zones signed here with
ldns-keygen/ldns-signzone (ECDSAP256SHA256, algorithm 13; NSEC):
signed.test, left as signed, and broken.test, whose TXT record is changed after
signing so that its RRSIG no longer matches (RFC 4035 §5.3). The trust anchor
file (dns.trust_anchor) holds the DS records of the two KSKs, so libunbound
validates from each zone's own apex and never needs the root or test.
(the resolver forwards everything to dns.resolver, test. included).

RFC 4035 §4.3: a validated answer is secure (`secure: yes`); an answer whose
signatures fail is bogus (`status: bogus`, exit 1) and its records are not
given out; a name outside every anchor is insecure (`secure: no`).

Skips when ldns-signzone (package ldnsutils) or unbound is not installed.
"""
import shutil
import subprocess
import time

import pytest

from conftest import BUILD
from unbound import UNBOUND, Unbound

LDNS_KEYGEN = shutil.which("ldns-keygen")
LDNS_SIGNZONE = shutil.which("ldns-signzone")

pytestmark = pytest.mark.skipif(
    LDNS_KEYGEN is None or LDNS_SIGNZONE is None or shutil.which(UNBOUND) is None,
    reason="ldns-keygen/ldns-signzone (ldnsutils) or unbound is not installed")

ZONE = """$ORIGIN {zone}.
$TTL 300
@    SOA   ns1 hostmaster 1 3600 600 86400 300
     NS    ns1
     TXT   "v=spf1 -all"
ns1  A     192.0.2.53
"""

GOOD_TXT = '"v=spf1 -all"'
BAD_TXT = '"v=spf1 +all"'


def keygen(directory, zone, ksk):
    """Makes a key pair for zone; returns its base name (K<zone>+013+<id>)."""
    args = [LDNS_KEYGEN, "-a", "ECDSAP256SHA256"] + (["-k"] if ksk else []) + [zone]
    r = subprocess.run(args, cwd=directory, capture_output=True, text=True, check=True)
    base = r.stdout.strip()
    assert base.startswith(f"K{zone}.+013+"), r.stdout + r.stderr
    return base


def sign(directory, zone):
    """Signs a fresh zone; returns (signed file, DS record line of its KSK)."""
    unsigned = directory / f"{zone}.zone"
    unsigned.write_text(ZONE.format(zone=zone))
    ksk = keygen(directory, zone, True)
    zsk = keygen(directory, zone, False)
    signed = directory / f"{zone}.zone.signed"
    subprocess.run([LDNS_SIGNZONE, "-f", str(signed), str(unsigned), ksk, zsk],
                   cwd=directory, capture_output=True, text=True, check=True)
    ds = (directory / f"{ksk}.ds").read_text().strip()
    assert f"{zone}.\tIN\tDS\t" in ds, ds
    return signed, ds


def break_txt(signed, zone):
    """Changes the apex TXT value and keeps its RRSIG: the signature fails."""
    lines = signed.read_text().splitlines()
    hits = [i for i, ln in enumerate(lines)
            if ln.startswith(f"{zone}.") and "\tTXT\t" in ln and GOOD_TXT in ln]
    assert len(hits) == 1, lines
    lines[hits[0]] = lines[hits[0]].replace(GOOD_TXT, BAD_TXT)
    assert any("\tRRSIG\tTXT " in ln for ln in lines)
    signed.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("dnssec")
    good, good_ds = sign(d, "signed.test")
    bad, bad_ds = sign(d, "broken.test")
    break_txt(bad, "broken.test")
    # A KSK that signed nothing: as an anchor for signed.test no DNSKEY matches it.
    other = d / "other"
    other.mkdir()
    stray = keygen(other, "signed.test", True)
    stray_ds = (other / f"{stray}.ds").read_text().strip()

    anchors = d / "anchors.ds"
    anchors.write_text(good_ds + "\n" + bad_ds + "\n")
    wrong = d / "wrong.ds"
    wrong.write_text(stray_ds + "\n")

    u = Unbound(d / "unbound", {"plain.test": [("@", "TXT", '"unsigned"')]},
                auth_zones={"signed.test": good, "broken.test": bad})

    def conf(name, anchor):
        path = d / name
        path.write_text(f'dns.resolver = "{u.addr}"\n'
                        f'dns.trust_anchor = "{anchor}"\n'
                        "dns.timeout = 5s\n")
        return path

    yield {"server": u,
           "anchored": conf("anchored.conf", anchors),
           "unanchored": conf("unanchored.conf", ""),
           "wrong": conf("wrong.conf", wrong)}
    u.stop()


def query(config, name, rtype, *extra, code=0):
    """Runs the CLI; returns ({status, secure, ttl, why}, [record lines])."""
    start = time.monotonic()
    r = subprocess.run([str(BUILD / "rampart"), "-c", str(config), "dns", "query", name, rtype,
                        *extra], capture_output=True, text=True, timeout=60)
    assert r.returncode == code, f"exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert time.monotonic() - start < 20
    head, records = {}, []
    for line in r.stdout.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in ("status", "secure", "ttl", "why"):
            head[key] = value
        else:
            records.append(line)
    return head, records


def test_signed_answer_is_secure(setup):
    head, records = query(setup["anchored"], "signed.test", "TXT")
    assert head == {"status": "ok", "secure": "yes", "ttl": "300"}
    assert records == [f"300 IN TXT {GOOD_TXT}"]
    head, records = query(setup["anchored"], "ns1.signed.test", "A")
    assert head == {"status": "ok", "secure": "yes", "ttl": "300"}
    assert records == ["300 IN A 192.0.2.53"]


def test_signed_denial_is_secure(setup):
    # RFC 4035 §5.4: NSEC proves the name, or the type, does not exist.
    head, records = query(setup["anchored"], "nope.signed.test", "A")
    assert head["status"] == "nxdomain"
    assert head["secure"] == "yes"
    assert records == []
    head, records = query(setup["anchored"], "ns1.signed.test", "TXT")
    assert head["status"] == "ok"
    assert head["secure"] == "yes"
    assert records == []


def test_broken_signature_is_bogus(setup):
    head, records = query(setup["anchored"], "broken.test", "TXT", code=1)
    assert head["status"] == "bogus"
    assert head["secure"] == "no"
    assert head["why"].startswith("DNSSEC validation failed: "), head
    assert records == []           # RFC 4035 §4.3: bogus data is not given out


def test_rest_of_broken_zone_is_secure(setup):
    # Only the altered RRset is bogus: the zone's keys and other records hold.
    head, records = query(setup["anchored"], "ns1.broken.test", "A")
    assert head == {"status": "ok", "secure": "yes", "ttl": "300"}
    assert records == ["300 IN A 192.0.2.53"]


def test_outside_anchor_is_insecure(setup):
    head, records = query(setup["anchored"], "plain.test", "TXT")
    assert head == {"status": "ok", "secure": "no", "ttl": "300"}
    assert records == ['300 IN TXT "unsigned"']


def test_resolver_option_keeps_configured_anchor(setup):
    # --resolver replaces dns.resolver; dns.trust_anchor still comes from the file.
    u = setup["server"]
    head, _ = query(setup["anchored"], "signed.test", "TXT", "--resolver", u.addr)
    assert head["secure"] == "yes"
    head, _ = query(setup["anchored"], "broken.test", "TXT", "--resolver", u.addr, code=1)
    assert head["status"] == "bogus"


def test_no_anchor_no_validation(setup):
    # dns.trust_anchor = "": nothing is validated, the altered record comes through.
    head, records = query(setup["unanchored"], "signed.test", "TXT")
    assert head == {"status": "ok", "secure": "no", "ttl": "300"}
    assert records == [f"300 IN TXT {GOOD_TXT}"]
    head, records = query(setup["unanchored"], "broken.test", "TXT")
    assert head == {"status": "ok", "secure": "no", "ttl": "300"}
    assert records == [f"300 IN TXT {BAD_TXT}"]


def test_anchor_matching_no_key_is_bogus(setup):
    # RFC 4035 §5: the chain starts at the anchor; no DNSKEY matches this DS.
    head, records = query(setup["wrong"], "signed.test", "TXT", code=1)
    assert head["status"] == "bogus"
    assert records == []
