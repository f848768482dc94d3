"""DKIM through the CLI: `rampart dkim verify`, `sign` and `keygen` (issue 4).

Conformance (skipped when ../shared/conformance is absent; see its
dkim/PROVENANCE.md):
  - rfc8463/: both signatures of the RFC 8463 A.3 message pass with the A.2
    records (zone file, TXT split into strings of at most 255 octets);
  - dkimpy-data/manifest.json, every case "as the manifest says". dkimpy's
    answers map to ours as follows:
        dkim.verify() True                           -> dkim=pass (exit 0)
        False: bad signature / body hash mismatch    -> dkim=fail
        False or ValidationError/KeyFormatError for a
          signature or key record it rejects         -> dkim=permerror
        no DKIM-Signature (present() False)          -> dkim=none (exit 1)
    and a signature dkimpy makes must fail with both after a one-byte change;
  - mail-dkim-corpus/: a robustness run over 57 messages (mostly pre-RFC 6376
    drafts, rsa-sha1, 512/768-bit keys): each verifies without a crash or a hang
    and each signature's result is compared with what RFC 6376 + RFC 8301 make
    of Mail::DKIM's expectation (rfc_expected() below); agreement is printed per
    category. Asserted: no crash, every case without a legacy flag (the
    ed25519 ones) agrees, and no legacy signature passes.
Differential with dkimpy (python3-dkim, offline through dnsfunc): messages
signed by `rampart dkim sign` (ed25519 and RSA-2048 keys from `rampart dkim
keygen`, relaxed and simple) verify with dkimpy; messages dkimpy signs (both
algorithms, relaxed/relaxed and simple/simple, three header sets) verify with
`rampart dkim verify`; a one-byte change to the body or to a signed header fails
both. Message shapes: empty body, trailing blank lines, long lines, folded
headers, 8-bit UTF-8, many headers, whitespace runs, LF line ends.
CLI behaviour: usage errors exit 2 with a sentence; keygen never overwrites,
writes 0600 keys in 0700 directories, and its printed TXT line, pasted into a
zone file, verifies what that key signs.
"""
import base64
import hashlib
import json
import os
import re
import stat
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import BUILD, SHARED

try:
    import dkim
except ImportError:          # python3-dkim: /usr/bin/python3 has it
    dkim = None

CONF = SHARED / "conformance" / "dkim"
need_conformance = pytest.mark.skipif(not CONF.is_dir(), reason="no ../shared/conformance/dkim")
need_dkimpy = pytest.mark.skipif(dkim is None, reason="python3-dkim is not installed")

DOMAIN = "example.com"
LINE = re.compile(r'^dkim=(\w+)((?: header\.[a-z]=(?:"(?:[^"\\]|\\.)*"|[^ ()]+))*)(?: \((.*)\))?$')
PROP = re.compile(r' header\.([a-z])=("(?:[^"\\]|\\.)*"|[^ ()]+)')


# ---------------------------------------------------------------- helpers

def run(args, input=b"", config=None, timeout=60, stdin=None):
    env = dict(os.environ)
    env["RAMPART_CONFIG"] = str(config) if config else "/nonexistent/rampart.conf"
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=66")
    kw = {"stdin": stdin} if stdin is not None else {"input": input}
    return subprocess.run([str(BUILD / "rampart"), *args], capture_output=True,
                          timeout=timeout, env=env, **kw)


def txt_strings(data: bytes):
    """A TXT value as RFC 1035 <character-string>s of at most 255 octets, quoted."""
    def esc(chunk):
        return "".join("\\" + chr(b) if b in b'"\\' else chr(b) if 32 <= b < 127
                       else "\\%03d" % b for b in chunk)
    chunks = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
    return " ".join('"' + esc(c) + '"' for c in chunks)


def write_zone(path: Path, records):
    """records: {name: TXT value (str/bytes) | "TIMEOUT" | list of values}."""
    lines = []
    for name, value in records.items():
        name = name.rstrip(".") + "."
        if value == "TIMEOUT":
            lines.append(f"{name} TIMEOUT")
            continue
        for v in value if isinstance(value, list) else [value]:
            v = v.encode() if isinstance(v, str) else v
            lines.append(f"{name} 300 IN TXT {txt_strings(v)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def parse_line(line):
    m = LINE.match(line)
    assert m, f"not a result line: {line!r}"
    props = {k: v.strip('"') for k, v in PROP.findall(m.group(2))}
    return {"status": m.group(1), **props, "reason": m.group(3) or ""}


def verify(msg: bytes, zone: Path, timeout=30):
    """rampart dkim verify: the list of per-signature results (status, d, s, a, b)."""
    r = run(["dkim", "verify", "--dns-zone", str(zone)], input=msg, timeout=timeout)
    err = r.stderr.decode(errors="replace")
    assert r.returncode in (0, 1), f"exit {r.returncode}: {err}"
    lines = r.stdout.decode().splitlines()
    assert lines, err
    if lines == ["dkim=none"]:
        assert r.returncode == 1
        return []
    res = [parse_line(x) for x in lines]
    assert (r.returncode == 0) == any(x["status"] == "pass" for x in res), (lines, r.returncode)
    return res


def sign(msg: bytes, selector, key: Path, *extra, domain=DOMAIN):
    r = run(["dkim", "sign", "--domain", domain, "--selector", selector, "--key", str(key),
             *extra], input=msg)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.startswith(b"DKIM-Signature:"), r.stdout[:80]
    assert r.stdout.endswith(msg), "the message must follow the field unchanged"
    return r.stdout


def sig_tags(signed: bytes):
    """The tags of the first DKIM-Signature field (unfolded, whitespace removed)."""
    sep = b"\r\n" if b"\r\n" in signed else b"\n"
    head = signed.split(sep + sep, 1)[0].split(sep)
    field = head[0]
    for line in head[1:]:
        if line[:1] not in (b" ", b"\t"):
            break
        field += line
    value = field.split(b":", 1)[1].decode()
    tags = {}
    for part in value.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            tags[k.strip()] = re.sub(r"\s+", "", v)
    return tags


def ed25519_pem(seed: bytes) -> bytes:
    """An Ed25519 seed as a PKCS#8 PEM key (RFC 8410 §7)."""
    der = bytes.fromhex("302e020100300506032b657004220420") + seed
    return b"-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(der) + \
        b"\n-----END PRIVATE KEY-----\n"


def ed25519_seed(pem: bytes) -> bytes:
    """The 32-octet seed of a PKCS#8 Ed25519 PEM key (dkimpy takes it base64)."""
    body = b"".join(x for x in pem.splitlines() if not x.startswith(b"-----"))
    der = base64.b64decode(body)
    i = der.find(b"\x04\x22\x04\x20")
    assert i >= 0, "not a PKCS#8 Ed25519 key"
    return der[i + 4:i + 36]


def dnsfunc(records):
    """dkimpy's DNS hook over a {name: TXT} map (ORACLES.md "DKIM")."""
    def f(name, timeout=5):
        v = records.get(name.decode().rstrip("."))
        return v.encode() if isinstance(v, str) else v
    return f


def dkimpy_verify(msg, records, idx=0):
    try:
        return bool(dkim.DKIM(msg, minkey=1024).verify(idx=idx, dnsfunc=dnsfunc(records)))
    except dkim.DKIMException:
        return False


def tamper_body(msg: bytes) -> bytes:
    """One octet of the body changed (or one added when the body is empty)."""
    sep = b"\r\n\r\n" if b"\r\n" in msg else b"\n\n"
    i = msg.find(sep)
    start = i + len(sep)
    for j in range(start, len(msg)):
        if msg[j:j + 1].isalpha():
            return msg[:j] + bytes([msg[j] ^ 0x20]) + msg[j + 1:]
    return msg + b"X"


def tamper_header(msg: bytes, name=b"Subject") -> bytes:
    """One octet of a signed header field's value changed."""
    i = msg.lower().find(b"\n" + name.lower() + b":")
    assert i >= 0, name
    j = i + len(name) + 2
    while not msg[j:j + 1].isalpha():
        j += 1
    return msg[:j] + bytes([msg[j] ^ 0x20]) + msg[j + 1:]


# ---------------------------------------------------------------- keys

@pytest.fixture(scope="module")
def config(tmp_path_factory):
    root = tmp_path_factory.mktemp("dkim")
    conf = root / "rampart.conf"
    conf.write_text(f'state_dir = "{root / "state"}"\n')
    return conf


def keygen(config, *args):
    r = run(["dkim", "keygen", *args], config=config)
    return r, r.stdout.decode(), r.stderr.decode()


def record_of(line):
    """The TXT value of a printed `NAME. IN TXT "..." "..."` line."""
    m = re.match(r'^(\S+)\. IN TXT((?: "[^"]*")+)$', line)
    assert m, line
    return m.group(1), "".join(re.findall(r'"([^"]*)"', m.group(2)))


@pytest.fixture(scope="module")
def keys(config):
    """{"ed25519": ..., "rsa": ...}: selector, key path, TXT record, printed line."""
    out = {}
    for kind, sel in (("ed25519", "gen-e"), ("rsa", "gen-r")):
        r, stdout, stderr = keygen(config, DOMAIN, "--type", kind, "--selector", sel)
        assert r.returncode == 0, stderr
        line = stdout.strip()
        name, txt = record_of(line)
        assert name == f"{sel}._domainkey.{DOMAIN}"
        path = config.parent / "state" / "dkim" / DOMAIN / f"{sel}.key"
        assert str(path) in stderr
        pem = path.read_bytes()
        out[kind] = {"selector": sel, "path": path, "txt": txt, "line": line, "pem": pem,
                     "alg": "ed25519-sha256" if kind == "ed25519" else "rsa-sha256",
                     "dkimpy_key": base64.b64encode(ed25519_seed(pem))
                     if kind == "ed25519" else pem}
    return out


@pytest.fixture(scope="module")
def key_zone(keys, tmp_path_factory):
    records = {f"{k['selector']}._domainkey.{DOMAIN}": k["txt"] for k in keys.values()}
    path = write_zone(tmp_path_factory.mktemp("zone") / "keys.zone", records)
    return path, records


# ---------------------------------------------------------------- message shapes

HDRS = (b"From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\n"
        b"Subject: Lunch on Friday\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
        b"Message-ID: <shape.1@example.com>\r\n")
SHAPES = {
    "plain": HDRS + b"\r\nHello Bob,\r\n\r\nsee you there.\r\n",
    "empty-body": HDRS + b"\r\n",
    "trailing-blank-lines": HDRS + b"\r\nText at the top.\r\n\r\n\r\n\r\n\r\n",
    "long-lines": HDRS + b"X-Long: " + b"w" * 900 + b"\r\n\r\n" + b"a" * 996 + b"\r\n" +
    (b"word " * 190).rstrip() + b"\r\n",
    "folded-headers": b"From: Alice\r\n  <alice@example.com>\r\nTo: one@example.org,\r\n"
    b"\ttwo@example.org,\r\n   three@example.org\r\nSubject:   Folded \t  subject\r\n"
    b"  over three\r\n\tlines  \r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <shape.2@example.com>\r\n\r\nBody.\r\n",
    "utf8": "From: Jürgen <juergen@example.com>\r\nTo: Zoë <zoe@example.org>\r\n"
    "Subject: Grüße aus Köln — 日本語\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
    "Message-ID: <shape.3@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\nÄrger über Öl, naïve café, ☃.\r\n".encode(),
    "many-headers": b"".join(b"Received: from hop%d.example.net by hop%d.example.net; "
                             b"Sat, 21 Nov 2026 09:%02d:00 +0000\r\n" % (i, i + 1, i % 60)
                             for i in range(150)) +
    b"".join(b"X-Header-%d: value %d\r\n" % (i, i) for i in range(60)) + HDRS +
    b"\r\nMany headers.\r\n",
    "whitespace": HDRS.replace(b"Subject: Lunch on Friday", b"Subject:\tLunch  \t on Friday ") +
    b"\r\n  leading and trailing  \t\r\nruns   of \t spaces\r\n \r\n\t\r\nend\r\n",
}


def shape_lf(msg):
    return msg.replace(b"\r\n", b"\n")


# ---------------------------------------------------------------- conformance: RFC 8463

@need_conformance
def test_rfc8463_vectors(tmp_path):
    vec = json.loads((CONF / "rfc8463" / "vectors.json").read_text())
    zone = write_zone(tmp_path / "rfc8463.zone", vec["dns_txt"])
    msg = (CONF / "rfc8463" / vec["message_signed"]).read_bytes()
    for variant in (msg, shape_lf(msg)):       # CRLF as stored, and LF (converted)
        res = verify(variant, zone)
        assert len(res) == len(vec["expected"])
        for got, exp in zip(res, vec["expected"]):
            assert (got["status"], got["d"], got["s"], got["a"]) == \
                (exp["result"], exp["d"], exp["s"], exp["a"]), got
            assert len(got["b"]) >= 8
    assert verify((CONF / "rfc8463" / vec["message_unsigned"]).read_bytes(), zone) == []


# ---------------------------------------------------------------- conformance: dkimpy data

def manifest():
    return json.loads((CONF / "dkimpy-data" / "manifest.json").read_text())


def manifest_records():
    """The manifest's DNS map, with "contents of FILE" read and notes dropped."""
    data = CONF / "dkimpy-data"
    out = {}
    for name, v in manifest()["dns_txt"].items():
        m = re.match(r"contents of (\S+)$", v)
        out[name] = (data / m.group(1)).read_text().strip() if m else v.split("  (")[0].strip()
    return out


@need_conformance
@pytest.mark.parametrize("case", range(6))
def test_dkimpy_presigned(case, tmp_path):
    c = manifest()["presigned_verify_cases"][case]
    msg = (CONF / "dkimpy-data" / c["message"]).read_bytes()
    res = verify(msg, write_zone(tmp_path / "z.zone", manifest_records()))
    if c["result"] == "none":
        assert res == []
    elif c["result"] == "pass":
        assert res and all(r["status"] == "pass" for r in res), res
    else:
        assert [r["status"] for r in res] == [c["result"]], res


@need_conformance
def test_dkimpy_presigned_corrupted_key(tmp_path):
    """rfc6376.signed.rsa.msg with a corrupted key record must not pass (manifest note)."""
    records = manifest_records()
    good = records["test._domainkey.football.example.com"]
    i = good.index("p=") + 20
    records["test._domainkey.football.example.com"] = good[:i] + good[i + 1:]
    msg = (CONF / "dkimpy-data" / "rfc6376.signed.rsa.msg").read_bytes()
    res = verify(msg, write_zone(tmp_path / "z.zone", records))
    assert [r["status"] for r in res] in (["permerror"], ["fail"]), res


def pair_keys(pair):
    """(PEM for rampart, key for dkimpy, [public records]) of a manifest key pair."""
    data = CONF / "dkimpy-data"
    raw = (data / pair["private"]).read_bytes()
    if pair["alg"].startswith("ed25519"):
        seed = base64.b64decode(raw.strip())
        pem, pykey = ed25519_pem(seed), raw.strip()
    else:
        pem = pykey = raw
    pub = pair["public_txt"]
    if pub.startswith("brisbane"):
        txts = [manifest_records()["brisbane._domainkey.football.example.com"]]
    else:
        names = [x.strip() for x in pub.split(" / ")]
        base = names[0].split(".", 1)[0]
        txts = [(data / (base + n if n.startswith(".") else n)).read_text().strip()
                for n in names]
    return pem, pykey, txts


@need_conformance
@need_dkimpy
@pytest.mark.parametrize("idx", range(6))
def test_dkimpy_key_pairs(idx, tmp_path):
    """Each key pair: rampart signs, rampart and dkimpy verify, with every public form."""
    pair = manifest()["key_pairs"][idx]
    pem, _, txts = pair_keys(pair)
    key = tmp_path / "k.pem"
    key.write_bytes(pem)
    msg = (CONF / "dkimpy-data" / "test.message").read_bytes()
    for n, txt in enumerate(txts):
        sel = f"pair{n}"
        records = {f"{sel}._domainkey.{DOMAIN}": txt}
        zone = write_zone(tmp_path / f"z{n}.zone", records)
        for extra in ((), ("--simple",)):
            signed = sign(msg, sel, key, *extra)
            assert [r["status"] for r in verify(signed, zone)] == ["pass"], (pair, txt)
            assert dkimpy_verify(signed, records), (pair, txt)
            assert [r["status"] for r in verify(tamper_body(signed), zone)] == ["fail"]


BAD_RECORDS = {   # manifest "bad_key_records" -> what RFC 6376 makes of them
    "test_bad.txt": {"permerror", "fail"},   # p= corrupted: unusable key or wrong key
    "badk.txt": {"permerror"},               # k= unknown (§3.6.1)
    "badversion.txt": {"permerror"},         # v= not "DKIM1" (§3.6.1)
    "test2.txt": {"pass"},                   # alternate formatting, no k= (default rsa)
    "test_tlsrpt.txt": {"permerror"},        # s=tlsrpt: not for email (§3.6.1)
}


@need_conformance
@need_dkimpy
def test_dkimpy_bad_key_records(tmp_path):
    assert set(manifest()["bad_key_records"]) == set(BAD_RECORDS)
    key = CONF / "dkimpy-data" / "test.private"
    msg = (CONF / "dkimpy-data" / "test.message").read_bytes()
    signed = sign(msg, "test", key)
    for name, want in BAD_RECORDS.items():
        records = {f"test._domainkey.{DOMAIN}": (CONF / "dkimpy-data" / name).read_text().strip()}
        res = verify(signed, write_zone(tmp_path / "z.zone", records))
        assert len(res) == 1 and res[0]["status"] in want, (name, res)
        # dkimpy agrees on pass / not pass
        assert dkimpy_verify(signed, records) == (want == {"pass"}), name


@need_conformance
@need_dkimpy
@pytest.mark.parametrize("idx", range(7))
def test_dkimpy_sign_then_verify(idx, tmp_path):
    """Each of the manifest's sign-then-verify inputs, signed by rampart with the
    RFC 8463 keys (RSA test.private, Ed25519 RFC 8032 7.1): rampart and dkimpy
    verify it, except as the manifest notes."""
    data = CONF / "dkimpy-data"
    keys = {"rsa": (data / "test.private").read_bytes(),
            "ed25519": ed25519_pem(base64.b64decode((data / "rfc8032_7_1.key").read_text()))}
    records = {"test._domainkey.example.com": (data / "test.txt").read_text().strip(),
               "brisbane._domainkey.example.com":
               manifest_records()["brisbane._domainkey.football.example.com"]}
    zone = write_zone(tmp_path / "z.zone", records)
    name = manifest()["sign_then_verify_inputs"][idx].split(" (")[0]
    msg = (data / name).read_bytes()
    for kind, sel in (("rsa", "test"), ("ed25519", "brisbane")):
        key = tmp_path / f"{kind}.pem"
        key.write_bytes(keys[kind])
        if name == "test_nofrom.message":
            # RFC 6376 §5.4: From MUST be signed; there is none to sign.
            r = run(["dkim", "sign", "--domain", DOMAIN, "--selector", sel,
                     "--key", str(key)], input=msg)
            assert r.returncode == 1 and r.stdout == b"" and r.stderr, \
                (kind, r.returncode, r.stdout[:200])
            continue
        signed = sign(msg, sel, key)
        res = verify(signed, zone)
        # Ours comes first; message.mbox also carries kitterman.com's signature,
        # whose key is not in this zone (NXDOMAIN: permerror, RFC 6376 §6.1.2).
        assert [(r["status"], r["d"]) for r in res] == [("pass", DOMAIN)] + \
            [("permerror", "kitterman.com")] * (name == "message.mbox"), (name, kind, res)
        # dkimpy 1.1.4 cannot verify this windows-1258 message at all (its limit,
        # not ours: Rampart's verification above passes), so it is not asked.
        if name != "rfc6376.w1258.msg":
            assert dkimpy_verify(signed, records), (name, kind)


# ---------------------------------------------------------------- conformance: Mail::DKIM corpus

def fake_dns():
    """FAKE_DNS.dat as zone records: NXDOMAIN left out, DNS errors as TIMEOUT."""
    records = {}
    for line in (CONF / "mail-dkim-corpus" / "FAKE_DNS.dat").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, value = line.split(None, 1)
        value = value.strip()
        if value == "NXDOMAIN":
            continue
        if value.startswith("~~"):
            records[name] = "TIMEOUT"
        else:
            records[name] = "" if value == '""' else value
    return records


LEGACY = {"prestandard-draft-signature": "pre-RFC 6376 draft signature",
          "rsa-sha1 (RFC 8301: MUST NOT be used for verifying)": "rsa-sha1",
          "rsa key < 1024 bits (RFC 8301)": "RSA key < 1024 bits"}
VALID_C = {"simple", "relaxed"} | {f"{h}/{b}" for h in ("simple", "relaxed")
                                   for b in ("simple", "relaxed")}
NOT_PASS = {"fail", "permerror", "temperror", "policy", "neutral"}


def rfc_expected(case, sig, i):
    """The results RFC 6376 + RFC 8301 allow for signature i of a corpus case.

    Mail::DKIM's expectation is per message (for multiple_2 its note gives one
    per signature); legacy features turn its "pass" into:
      - v= missing or not 1, an unknown a= or c=: permerror (RFC 6376 §3.5, §6.1.1);
      - rsa-sha1: policy (RFC 8301 §3.1 MUST NOT; dkim.h reports "policy"),
        or permerror when the key is also too small;
      - an RSA key under 1024 bits: permerror (RFC 8301 §3.2).
    A legacy signature Mail::DKIM calls fail/invalid must not pass either.
    """
    exp = case["mail_dkim_expected"]
    note = case.get("note", "")
    m = re.search(r"\[%d\] (\w+)" % i, note)
    if m:
        exp = m.group(1)
    dns_error = "temperror" in note
    if sig["v"] != "1" or sig["a"] not in ("rsa-sha256", "rsa-sha1", "ed25519-sha256") or \
            sig["c"] not in VALID_C:
        return {"permerror"}
    small = sig.get("rsa_key_bits") is not None and sig["rsa_key_bits"] < 1024
    if sig["a"] == "rsa-sha1":
        if dns_error:
            return {"temperror", "policy"}
        if exp == "pass":
            return {"policy", "permerror"} if small else {"policy"}
        return NOT_PASS - {"neutral"}
    if small:
        return {"permerror"}
    if exp == "pass":
        return {"pass"}
    if exp == "fail":
        return {"fail"}
    return {"temperror"} if dns_error else {"permerror"}


def category(case):
    for f in case["flags"]:
        return LEGACY.get(f, f)
    return "no legacy flag (ed25519-sha256)"


@need_conformance
def test_mail_dkim_corpus(tmp_path):
    base = CONF / "mail-dkim-corpus"
    cases = json.loads((base / "expected.json").read_text())["cases"]
    zone = write_zone(tmp_path / "fake.zone", fake_dns())
    agree, total, disagreements, legacy_pass = Counter(), Counter(), [], []
    for case in cases:
        msg = (base / case["file"]).read_bytes()
        t0 = time.monotonic()
        res = verify(msg, zone, timeout=30)      # no crash (exit 0/1), no hang
        assert time.monotonic() - t0 < 25, case["file"]
        sigs = case["signatures"]
        assert len(res) == len(sigs), (case["file"], res)
        cat = category(case)
        for i, (sig, got) in enumerate(zip(sigs, res)):
            want = rfc_expected(case, sig, i)
            total[cat] += 1
            if got["status"] in want:
                agree[cat] += 1
            else:
                disagreements.append((case["file"], i, cat, got["status"], sorted(want),
                                      got["reason"]))
            if case["flags"] and got["status"] == "pass":
                legacy_pass.append((case["file"], i))
    table = "\n".join(f"  {c:36} {agree[c]:3} of {total[c]:3} signatures agree"
                      for c in sorted(total))
    detail = "\n".join(f"  {d}" for d in disagreements)
    print("\nMail::DKIM corpus, results against RFC 6376 + RFC 8301:\n" + table +
          ("\ndisagreements:\n" + detail if detail else ""))
    strict = "no legacy flag (ed25519-sha256)"
    assert total[strict] == 6 and agree[strict] == total[strict], detail
    assert not legacy_pass, f"legacy signatures passed: {legacy_pass}"


# ---------------------------------------------------------------- differential with dkimpy

@need_dkimpy
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_rampart_signs_dkimpy_verifies(shape, kind, keys, key_zone):
    zone, records = key_zone
    k = keys[kind]
    for extra, canon in (((), "relaxed/relaxed"), (("--simple",), "simple/simple")):
        for msg in (SHAPES[shape], shape_lf(SHAPES[shape])):
            signed = sign(msg, k["selector"], k["path"], *extra)
            tags = sig_tags(signed)
            assert (tags["a"], tags["c"], tags["d"], tags["s"]) == \
                (k["alg"], canon, DOMAIN, k["selector"])
            assert "from" in tags["h"].lower().split(":")
            if b"\r" not in msg:
                assert b"\r" not in signed, "LF in, LF out"
            assert dkimpy_verify(signed, records), (shape, kind, canon)
            res = verify(signed, zone)
            assert [r["status"] for r in res] == ["pass"], res
            assert tags["b"].startswith(res[0]["b"]) and len(res[0]["b"]) >= 8
            for bad in (tamper_body(signed), tamper_header(signed)):
                assert not dkimpy_verify(bad, records)
                assert [r["status"] for r in verify(bad, zone)] == ["fail"]


HEADER_SETS = [None, [b"from"],
               [b"from", b"to", b"subject", b"date", b"message-id", b"from", b"subject",
                b"reply-to"]]


@need_dkimpy
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_dkimpy_signs_rampart_verifies(shape, kind, keys, key_zone):
    zone, records = key_zone
    k = keys[kind]
    msg = SHAPES[shape]
    for canon in ((b"relaxed", b"relaxed"), (b"simple", b"simple")):
        for hs in HEADER_SETS:
            kw = {"include_headers": hs} if hs is not None else {}
            sig = dkim.sign(msg, k["selector"].encode(), DOMAIN.encode(), k["dkimpy_key"],
                            canonicalize=canon, signature_algorithm=k["alg"].encode(), **kw)
            signed = sig + msg
            assert dkimpy_verify(signed, records)
            res = verify(signed, zone)
            assert [r["status"] for r in res] == ["pass"], (canon, hs, res)
            assert (res[0]["d"], res[0]["s"], res[0]["a"]) == (DOMAIN, k["selector"], k["alg"])
            assert [r["status"] for r in verify(tamper_body(signed), zone)] == ["fail"]
            if hs != [b"from"]:
                assert [r["status"] for r in verify(tamper_header(signed), zone)] == ["fail"]
            # A change to a field that is not signed changes nothing.
            extra = signed.replace(b"\r\n\r\n", b"\r\nX-Unsigned: added later\r\n\r\n", 1)
            assert [r["status"] for r in verify(extra, zone)] == ["pass"]


@need_dkimpy
def test_dual_signature(keys, key_zone):
    """RFC 8463 §1: sign with ed25519 and RSA; both pass with rampart and dkimpy."""
    zone, records = key_zone
    once = sign(SHAPES["plain"], keys["rsa"]["selector"], keys["rsa"]["path"])
    twice = sign(once, keys["ed25519"]["selector"], keys["ed25519"]["path"])
    res = verify(twice, zone)
    assert [(r["status"], r["a"]) for r in res] == \
        [("pass", "ed25519-sha256"), ("pass", "rsa-sha256")]
    assert dkimpy_verify(twice, records, 0) and dkimpy_verify(twice, records, 1)


# ---------------------------------------------------------------- CLI behaviour

@pytest.mark.parametrize("args", [
    ["dkim", "sign"],
    ["dkim", "sign", "--domain", DOMAIN, "--selector", "s"],
    ["dkim", "sign", "--domain", DOMAIN, "--selector", "s", "--key", "/k", "--bogus"],
    ["dkim", "sign", "--domain", DOMAIN, "--selector", "s", "--key", "/k", "--headers",
     "to:subject"],
    ["dkim", "sign", "--domain", DOMAIN, "--selector", "s", "--key", "/k", "--headers",
     "from::to"],
    ["dkim", "sign", "--domain", DOMAIN, "--selector", "s", "--key", "/k", "--timestamp", "x"],
    ["dkim", "sign", "--domain", "bad domain", "--selector", "s", "--key", "/k"],
    ["dkim", "sign", "--domain", DOMAIN, "--selector", "../x", "--key", "/k"],
    ["dkim", "sign", "--domain", DOMAIN, "--selector", "s", "--key", "/k", "extra"],
    ["dkim", "verify", "extra"],
    ["dkim", "verify", "--dns-zone"],
    ["dkim", "verify", "--dns-zone", "/z", "--resolver", "127.0.0.1@53"],
    ["dkim", "verify", "-x"],
    ["dkim", "keygen"],
    ["dkim", "keygen", "a.example", "b.example"],
    ["dkim", "keygen", DOMAIN, "--type", "dsa"],
    ["dkim", "keygen", DOMAIN, "--type", "rsa", "--bits", "512"],
    ["dkim", "keygen", DOMAIN, "--type", "rsa", "--bits", "99999"],
    ["dkim", "keygen", DOMAIN, "--bits", "2048"],
    ["dkim", "keygen", DOMAIN, "--selector", "a/b"],
    ["dkim", "keygen", "not_a domain"],
])
def test_usage_errors(args, config):
    r = run(args, input=SHAPES["plain"], config=config)
    err = r.stderr.decode()
    assert r.returncode == 2, (args, r.returncode, err)
    assert err.startswith("rampart: ") and err.rstrip().endswith("see 'rampart help'."), err
    assert r.stdout == b""


def test_help(config):
    for verb in ("verify", "sign", "keygen"):
        r = run(["dkim", verb, "--help"], config=config)
        assert r.returncode == 0 and b"Usage: rampart dkim " + verb.encode() in r.stdout
    assert b"RFC 8463" in run(["dkim", "keygen", "--help"]).stdout   # dual signing advice
    assert b"LF" in run(["dkim", "verify", "--help"]).stdout


def test_unreadable_input(tmp_path, key_zone):
    zone, _ = key_zone
    fd = os.open(tmp_path, os.O_RDONLY)       # read() on a directory: EISDIR
    try:
        r = run(["dkim", "verify", "--dns-zone", str(zone)], stdin=fd)
    finally:
        os.close(fd)
    assert r.returncode == 2 and b"cannot read the message" in r.stderr, r.stderr


def test_oversized_input(key_zone):
    zone, _ = key_zone
    big = HDRS + b"\r\n" + (b"x" * 998 + b"\r\n") * (64 * 1024 * 1024 // 1000 + 10)
    r = run(["dkim", "verify", "--dns-zone", str(zone)], input=big)
    assert r.returncode == 2 and b"larger than 64 MiB" in r.stderr, r.stderr


def test_verify_unsigned_and_missing_key(tmp_path, keys):
    zone = write_zone(tmp_path / "empty.zone", {"other.example.com": "x"})
    r = run(["dkim", "verify", "--dns-zone", str(zone)], input=SHAPES["plain"])
    assert (r.returncode, r.stdout) == (1, b"dkim=none\n")
    signed = sign(SHAPES["plain"], keys["ed25519"]["selector"], keys["ed25519"]["path"])
    res = verify(signed, zone)                 # NXDOMAIN for the key: RFC 6376 §6.1.2
    assert [r["status"] for r in res] == ["permerror"] and res[0]["reason"], res
    timeout = write_zone(tmp_path / "timeout.zone",
                         {f"{keys['ed25519']['selector']}._domainkey.{DOMAIN}": "TIMEOUT"})
    assert [r["status"] for r in verify(signed, timeout)] == ["temperror"]


def test_verify_input_in_pieces(keys, key_zone):
    """Standard input arriving in pieces (one octet at a time, then random sizes)
    gives the same result as the message written at once."""
    import random
    zone, _ = key_zone
    signed = sign(SHAPES["folded-headers"], keys["rsa"]["selector"], keys["rsa"]["path"])
    whole = run(["dkim", "verify", "--dns-zone", str(zone)], input=signed)
    assert whole.returncode == 0
    rnd = random.Random(4)
    for lf in (False, True):
        data = shape_lf(signed) if lf else signed
        env = dict(os.environ, RAMPART_CONFIG="/nonexistent/rampart.conf")
        p = subprocess.Popen([str(BUILD / "rampart"), "dkim", "verify", "--dns-zone", str(zone)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        i = 0
        while i < len(data):
            n = 1 if i < 300 else rnd.randint(1, 700)
            p.stdin.write(data[i:i + n])
            p.stdin.flush()
            i += n
        p.stdin.close()
        assert p.stdout.read() == whole.stdout and p.wait(timeout=30) == 0


def test_sign_options(keys, key_zone):
    zone, records = key_zone
    k = keys["ed25519"]
    signed = sign(SHAPES["plain"], k["selector"], k["path"], "--timestamp", "1700000000",
                  "--headers", "From:Subject")
    tags = sig_tags(signed)
    assert tags["t"] == "1700000000"
    assert {h.lower() for h in tags["h"].split(":")} == {"from", "subject"}
    assert "to" not in tags["h"].lower().split(":")
    assert [r["status"] for r in verify(signed, zone)] == ["pass"]
    assert "t" not in sig_tags(sign(SHAPES["plain"], k["selector"], k["path"],
                                    "--timestamp", "0"))
    now = int(time.time())
    assert abs(int(sig_tags(sign(SHAPES["plain"], k["selector"], k["path"]))["t"]) - now) < 60
    r = run(["dkim", "sign", "--domain", DOMAIN, "--selector", "s", "--key", "/nonexistent"],
            input=SHAPES["plain"])
    assert r.returncode == 1 and b"/nonexistent" in r.stderr and r.stdout == b""


def test_keygen_files_and_record(config, keys, key_zone, tmp_path):
    dkim_dir = config.parent / "state" / "dkim"
    for d in (dkim_dir, dkim_dir / DOMAIN):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    for kind, k in keys.items():
        assert stat.S_IMODE(k["path"].stat().st_mode) == 0o600
        assert k["txt"].startswith(f"v=DKIM1; k={kind}; p=")
        strings = re.findall(r'"([^"]*)"', k["line"])
        assert all(1 <= len(s) <= 255 for s in strings)
        assert len(strings) == (1 if kind == "ed25519" else 2), strings  # RSA-2048: ~400
        # The printed line, pasted as it is into a zone file, verifies.
        zone = tmp_path / f"{kind}.zone"
        zone.write_text(k["line"] + "\n")
        signed = sign(SHAPES["plain"], k["selector"], k["path"])
        assert [r["status"] for r in verify(signed, zone)] == ["pass"]


def test_keygen_never_overwrites(config, keys):
    k = keys["ed25519"]
    before = hashlib.sha256(k["path"].read_bytes()).hexdigest()
    r, out, err = keygen(config, DOMAIN, "--selector", k["selector"])
    assert r.returncode == 1 and "already exists" in err and out == "", err
    r, out, err = keygen(config, DOMAIN, "--selector", k["selector"], "--type", "rsa")
    assert r.returncode == 1 and "already exists" in err
    assert hashlib.sha256(k["path"].read_bytes()).hexdigest() == before


def test_keygen_defaults(config):
    sel = time.strftime("%Y%m")
    r, out, err = keygen(config, "Defaults.Example.")
    assert r.returncode == 0, err
    name, txt = record_of(out.strip())
    # The selector is YYYYMM + "e"; the domain is stored in lower case.
    assert name in (f"{sel}e._domainkey.defaults.example",
                    f"{time.strftime('%Y%m', time.localtime(time.time() - 60))}e"
                    "._domainkey.defaults.example")
    assert txt.startswith("v=DKIM1; k=ed25519; p=")
    selector = name.split(".")[0]
    assert (config.parent / "state" / "dkim" / "defaults.example" / f"{selector}.key").exists()
    r, out, err = keygen(config, "defaults.example", "--type", "rsa", "--bits", "1024")
    assert r.returncode == 0, err
    assert record_of(out.strip())[0].split(".")[0] == selector[:-1] + "r"
    assert "2048" in err        # RFC 8301 §3.2: SHOULD be at least 2048


def test_keygen_needs_configuration(tmp_path):
    r = run(["dkim", "keygen", DOMAIN], config=tmp_path / "missing.conf")
    assert r.returncode == 1 and b"configuration" in r.stderr
