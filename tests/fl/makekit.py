#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""makekit - FL participant kits for the tests, made the way NVFLARE provisions one.

    makekit.py OUT.tar.gz --slot Trust_2 [--client-cmd PATH] [--tamper KIND ...]
    makekit.py OUT.tar.gz --slot Trust_2 --hostile KIND

A kit (docs/design/fl.md) is a folder named after the slot holding
  startup/  fed_client.json (client.fqsn = the slot), rootCA.pem, client.crt,
            client.key, start.sh, sub_start.sh, stop_fl.sh, and signature.json:
            {file name: standard base64 of the RSA-PSS signature of the file's
            bytes by the root CA's key, SHA-256, MGF1-SHA-256, maximum salt
            length} for every other file of startup/
  local/    the site's *.default files
  transfer/ empty
and it travels as a tarball. Everything is made with Debian's python3-cryptography:
a root CA (self-signed, RSA 2048) and the slot's client key and certificate signed
by it.

Tampering (--tamper, several allowed), each what check must refuse:
  edit          start.sh changed after signing
  missing-sig   no signature.json entry for stop_fl.sh
  extra-sig     signature.json signs readme.txt, which is not in startup/
  bad-sig       stop_fl.sh's signature is that of another text
  wrong-slot    client.fqsn names another slot (signed: only the slot check fails)
  expired       client.crt ended yesterday
  expiring      client.crt ends in 10 days (a warning only)
  key-mismatch  client.key is not client.crt's key
  other-ca      client.crt is signed by another CA than rootCA.pem
  unsigned      no signature.json at all, as NVFLARE 2.8 provisions some kits
                (accepted unless FL_KIT_REQUIRE_SIGNATURE=yes)

Hostile tarballs (--hostile), a valid kit plus one member install-kit must refuse:
  dotdot, dotdot-inner, absolute, symlink-abs (to /etc), symlink-up (../..),
  symlink-through (a member written through an allowed link), hardlink-abs,
  hardlink-up, device, fifo, huge (a member claiming 100 GiB), many (10,001
  entries), duplicate.

Used as a module by tests/integration/test_fl.py: make_kit(), write_tar(),
hostile_tar().
"""
import argparse
import base64
import datetime
import hashlib
import io
import json
import os
import sys
import tarfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

TAMPERS = ("edit", "missing-sig", "extra-sig", "bad-sig", "wrong-slot", "expired",
           "expiring", "key-mismatch", "other-ca")
HOSTILE = ("dotdot", "dotdot-inner", "absolute", "symlink-abs", "symlink-up",
           "symlink-through", "hardlink-abs", "hardlink-up", "device", "fifo", "huge",
           "many", "duplicate")

def _key():
    """A fresh RSA key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject_cn, subject_key, issuer_cn, issuer_key, not_before, not_after, ca):
    b = (x509.CertificateBuilder()
         .subject_name(_name(subject_cn))
         .issuer_name(_name(issuer_cn))
         .public_key(subject_key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before)
         .not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return b.sign(issuer_key, hashes.SHA256())


def _pem_cert(c):
    return c.public_bytes(serialization.Encoding.PEM)


def _pem_key(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def sign(ca_key, data):
    """NVFLARE's startup-kit signature: RSA-PSS, SHA-256, MGF1-SHA-256, max salt."""
    sig = ca_key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                        salt_length=padding.PSS.MAX_LENGTH), hashes.SHA256())
    return base64.b64encode(sig).decode("ascii")


def make_kit(slot, client_cmd=None, tamper=(), project="flip-test", server="fl.hub.example.org:8002"):
    """The kit as {relative path: (bytes, mode)} plus "dirs"; tamper as in the module doc;
    server is fed_client.json's target (host:port)."""
    tamper = set(tamper)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    day = datetime.timedelta(days=1)
    ca_key, client_key = _key(), _key()
    ca = _cert(project, ca_key, project, ca_key, now - day, now + 365 * day, True)
    issuer_cn, issuer_key = project, ca_key
    if "other-ca" in tamper:
        issuer_key = _key()
        issuer_cn = "another-project"
    if "expired" in tamper:
        nb, na = now - 30 * day, now - day
    elif "expiring" in tamper:
        nb, na = now - day, now + 10 * day
    else:
        nb, na = now - day, now + 300 * day
    cert = _cert(slot, client_key, issuer_cn, issuer_key, nb, na, False)
    key_pem = _pem_key(_key() if "key-mismatch" in tamper else client_key)
    fed = {
        "format_version": 2,
        "servers": [{"name": project,
                     "service": {"target": server, "scheme": "grpc"},
                     "identity": server.rsplit(":", 1)[0]}],
        "client": {"ssl_private_key": "client.key", "ssl_cert": "client.crt",
                   "ssl_root_cert": "rootCA.pem", "connection_security": "mtls",
                   "fqsn": "Trust_99" if "wrong-slot" in tamper else slot},
    }
    run = ('exec %s\n' % client_cmd) if client_cmd else (
        'exec python3 -u -m nvflare.private.fed.app.client.client_train -m "$(dirname "$0")/.." '
        '-s fed_client.json --set secure_train=true config_folder=config org=nvidia\n')
    startup = {
        "fed_client.json": json.dumps(fed, indent=2).encode(),
        "rootCA.pem": _pem_cert(ca),
        "client.crt": _pem_cert(cert),
        "client.key": key_pem,
        "start.sh": b'#!/bin/sh\nexec "$(dirname "$0")/sub_start.sh"\n',
        "sub_start.sh": ("#!/bin/sh\n# the stand-in's start script\n" + run).encode(),
        "stop_fl.sh": b'#!/bin/sh\necho "stop_fl.sh: shutdown requested"\n'
                      b'touch "$(dirname "$0")/../shutdown.fl"\n',
    }
    sigs = {name: sign(ca_key, data) for name, data in sorted(startup.items())}
    if "edit" in tamper:
        startup["start.sh"] += b"echo changed after signing\n"
    if "missing-sig" in tamper:
        del sigs["stop_fl.sh"]
    if "extra-sig" in tamper:
        sigs["readme.txt"] = sign(ca_key, b"not shipped\n")
    if "bad-sig" in tamper:
        sigs["stop_fl.sh"] = sign(ca_key, b"another text\n")
    if "unsigned" not in tamper:
        startup["signature.json"] = json.dumps(sigs, indent=2).encode()
    files = {}
    for name, data in startup.items():
        mode = 0o755 if name.endswith(".sh") else 0o600 if name.endswith(".key") else 0o644
        files["startup/" + name] = (data, mode)
    files["local/resources.json.default"] = (b'{"format_version": 2}\n', 0o644)
    files["local/log.config.default"] = (b'{"version": 1}\n', 0o644)
    files["local/privacy.json.sample"] = (b'{"scopes": []}\n', 0o644)
    return {"files": files, "dirs": ["startup", "local", "transfer"], "key_pem": key_pem,
            "slot": slot, "root_sha256": hashlib.sha256(
                x509.load_pem_x509_certificate(startup["rootCA.pem"]).public_bytes(
                    serialization.Encoding.DER)).hexdigest()}


def _add(tf, name, data=b"", mode=0o644, kind=tarfile.REGTYPE, linkname="", size=None):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = 1700000000
    ti.linkname = linkname
    if kind == tarfile.REGTYPE:
        ti.size = len(data) if size is None else size
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)


def _add_kit(tf, kit, prefix):
    for d in kit["dirs"]:
        _add(tf, prefix + d, mode=0o755, kind=tarfile.DIRTYPE)
    for name, (data, mode) in sorted(kit["files"].items()):
        _add(tf, prefix + name, data, mode)


def write_tar(kit, path, prefix=None, compress="gz"):
    """The kit as a tarball, under a folder named after the slot (prefix "" for none)."""
    prefix = kit["slot"] + "/" if prefix is None else prefix
    with tarfile.open(path, "w:" + compress if compress else "w",
                      format=tarfile.PAX_FORMAT) as tf:
        if prefix:
            _add(tf, prefix.rstrip("/"), mode=0o755, kind=tarfile.DIRTYPE)
        _add_kit(tf, kit, prefix)
    return path


def hostile_tar(kit, path, kind):
    """A tarball with the valid kit under the slot's folder, plus one hostile member."""
    p = kit["slot"] + "/"
    if kind == "huge":
        # a header claiming 100 GiB, followed by no data: refused on the header alone
        with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
            _add_kit(tf, kit, p)
        ti = tarfile.TarInfo(p + "local/huge.bin")
        ti.size = 100 << 30
        ti.mode = 0o644
        with open(path, "r+b") as f:
            # replace the end-of-archive blocks with the huge member's header and a little data
            data = f.read()
            end = len(data)
            while end >= 512 and data[end - 512:end] == b"\0" * 512:
                end -= 512
            f.seek(end)
            f.truncate()
            f.write(ti.tobuf(format=tarfile.GNU_FORMAT) + b"x" * 4096)
        return path
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        _add_kit(tf, kit, p)
        if kind == "dotdot":
            _add(tf, "../evil-dotdot.txt", b"escaped\n")
        elif kind == "dotdot-inner":
            _add(tf, p + "startup/../../../evil-inner.txt", b"escaped\n")
        elif kind == "absolute":
            _add(tf, os.path.join(os.path.dirname(os.path.abspath(path)), "evil-abs.txt"),
                 b"escaped\n")
        elif kind == "symlink-abs":
            _add(tf, p + "local/etc", kind=tarfile.SYMTYPE, linkname="/etc")
        elif kind == "symlink-up":
            _add(tf, p + "local/up", kind=tarfile.SYMTYPE, linkname="../../../../etc")
        elif kind == "symlink-through":
            _add(tf, p + "local/down", kind=tarfile.SYMTYPE, linkname="sub")
            _add(tf, p + "local/down/evil.txt", b"through a link\n")
        elif kind == "hardlink-abs":
            _add(tf, p + "local/passwd", kind=tarfile.LNKTYPE, linkname="/etc/passwd")
        elif kind == "hardlink-up":
            _add(tf, p + "local/passwd", kind=tarfile.LNKTYPE, linkname="../../etc/passwd")
        elif kind == "device":
            ti = tarfile.TarInfo(p + "local/null")
            ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.CHRTYPE, 1, 3, 0o666
            tf.addfile(ti)
        elif kind == "fifo":
            _add(tf, p + "local/pipe", kind=tarfile.FIFOTYPE, mode=0o644)
        elif kind == "many":
            for i in range(10001):
                _add(tf, p + "local/d%05d" % i, kind=tarfile.DIRTYPE, mode=0o755)
        elif kind == "duplicate":
            _add(tf, p + "local/resources.json.default", b'{"again": true}\n')
        else:
            raise ValueError("unknown hostile kind %r" % kind)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--slot", default="Trust_2")
    ap.add_argument("--client-cmd", help="what sub_start.sh executes (a stand-in client)")
    ap.add_argument("--tamper", action="append", default=[], choices=TAMPERS)
    ap.add_argument("--hostile", choices=HOSTILE)
    ap.add_argument("--flat", action="store_true", help="no folder named after the slot")
    args = ap.parse_args()
    kit = make_kit(args.slot, args.client_cmd, args.tamper)
    if args.hostile:
        hostile_tar(kit, args.out, args.hostile)
    else:
        write_tar(kit, args.out, prefix="" if args.flat else None)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
