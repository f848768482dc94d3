"""DKIM keys (issue 5): `rampart dkim keygen`, `rotate` and `list`, and the keys
process of rampartd.

CLI: a rotation makes a new key per type that signs (or --type), prints its TXT
record, writes the schedule into SELECTOR.state files ("not-before" for the new
key, "retire-at" for the old ones, grace 7 days unless --grace), refuses a
second rotation while one is under way and a selector that is taken; `list`
shows each key as active / next (from T) / retiring (until T) / retired since T
/ unusable, with the record to publish under the keys that sign or will, and
the times match the state files. Usage errors exit 2, refusals 1.

Daemon: rampartd starts a keys process ("rampartd-keys", a "keys: ready" log
line), which sees a key made while it runs (within its check interval) and
one whose grace period is 0 switch at once; killed with SIGKILL it is
restarted and the daemon still stops cleanly. End to end: with an ed25519 and
an rsa key for example.test, a message alice submits reaches bob's Maildir with
two DKIM-Signature fields (ed25519 first) that `rampart dkim verify` and dkimpy
(an independent verifier, when installed) pass with the records `rampart dkim
list` prints, and that fail once a body octet changes.
"""
import os
import re
import signal
import subprocess
import time
from datetime import datetime, timezone

import pytest

from conftest import BUILD, login

try:
    import dkim
except ImportError:          # python3-dkim: /usr/bin/python3 has it
    dkim = None

DOMAIN = "example.org"
RECORD = re.compile(r'^(\S+)\._domainkey\.(\S+)\. IN TXT((?: "[^"]*")+)$')
LIST_LINE = re.compile(r"^(\S+) (\S+) (ed25519|rsa|\?) (.*)$")


def run(config, *args):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=66")
    r = subprocess.run([str(BUILD / "rampart"), "-c", str(config), *args],
                       capture_output=True, text=True, timeout=120, env=env)
    return r


@pytest.fixture
def config(tmp_path):
    conf = tmp_path / "rampart.conf"
    conf.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    return conf


def keydir(config):
    return config.parent / "state" / "dkim" / DOMAIN


def keygen(config, selector, kind="ed25519"):
    r = run(config, "dkim", "keygen", DOMAIN, "--type", kind, "--selector", selector)
    assert r.returncode == 0, r.stderr
    return r


def listing(config, *args):
    """{selector: (type, state, record or None)} from `rampart dkim list`."""
    r = run(config, "dkim", "list", *args)
    assert r.returncode == 0, r.stderr
    keys, last = {}, None
    for line in r.stdout.splitlines():
        if line.startswith("  "):
            m = RECORD.match(line[2:])
            assert m and m.group(1) == last and m.group(2) == DOMAIN, line
            keys[last] = (keys[last][0], keys[last][1], "".join(re.findall(r'"([^"]*)"',
                                                                          m.group(3))))
            continue
        m = LIST_LINE.match(line)
        assert m, line
        last = m.group(2)
        keys[last] = (m.group(3), m.group(4), None)
    return keys


def utc(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def state_of(config, selector):
    p = keydir(config) / f"{selector}.state"
    if not p.exists():
        return {}
    out = {}
    for line in p.read_text().splitlines():
        if line and not line.startswith("#"):
            k, v = line.split()
            out[k] = int(v)
    return out


# ---------------------------------------------------------------- the CLI

def test_rotate_both_types_then_list(config):
    keygen(config, "old-e")
    keygen(config, "old-r", "rsa")
    before = listing(config)
    assert {s: v[1] for s, v in before.items()} == {"old-e": "active", "old-r": "active"}
    assert before["old-e"][2].startswith("v=DKIM1; k=ed25519; p=")
    assert before["old-r"][2].startswith("v=DKIM1; k=rsa; p=")

    start = int(time.time())
    r = run(config, "dkim", "rotate", DOMAIN)
    end = int(time.time())
    assert r.returncode == 0, r.stderr
    records = [RECORD.match(l) for l in r.stdout.splitlines()]
    assert len(records) == 2 and all(records), r.stdout
    day = time.strftime("%Y%m%d")
    assert [m.group(1) for m in records] == [day + "e", day + "r"]
    assert "Publish the records above in DNS now." in r.stderr
    assert f"{day}e (ed25519) signs and the 1 ed25519 key before it stops" in r.stderr

    # The schedule: the new keys from now + 7 days, the old ones until then.
    nb = state_of(config, day + "e")["not-before"]
    assert start + 7 * 86400 <= nb <= end + 7 * 86400
    assert state_of(config, day + "r") == {"not-before": nb}
    assert state_of(config, "old-e") == {"retire-at": nb}
    assert state_of(config, "old-r") == {"retire-at": nb}
    assert oct((keydir(config) / f"{day}e.state").stat().st_mode & 0o777) == "0o600"
    assert oct((keydir(config) / f"{day}e.key").stat().st_mode & 0o777) == "0o600"

    after = listing(config, DOMAIN)
    assert after["old-e"][1] == f"retiring (until {utc(nb)})"
    assert after["old-r"][1] == f"retiring (until {utc(nb)})"
    assert after[day + "e"][:2] == ("ed25519", f"next (from {utc(nb)})")
    assert after[day + "r"][:2] == ("rsa", f"next (from {utc(nb)})")
    # list prints the same record that rotate told the operator to publish
    assert after[day + "e"][2] == "".join(re.findall(r'"([^"]*)"', records[0].group(3)))

    # A second rotation while this one is under way is refused.
    r = run(config, "dkim", "rotate", DOMAIN)
    assert r.returncode == 1
    assert "under way" in r.stderr and day + "e" in r.stderr
    r = run(config, "dkim", "rotate", DOMAIN, "--type", "rsa")
    assert r.returncode == 1 and "under way" in r.stderr


def test_grace_zero_switches_and_retires(config):
    keygen(config, "first")
    r = run(config, "dkim", "rotate", DOMAIN, "--grace", "0", "--selector", "second")
    assert r.returncode == 0, r.stderr
    assert "Warning: with --grace 0" in r.stderr
    assert not (keydir(config) / "second.state").exists()     # signs from now on
    t = state_of(config, "first")["retire-at"]
    time.sleep(max(0, t - time.time()) + 0.1)
    keys = listing(config)
    assert keys["second"][1] == "active"
    assert keys["first"][1] == (f"retired since {utc(t)}: remove its DNS record and then "
                                f"the file {keydir(config) / 'first.key'}")
    assert keys["first"][2] is None                # no record to publish any more
    # The retired key is no rotation's old key: the next rotation retires "second" only.
    r = run(config, "dkim", "rotate", DOMAIN, "--grace", "2h", "--selector", "third")
    assert r.returncode == 0, r.stderr
    assert state_of(config, "first") == {"retire-at": t}
    assert state_of(config, "second")["retire-at"] == state_of(config, "third")["not-before"]
    assert 7190 <= state_of(config, "third")["not-before"] - time.time() <= 7210


def test_default_selector_is_never_reused(config):
    day = time.strftime("%Y%m%d")
    keygen(config, "k")
    for want in (day + "e", day + "e-2", day + "e-3"):
        r = run(config, "dkim", "rotate", DOMAIN, "--grace", "0")
        assert r.returncode == 0, r.stderr
        assert RECORD.match(r.stdout.strip()).group(1) == want
    r = run(config, "dkim", "rotate", DOMAIN, "--grace", "0", "--selector", day + "e-2")
    assert r.returncode == 1 and "taken" in r.stderr


def test_add_a_type_and_refusals(config):
    r = run(config, "dkim", "rotate", DOMAIN)
    assert r.returncode == 1 and "No key signs for example.org" in r.stderr
    keygen(config, "ed")
    # --type names a type that does not sign yet: a new key after the grace period.
    r = run(config, "dkim", "rotate", DOMAIN, "--type", "rsa", "--grace", "1d")
    assert r.returncode == 0, r.stderr
    keys = listing(config)
    assert keys["ed"][1] == "active"
    assert [v[1].split(" ")[0] for s, v in keys.items() if v[0] == "rsa"] == ["next"]
    assert state_of(config, "ed") == {}
    r = run(config, "dkim", "list", "other.example")
    assert r.returncode == 1 and "other.example has no DKIM key" in r.stderr


@pytest.mark.parametrize("args", [
    ["dkim", "rotate"],
    ["dkim", "rotate", DOMAIN, "b.example"],
    ["dkim", "rotate", DOMAIN, "--grace", "5x"],
    ["dkim", "rotate", DOMAIN, "--grace", "-1"],
    ["dkim", "rotate", DOMAIN, "--grace", "400d"],
    ["dkim", "rotate", DOMAIN, "--type", "dsa"],
    ["dkim", "rotate", DOMAIN, "--selector", "a/b"],
    ["dkim", "rotate", "not a domain"],
    ["dkim", "rotate", DOMAIN, "--bogus"],
    ["dkim", "list", "a.example", "b.example"],
    ["dkim", "list", "--x"],
    ["dkim", "list", "bad_domain!"],
])
def test_usage_errors(config, args):
    r = run(config, *args)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert r.stderr.strip()


def test_selector_needs_type_when_both_sign(config):
    keygen(config, "e")
    keygen(config, "r", "rsa")
    r = run(config, "dkim", "rotate", DOMAIN, "--selector", "new")
    assert r.returncode == 2 and "add --type" in r.stderr
    assert not (keydir(config) / "new.key").exists()


def test_list_shows_unusable_files(config):
    keygen(config, "good")
    d = keydir(config)
    (d / "broken.key").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n")
    (d / "good.state").write_text("retire-at tomorrow\n")
    (d.parent / "Bad.Domain").mkdir()
    r = run(config, "dkim", "list")
    assert r.returncode == 0, r.stderr
    assert "example.org broken ? unusable: The key is not an unencrypted PEM private key." \
        in r.stdout.splitlines()
    assert any(l.startswith("example.org good ? unusable: Its state file is not usable: "
                            "line 1:") for l in r.stdout.splitlines())
    assert "Warning:" in r.stderr and "Bad.Domain: not a lower-case domain name" in r.stderr
    assert "broken.key" not in r.stderr            # shown in the list, not warned twice


def test_list_without_keys(config):
    r = run(config, "dkim", "list")
    assert r.returncode == 0 and r.stdout == ""
    assert "No DKIM keys in" in r.stderr


def test_help(config):
    for verb in ("rotate", "list"):
        r = run(config, "dkim", verb, "--help")
        assert r.returncode == 0 and r.stdout.startswith(f"Usage: rampart dkim {verb}")


# ---------------------------------------------------------------- the daemon

def wait_log(server, text, timeout=20):
    deadline = time.time() + timeout
    while text not in server.log_text():
        assert time.time() < deadline, f"no {text!r} in:\n" + server.log_text()[-4000:]
        time.sleep(0.05)


def wait_keys_pid(server, not_pid=None, timeout=20):
    deadline = time.time() + timeout
    while True:
        pids = [p for p in server.pids("keys") if p != not_pid]
        if pids:
            return pids[0]
        assert time.time() < deadline, server.log_text()[-4000:]
        time.sleep(0.05)


def test_keys_process_starts_and_follows_the_directory(server):
    wait_log(server, "keys: ready, key directory ")
    wait_keys_pid(server)
    assert "keys: 0 selector(s) sign for 0 domain(s)" in server.log_text()
    # A key made while the daemon runs is seen within the check interval.
    r = server.cli("dkim", "keygen", "example.test", "--selector", "live")
    assert r.returncode == 0
    wait_log(server, "keys: 1 selector(s) sign for 1 domain(s)")
    # A rotation with grace 0: the set changes (old retired, new signing) at once.
    r = server.cli("dkim", "rotate", "example.test", "--grace", "0", "--selector", "live2")
    assert r.returncode == 0, r.stderr
    deadline = time.time() + 20
    while server.log_text().count("keys: 1 selector(s) sign for 1 domain(s)") < 2:
        assert time.time() < deadline, server.log_text()[-4000:]
        time.sleep(0.05)


def test_killed_keys_process_is_restarted(server):
    wait_log(server, "keys: ready")
    pid = wait_keys_pid(server)
    os.kill(pid, signal.SIGKILL)
    new = wait_keys_pid(server, not_pid=pid)
    assert new != pid
    wait_log(server, f"keys/0 (pid {pid}) killed by signal 9; restarting")
    deadline = time.time() + 20
    while server.log_text().count("keys: ready") < 2:
        assert time.time() < deadline, server.log_text()[-4000:]
        time.sleep(0.05)
    assert sorted(r for r in server.children().values() if not r.startswith("front")) == \
        ["auth", "keys", "queue"]


def zone_from_list(server, domain):
    """{name: TXT} and an RFC 1035 zone text of the records `rampart dkim list` prints."""
    r = server.cli("dkim", "list", domain)
    records, lines = {}, []
    for line in r.stdout.splitlines():
        if line.startswith("  "):
            m = RECORD.match(line[2:])
            records[f"{m.group(1)}._domainkey.{m.group(2)}"] = "".join(
                re.findall(r'"([^"]*)"', m.group(3)))
            lines.append(line[2:].replace(" IN TXT", " 300 IN TXT"))
    return records, "\n".join(lines) + "\n"


def test_submission_is_signed_end_to_end(server, tmp_path):
    server.cli("dkim", "keygen", "example.test", "--type", "ed25519", "--selector", "se")
    server.cli("dkim", "keygen", "example.test", "--type", "rsa", "--selector", "sr")
    wait_log(server, "keys: 2 selector(s) sign for 1 domain(s)")
    wait_log(server, "queue: 2 DKIM selector(s) sign")
    body = "".join(f"line {i} of the body, which is long enough to matter\r\n"
                   for i in range(2000))
    msg = ("From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n"
           "Subject: signed\r\nMessage-ID: <k1@example.test>\r\n\r\n" + body)
    s = login(server)
    s.sendmail("alice@example.test", ["bob@example.test"], msg)
    s.quit()
    got = server.wait_messages("bob", 1)[0].read_bytes()
    # The Maildir copy has LF line ends; Return-Path and Delivered-To come first.
    fields = [l for l in got.split(b"\n") if l.startswith(b"DKIM-Signature:")]
    assert len(fields) == 2
    assert b"a=ed25519-sha256" in fields[0] and b"a=rsa-sha256" in fields[1]
    assert got.index(b"\nDKIM-Signature:") < got.index(b"\nReceived:")

    records, zone_text = zone_from_list(server, "example.test")
    zone = tmp_path / "keys.zone"
    zone.write_text(zone_text)
    r = subprocess.run([str(BUILD / "rampart"), "-c", str(server.config), "dkim", "verify",
                        "--dns-zone", str(zone)], input=got, capture_output=True, timeout=60)
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0, r.stderr
    assert [l.split()[0:4] for l in lines] == [
        ["dkim=pass", "header.d=example.test", "header.s=se", "header.a=ed25519-sha256"],
        ["dkim=pass", "header.d=example.test", "header.s=sr", "header.a=rsa-sha256"]]
    tampered = got.replace(b"line 1000 of", b"line 1001 of")
    r = subprocess.run([str(BUILD / "rampart"), "-c", str(server.config), "dkim", "verify",
                        "--dns-zone", str(zone)], input=tampered, capture_output=True,
                       timeout=60)
    assert r.returncode == 1
    assert [l.split()[0] for l in r.stdout.decode().splitlines()] == ["dkim=fail"] * 2
    if dkim is not None:
        def dnsfunc(name, timeout=5):
            v = records.get(name.decode().rstrip("."))
            return v.encode() if v is not None else None
        def dkimpy_verify(m, idx):
            try:
                return bool(dkim.DKIM(m).verify(idx=idx, dnsfunc=dnsfunc))
            except dkim.DKIMException:
                return False
        for idx in (0, 1):
            assert dkimpy_verify(got, idx)
            assert not dkimpy_verify(tampered, idx)
