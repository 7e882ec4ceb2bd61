# SPDX-License-Identifier: Apache-2.0
"""faultenv - the parts of a hospital network the fault tests put between node and hub.

    from faultenv import Certs, Front, Proxy, free_port

    certs = Certs(tmpdir)                      # a test CA ("Hospital Test CA")
    good = certs.leaf("good")                  # valid now, for 127.0.0.1 and localhost
    front = Front(tmpdir, good, hub.port).start()   # stunnel4: TLS on front.port -> hub
    proxy = Proxy(tmpdir, connect_ports=[front.port], auth=("u", "p")).start()
    ...
    front.stop(); proxy.stop()

Certs makes certificates with python3-cryptography: leaf(name, days_from, days_to,
hosts, ca) gives (cert_path, key_path) for a key signed by the test CA or by another
Certs' CA (an unknown CA from the node's point of view); days are relative to now, so
an expired certificate is leaf("old", -10, -1). The CA certificate is certs.ca_file.

Front runs Debian's stunnel4 in the foreground as a TLS terminator before the plain
HTTP hub emulator (so the emulator keeps its tasks when the front is stopped,
restarted with a rotated certificate or switched to TLS 1.0 only). Proxy runs
Debian's tinyproxy on a free loopback port: CONNECT only to connect_ports (a proxy
that refuses CONNECT to the hub's port is Proxy(..., connect_ports=[443])), Basic
authentication when auth is given; proxy.connects() counts the CONNECT requests it
logged, the proof that a call went through it.

Everything listens on 127.0.0.1 only and is stopped by its stop() (SIGTERM, then
SIGKILL after 5 s); a process that dies early raises with its log.
"""

import datetime
import ipaddress
import os
import re
import signal
import socket
import subprocess
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

STUNNEL = "/usr/bin/stunnel4"
TINYPROXY = "/usr/bin/tinyproxy"
FAKETIME = "/usr/bin/faketime"


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, proc, log, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("exited with %d before listening; log:\n%s"
                               % (proc.returncode, read_text(log)))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("not listening on %d after %g s; log:\n%s" % (port, timeout, read_text(log)))


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def stop_process(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Certs:
    """A test certificate authority and the leaf certificates it signs."""

    def __init__(self, directory, name="Hospital Test CA"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=30))
                     .not_valid_after(now + datetime.timedelta(days=365))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                                  crl_sign=True, content_commitment=False,
                                                  key_encipherment=False, data_encipherment=False,
                                                  key_agreement=False, encipher_only=False,
                                                  decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        tag = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.ca_file = os.path.join(directory, tag + ".pem")
        with open(self.ca_file, "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))

    def leaf(self, name, days_from=-1, days_to=30, hosts=("127.0.0.1", "localhost")):
        """(cert_path, key_path) of a server certificate for hosts, signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        sans = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now + datetime.timedelta(days=days_from))
                .not_valid_after(now + datetime.timedelta(days=days_to))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        cpath = os.path.join(self.dir, name + "-cert.pem")
        kpath = os.path.join(self.dir, name + "-key.pem")
        with open(cpath, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(kpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return cpath, kpath


class Front:
    """stunnel4 terminating TLS on 127.0.0.1:port and forwarding to the plain hub."""

    def __init__(self, directory, cert, hub_port, port=None, tls10_only=False):
        self.dir = directory
        self.cert = cert
        self.hub_port = hub_port
        self.port = port or free_port()
        self.tls10_only = tls10_only
        self.proc = None
        self.n = 0

    def start(self, cert=None, tls10_only=None):
        """(Re)start, optionally with another certificate or protocol range; the port
        stays the same, as when an operator rotates a certificate."""
        self.stop()
        if cert is not None:
            self.cert = cert
        if tls10_only is not None:
            self.tls10_only = tls10_only
        self.n += 1
        conf = os.path.join(self.dir, "stunnel-%d.conf" % self.n)
        self.log = os.path.join(self.dir, "stunnel-%d.log" % self.n)
        lines = ["foreground = yes", "pid =", "debug = 5", "output = " + self.log,
                 "[hub]", "accept = 127.0.0.1:%d" % self.port,
                 "connect = 127.0.0.1:%d" % self.hub_port,
                 "cert = " + self.cert[0], "key = " + self.cert[1]]
        if self.tls10_only:
            # what an unpatched appliance offers; OpenSSL 3 needs security level 0 for it
            lines += ["sslVersionMin = TLSv1", "sslVersionMax = TLSv1",
                      "ciphers = DEFAULT:@SECLEVEL=0"]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([STUNNEL, conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port, self.proc, self.log)
        return self

    @property
    def url(self):
        return "https://127.0.0.1:%d/api" % self.port

    def stop(self):
        stop_process(self.proc)
        self.proc = None


class Proxy:
    """tinyproxy on a free loopback port."""

    def __init__(self, directory, connect_ports=(), auth=None):
        self.dir = directory
        self.port = free_port()
        self.connect_ports = list(connect_ports)
        self.auth = auth
        self.proc = None
        self.log = os.path.join(directory, "tinyproxy-%d.log" % self.port)

    def start(self):
        conf = os.path.join(self.dir, "tinyproxy-%d.conf" % self.port)
        lines = ["Port %d" % self.port, "Listen 127.0.0.1", "Timeout 60",
                 "LogFile \"%s\"" % self.log, "LogLevel Connect", "MaxClients 20",
                 "Allow 127.0.0.1", "DisableViaHeader Yes"]
        lines += ["ConnectPort %d" % p for p in self.connect_ports]
        if self.auth:
            lines.append("BasicAuth %s %s" % self.auth)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([TINYPROXY, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port, self.proc, self.log)
        return self

    def url(self, auth=None):
        a = auth if auth is not None else self.auth
        cred = "%s:%s@" % a if a else ""
        return "http://%s127.0.0.1:%d" % (cred, self.port)

    def connects(self):
        """How many CONNECT requests the proxy logged."""
        return len(re.findall(r"Request \(file descriptor \d+\): CONNECT ", read_text(self.log)))

    def stop(self):
        stop_process(self.proc)
        self.proc = None
