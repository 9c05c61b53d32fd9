"""A test PKI built with certtool (gnutls-bin) in a temp dir, plus a stapled
OCSP response made with `openssl ocsp`.

OpenSSL 3.0 on this machine has no `x509 -not_before/-not_after`; certtool
templates take explicit activation_date / expiration_date, past or future.

Pki(dir).build() makes:
  root (CA), intermediate (CA, signed by root), other_root (unknown CA) and
  leaves for 127.0.0.1 / localhost:
    valid        signed by intermediate; chain file = leaf + intermediate
    chainless    signed by intermediate; served WITHOUT the intermediate
    direct       signed by root (what fapiao serve can use as server.crt)
    expired      signed by root, 2020-01-01 .. 2021-01-01
    notyet       signed by root, valid from now + 365 d
    wronghost    signed by root, CN/SAN other.example only
    selfsigned   self-signed leaf
    untrusted    signed by other_root; served with other_root (complete, untrusted)
    expiring     signed by root, expires in 10 days
    dnsname      signed by root, for ok.doctor.test (+ localhost, 127.0.0.1)
    weak         signed by root, an RSA 1024-bit key
    revoked      signed by root; pki.ocsp_revoked is a DER OCSP response,
                 signed by the root, that says "revoked" (for -status_file)
  inspection (CA, "Example Corp Security Gateway", a corporate SSL-inspection
  CA) and its leaf:
    intercepted  signed by inspection, for the same names: what an
                 interception proxy presents in place of the server's leaf
Each leaf: .cert (leaf only), .chain (what the server sends), .key.
"""
import datetime as _dt
import subprocess
from pathlib import Path

CERTTOOL = "certtool"


def _fmt(t):
    return t.strftime("%Y-%m-%d %H:%M:%S")


class Leaf:
    def __init__(self, name, cert, key, chain):
        self.name, self.cert, self.key, self.chain = name, str(cert), str(key), str(chain)

    def __repr__(self):
        return "<Leaf %s>" % self.name


class Pki:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.leaves = {}

    def _run(self, *args):
        r = subprocess.run([CERTTOOL] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        assert r.returncode == 0, "certtool %s failed: %s" % (
            " ".join(args), r.stderr.decode(errors="replace")[-2000:])
        return r

    def _key(self, name, rsa_bits=None):
        p = self.dir / (name + ".key")
        if rsa_bits:
            self._run("--generate-privkey", "--key-type", "rsa", "--bits", str(rsa_bits),
                      "--outfile", str(p))
        else:
            self._run("--generate-privkey", "--key-type", "ecdsa", "--curve", "secp256r1",
                      "--outfile", str(p))
        return p

    def _template(self, name, lines):
        p = self.dir / (name + ".tmpl")
        p.write_text("\n".join(lines) + "\n")
        return p

    def _ca(self, name, cn, signer=None, org="fapiao doctor tests"):
        key = self._key(name)
        now = _dt.datetime.utcnow()
        t = self._template(name, [
            'cn = "%s"' % cn, 'organization = "%s"' % org,
            "serial = %d" % (abs(hash(name)) % 100000 + 1),
            'activation_date = "%s"' % _fmt(now - _dt.timedelta(days=3650)),
            'expiration_date = "%s"' % _fmt(now + _dt.timedelta(days=3650)),
            "ca", "cert_signing_key", "crl_signing_key"])
        cert = self.dir / (name + ".crt")
        if signer is None:
            self._run("--generate-self-signed", "--load-privkey", str(key),
                      "--template", str(t), "--outfile", str(cert))
        else:
            scert, skey = signer
            self._run("--generate-certificate", "--load-privkey", str(key),
                      "--load-ca-certificate", str(scert), "--load-ca-privkey", str(skey),
                      "--template", str(t), "--outfile", str(cert))
        return cert, key

    def _leaf(self, name, signer, not_before, not_after, hosts=("localhost",),
              ips=("127.0.0.1",), cn="localhost", extra_chain=(), rsa_bits=None):
        key = self._key(name, rsa_bits)
        lines = ['cn = "%s"' % cn, 'organization = "fapiao doctor tests"',
                 "serial = %d" % (abs(hash(name)) % 100000 + 1000),
                 'activation_date = "%s"' % _fmt(not_before),
                 'expiration_date = "%s"' % _fmt(not_after),
                 "tls_www_server", "signing_key", "encryption_key"]
        lines += ['dns_name = "%s"' % h for h in hosts]
        lines += ['ip_address = "%s"' % i for i in ips]
        t = self._template(name, lines)
        cert = self.dir / (name + ".crt")
        if signer is None:
            self._run("--generate-self-signed", "--load-privkey", str(key),
                      "--template", str(t), "--outfile", str(cert))
        else:
            scert, skey = signer
            self._run("--generate-certificate", "--load-privkey", str(key),
                      "--load-ca-certificate", str(scert), "--load-ca-privkey", str(skey),
                      "--template", str(t), "--outfile", str(cert))
        chain = self.dir / (name + ".chain.pem")
        chain.write_bytes(cert.read_bytes() + b"".join(Path(c).read_bytes() for c in extra_chain))
        leaf = Leaf(name, cert, key, chain)
        self.leaves[name] = leaf
        return leaf

    def build(self):
        now = _dt.datetime.utcnow()
        day = _dt.timedelta(days=1)
        self.root = self._ca("root", "fapiao test root CA")
        self.intermediate = self._ca("intermediate", "fapiao test intermediate CA", self.root)
        self.other_root = self._ca("other_root", "unknown test root CA")
        self.root_cert = str(self.root[0])
        self.other_root_cert = str(self.other_root[0])
        self.intermediate_cert = str(self.intermediate[0])
        self._leaf("valid", self.intermediate, now - day, now + 365 * day,
                   extra_chain=[self.intermediate[0]])
        self._leaf("chainless", self.intermediate, now - day, now + 365 * day)
        self._leaf("direct", self.root, now - day, now + 365 * day, ips=("127.0.0.1", "::1"))
        self._leaf("expired", self.root, _dt.datetime(2020, 1, 1), _dt.datetime(2021, 1, 1))
        self._leaf("notyet", self.root, now + 365 * day, now + 730 * day)
        self._leaf("wronghost", self.root, now - day, now + 365 * day,
                   hosts=("other.example",), ips=(), cn="other.example")
        self._leaf("selfsigned", None, now - day, now + 365 * day)
        # the server sends leaf + its (unknown) root: complete, but not trusted
        self._leaf("untrusted", self.other_root, now - day, now + 365 * day,
                   extra_chain=[self.other_root[0]])
        self._leaf("dnsname", self.root, now - day, now + 365 * day,
                   hosts=("ok.doctor.test", "localhost"), ips=("127.0.0.1",),
                   cn="ok.doctor.test")
        self._leaf("expiring", self.root, now - 30 * day, now + 10 * day,
                   ips=("127.0.0.1", "::1"))
        self._leaf("weak", self.root, now - day, now + 365 * day, rsa_bits=1024)
        self._leaf("revoked", self.root, now - day, now + 365 * day)
        self.ocsp_revoked = self._ocsp(self["revoked"], now - day)
        self.inspection = self._ca("inspection", "Example Corp SSL Inspection CA",
                                   org="Example Corp Security Gateway")
        self.inspection_cert = str(self.inspection[0])
        self._leaf("intercepted", self.inspection, now - day, now + 365 * day,
                   ips=("127.0.0.1", "::1"))
        return self

    def _ocsp(self, leaf, revoked_at):
        """A DER OCSP response for leaf, signed by the root, status revoked."""
        def ossl(*args):
            r = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            assert r.returncode == 0, "openssl %s: %s" % (
                " ".join(args), r.stderr.decode(errors="replace")[-2000:])
            return r.stdout.decode()
        serial = ossl("x509", "-in", leaf.cert, "-noout", "-serial").strip().split("=", 1)[1]
        subject = ossl("x509", "-in", leaf.cert, "-noout", "-subject", "-nameopt",
                       "compat").strip().split("=", 1)[1].strip()
        stamp = lambda t: t.strftime("%y%m%d%H%M%SZ")
        index = self.dir / "ocsp-index.txt"
        index.write_text("R\t%s\t%s\t%s\tunknown\t%s\n" % (
            stamp(revoked_at + _dt.timedelta(days=400)), stamp(revoked_at), serial, subject))
        req, resp = self.dir / "ocsp-req.der", self.dir / "ocsp-revoked.der"
        ossl("ocsp", "-issuer", self.root_cert, "-cert", leaf.cert, "-no_nonce",
             "-reqout", str(req))
        ossl("ocsp", "-index", str(index), "-rsigner", self.root_cert, "-rkey",
             str(self.root[1]), "-CA", self.root_cert, "-reqin", str(req), "-respout",
             str(resp), "-ndays", "7")
        return str(resp)

    def __getitem__(self, name):
        return self.leaves[name]
