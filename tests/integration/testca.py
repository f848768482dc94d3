"""A throwaway certificate authority for the outbound-delivery tests, made with the
`openssl` command line only (no python3-cryptography).

    ca = TestCA(tmpdir)                              # ca.ca_cert, ca.ca_key
    cert, key = ca.issue(["mx1.remote.test"], ips=["127.0.0.2"])
    cert, key = ca.issue(["mx1.remote.test"], chain=True)   # leaf + CA in one file
    cert, key = ca.issue(["mx1.remote.test"], expired=True)  # validity in 2020
    cert, key = ca.self_signed(["mx1.remote.test"])          # not from the CA
    ca.tlsa_311(cert)   # hex for "_25._tcp.mx1.remote.test. TLSA 3 1 1 <hex>"
    ca.tlsa_211()       # hex for "TLSA 2 1 1 <hex>" naming this CA (RFC 7671 §5.2)

Issued certificates are end-entity server certificates: subjectAltName with the
DNS names and IP addresses given (RFC 6125 §6.4: names are checked against the
SAN, not the CN), extendedKeyUsage serverAuth, basicConstraints CA:FALSE. Keys are
EC P-256 unless key="rsa" (RSA-2048) or "rsa:N": EC keeps a test run fast.

TLSA data (RFC 6698 §2.1): selector 0 hashes the whole certificate (DER), selector 1
the DER SubjectPublicKeyInfo; matching type 0 is the data itself, 1 SHA-256, 2 SHA-512.
The "3 1 1" of a certificate is what `openssl x509 -pubkey -noout | openssl pkey
-pubin -outform DER | openssl dgst -sha256` prints.
"""
import datetime
import hashlib
import itertools
import re
import subprocess
from pathlib import Path

OPENSSL = "openssl"


def _run(*args, input=None):
    r = subprocess.run([OPENSSL, *args], input=input, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed:\n"
                             f"{r.stderr.decode(errors='replace')}")
    return r.stdout


def _keygen(path, key):
    """A private key in PEM at path: "ec" (P-256), "rsa" (2048 bits) or "rsa:N"."""
    if key == "ec":
        _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", str(path))
    elif key == "rsa" or key.startswith("rsa:"):
        bits = key.split(":", 1)[1] if ":" in key else "2048"
        _run("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}",
             "-out", str(path))
    else:
        raise ValueError(f"unknown key type {key!r}: use 'ec', 'rsa' or 'rsa:BITS'")
    path.chmod(0o600)


def _asn1_time(t):
    """openssl ca's date form (YYYYMMDDHHMMSSZ) from a datetime or such a string."""
    if isinstance(t, str):
        return t
    return t.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%SZ")


def _safe(name):
    return re.sub(r"[^A-Za-z0-9.-]", "_", name)[:60] or "cert"


def cert_der(cert):
    """The DER bytes of the (first) certificate in a PEM file."""
    return _run("x509", "-in", str(cert), "-outform", "DER")


def spki_der(cert):
    """The DER SubjectPublicKeyInfo of the (first) certificate in a PEM file."""
    pub = _run("x509", "-in", str(cert), "-pubkey", "-noout")
    return _run("pkey", "-pubin", "-outform", "DER", input=pub)


def tlsa_data(cert, selector=1, mtype=1):
    """The certificate association data of a TLSA record for cert, in hex
    (RFC 6698 §2.1.2-§2.1.3): selector 0 full certificate / 1 SPKI; matching
    type 0 exact / 1 SHA-256 / 2 SHA-512."""
    data = spki_der(cert) if selector == 1 else cert_der(cert) if selector == 0 else None
    if data is None:
        raise ValueError(f"TLSA selector {selector} is not 0 or 1")
    if mtype == 0:
        return data.hex()
    if mtype == 1:
        return hashlib.sha256(data).hexdigest()
    if mtype == 2:
        return hashlib.sha512(data).hexdigest()
    raise ValueError(f"TLSA matching type {mtype} is not 0, 1 or 2")


def tlsa_rdata(cert, usage=3, selector=1, mtype=1):
    """A whole TLSA rdata in master-file form, e.g. "3 1 1 ab12...", ready for
    Unbound(..., {"remote.test": [("_25._tcp.mx1", "TLSA", rdata)]})."""
    return f"{usage} {selector} {mtype} {tlsa_data(cert, selector, mtype)}"


class TestCA:
    """A CA in directory dir: an EC P-256 root (ca.pem, ca.key) valid for 30 days.
    `name` is its subject CN; a second TestCA in another directory is an
    unrelated CA (for "wrong trust anchor" tests)."""

    __test__ = False        # not a pytest test class, whatever its name

    def __init__(self, dir, name="Rampart Test CA", key="ec"):
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.ca_cert = self.dir / "ca.pem"
        self.ca_key = self.dir / "ca.key"
        self._serial = itertools.count(0x1000)
        self._n = itertools.count(1)
        _keygen(self.ca_key, key)
        _run("req", "-x509", "-new", "-key", str(self.ca_key), "-out", str(self.ca_cert),
             "-days", "30", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash")

    def _paths(self, names, suffix=""):
        base = f"{next(self._n):03d}-{_safe(names[0] if names else 'noname')}{suffix}"
        return self.dir / f"{base}.pem", self.dir / f"{base}.key", self.dir / base

    @staticmethod
    def _extensions(names, ips, key, eku=True):
        san = [f"DNS:{n}" for n in names] + [f"IP:{ip}" for ip in ips]
        # RFC 5280 §4.2.1.3: an RSA key exchanged with TLS 1.2 RSA kx wants
        # keyEncipherment; EC and TLS 1.3 need only digitalSignature.
        usage = "digitalSignature" + (",keyEncipherment" if key.startswith("rsa") else "")
        lines = ["basicConstraints=critical,CA:FALSE", f"keyUsage=critical,{usage}",
                 "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid"]
        if eku:
            lines.append("extendedKeyUsage=serverAuth")
        if san:
            lines.append("subjectAltName=" + ",".join(san))
        return "\n".join(lines) + "\n"

    def issue(self, names, ips=(), key="ec", days=30, chain=False, expired=False,
              not_before=None, not_after=None, cn=None, eku=True):
        """A server certificate signed by this CA: returns (cert_path, key_path).

        names: DNS names for the subjectAltName (the first is also the CN unless
        cn is given); ips: IP addresses added to the SAN; key: "ec", "rsa" or
        "rsa:BITS"; days: validity from now; chain: the cert file holds the leaf
        then the CA certificate (what a server sends for DANE 2 x x, RFC 7671
        §5.2.2); expired: valid only in January 2020; not_before/not_after:
        an explicit validity window (datetime or "YYYYMMDDHHMMSSZ"), e.g. a
        certificate that is not valid yet; eku=False leaves out extendedKeyUsage."""
        names = list(names)
        cert, keyp, base = self._paths(names)
        _keygen(keyp, key)
        cn = cn if cn is not None else (names[0] if names else "no name")
        csr = base.with_suffix(".csr")
        _run("req", "-new", "-key", str(keyp), "-subj", f"/CN={cn}", "-out", str(csr))
        ext = base.with_suffix(".ext")
        ext.write_text(self._extensions(names, list(ips), key, eku))
        if expired:
            not_before, not_after = "20200101000000Z", "20200201000000Z"
        serial = f"0x{next(self._serial):x}"
        if not_before is None and not_after is None:
            _run("x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert),
                 "-CAkey", str(self.ca_key), "-set_serial", serial, "-days", str(days),
                 "-sha256", "-extfile", str(ext), "-out", str(cert))
        else:
            now = datetime.datetime.now(datetime.timezone.utc)
            start = _asn1_time(not_before or now - datetime.timedelta(minutes=5))
            end = _asn1_time(not_after or now + datetime.timedelta(days=days))
            self._ca_sign(csr, ext, cert, serial, start, end)
        if chain:
            cert.write_bytes(cert.read_bytes() + self.ca_cert.read_bytes())
        return cert, keyp

    def _ca_sign(self, csr, ext, out, serial, start, end):
        """`openssl ca` is the command that takes explicit start and end dates."""
        db = self.dir / "cadb"
        db.mkdir(exist_ok=True)
        (db / "index.txt").write_text("")           # no uniqueness checks across calls
        (db / "serial").write_text(serial[2:].rjust(4, "0") + "\n")
        conf = db / "ca.cnf"
        conf.write_text(
            "[ca]\ndefault_ca = testca\n"
            f"[testca]\ndatabase = {db / 'index.txt'}\nnew_certs_dir = {db}\n"
            f"serial = {db / 'serial'}\ndefault_md = sha256\npolicy = anything\n"
            "unique_subject = no\ncopy_extensions = none\n"
            "[anything]\ncommonName = supplied\n")
        _run("ca", "-batch", "-config", str(conf), "-cert", str(self.ca_cert),
             "-keyfile", str(self.ca_key), "-in", str(csr), "-out", str(out),
             "-startdate", start, "-enddate", end, "-extfile", str(ext), "-notext")

    def self_signed(self, names, ips=(), key="ec", days=30):
        """A self-signed server certificate for names (not issued by this CA, so
        a client that trusts only this CA rejects it): returns (cert, key)."""
        names = list(names)
        cert, keyp, base = self._paths(names, "-self")
        _keygen(keyp, key)
        lines = [ln for ln in self._extensions(names, list(ips), key).splitlines()
                 if not ln.startswith(("subjectKeyIdentifier", "authorityKeyIdentifier"))]
        addext = [a for ln in lines for a in ("-addext", ln)]
        cn = names[0] if names else "no name"
        _run("req", "-x509", "-new", "-key", str(keyp), "-out", str(cert), "-days", str(days),
             "-subj", f"/CN={cn}", *addext)
        return cert, keyp

    def tlsa_311(self, cert):
        """hex SHA-256 of cert's DER SubjectPublicKeyInfo: DANE-EE(3) SPKI(1)
        SHA2-256(1), the usual record for an MX host (RFC 7672 §3.1.1)."""
        return tlsa_data(cert, 1, 1)

    def tlsa_211(self):
        """hex SHA-256 of this CA's DER SubjectPublicKeyInfo: DANE-TA(2) SPKI(1)
        SHA2-256(1) (RFC 7672 §3.1.2). The server must send the CA in its chain
        (issue(..., chain=True))."""
        return tlsa_data(self.ca_cert, 1, 1)

    def verify(self, cert, purpose="sslserver"):
        """(ok, output) of `openssl verify -CAfile ca.pem -purpose purpose cert`."""
        r = subprocess.run([OPENSSL, "verify", "-CAfile", str(self.ca_cert),
                            "-purpose", purpose, str(cert)],
                           capture_output=True, text=True, timeout=60)
        return r.returncode == 0, r.stdout + r.stderr
