# SPDX-License-Identifier: Apache-2.0
"""test_provision - `make provision` (tools/provision.sh): the package and the kit go
over SSH to a trust's host, are installed, checked and enabled, for real, against a
real sshd, without touching this machine.

The "trust's host" is a private mount namespace (unshare, as in test_deb.py) in
which /etc, /usr, /var, /root, /home, /opt and /srv are overlays whose writes land
in this test's temporary directory, and /run and /tmp are empty tmpfs. In it runs
Debian's sshd on a free loopback port, with a host key and an authorized key made
here (ssh-keygen), and logins for root, for `flipadmin` (password-less sudo) and
for `flipnosudo` (no sudo rule). Everything the script does on the target happens
in that namespace: apt-get installs the .deb (its Depends are already satisfied
here, so nothing is downloaded), the postinst creates the user flip, systemctl
enables the units, and the test looks at the result with nsenter. The hub emulator runs on loopback, so
flipctl doctor's hub, aes-key and clock checks talk to a hub for real.

systemd is not PID 1 in the namespace (nor on this machine), so the script takes
its documented branch for a host where systemd is not running: `systemctl enable`
(the real one) creates the enable symlinks, nothing is started, and the script says
so. The test checks the links with `systemctl is-enabled` in the namespace. The
other branch (`daemon-reload`, `enable --now`) differs only in those two calls and
is not run here. Nothing is shimmed.

Checked: a first run with a kit whose API key the hub refuses installs the package
and the kit and stops at doctor (FAIL shown, step named) with no unit enabled; a
correct kit is then refused because it differs from the installed one (nothing
changes) until FORCE_KIT=1, which replaces it (the old one kept 0600) and ends with
the units enabled, as the sudo user; a second run as root changes nothing (same
kit inode, same de-identification key, same links). With a kit file naming an FL
slot but no FL kit yet, doctor says "--" and flip-fl.timer and flip-serve.socket
stay disabled; after flip-fl install-kit on the target, a run enables them. The kit is root:flip 0640 with
the kit's bytes, the spool, state and log directories are flip's 0700, doctor
passed and the hub saw its heartbeats, no temporary directory is left on either
side. The kit's secrets are in no output and in no command line (strace of every
execve on the workstation side). A kit of mode 0644 is refused before any
connection is made, and an unknown or changed host key stops the run with what to
do (sshd's log shows no login in either case); a login that cannot sudo stops
before anything is copied. DRY_RUN=1 connects to nothing.
`make provision` without TRUST_HOST fails at once. Finally this machine has no
flip-node package, no /etc/flip/flip.env, no user flip and no flip unit enabled.

FLIP_SHOW_OUTPUT=1 prints every run's output; FLIP_KEEP_TMP=1 keeps the directory
(the overlays' upper layers show every file the runs wrote on the "target").
"""

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from nodeenv import ROOT, Hub

sys.path.insert(0, os.path.join(ROOT, "tests", "fl"))
import makekit  # noqa: E402

with open(os.path.join(ROOT, "VERSION"), encoding="utf-8") as _f:
    VERSION = _f.read().strip()
ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                      text=True).stdout.strip()
DEB = os.path.join(ROOT, "build", "deb", "flip-node_%s_%s.deb" % (VERSION, ARCH))
SCRIPT = os.path.join(ROOT, "tools", "provision.sh")
SSHD = "/usr/sbin/sshd"
CORE_UNITS = ("flip-poll.timer", "flip-exec.path", "flip-exec.timer", "flip-report.path",
              "flip-report.timer", "flip-purge.timer", "flip-exec-imaging.timer")
FL_UNITS = ("flip-fl.timer", "flip-serve.socket")
ADMIN = "flipadmin"
NOSUDO = "flipnosudo"
SLOT = "Trust_2"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The target: overlays and tmpfs over everything the package, apt, adduser, sudo
# and systemctl write, then sshd. $T is the test's directory, $PORT sshd's port.
NAMESPACE = r"""
set -e
for d in etc usr var root home opt srv; do
    mkdir -p $T/ns/$d.up $T/ns/$d.work
    mount -t overlay overlay -o lowerdir=/$d,upperdir=$T/ns/$d.up,workdir=$T/ns/$d.work /$d
done
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 /run/sshd /run/flip-test
install -m 0600 $T/sshd/host_key /run/flip-test/host_key
install -m 0644 $T/sshd/authorized_keys /run/flip-test/authorized_keys
cat >/run/flip-test/sshd_config <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey /run/flip-test/host_key
AuthorizedKeysFile /run/flip-test/authorized_keys
PidFile none
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
Subsystem sftp internal-sftp
LogLevel INFO
EOF
mount -t tmpfs -o mode=1777 tmpfs /tmp
# a login that is not root, with sudo that asks for no password; '*' rather than
# useradd's '!', which sshd (without PAM) takes for a locked account
useradd --create-home --shell /bin/sh """ + ADMIN + r"""
usermod -p '*' """ + ADMIN + r"""
echo '""" + ADMIN + r""" ALL=(ALL:ALL) NOPASSWD: ALL' >/etc/sudoers.d/flip-test
chmod 0440 /etc/sudoers.d/flip-test
# and one with no sudo rule at all
useradd --create-home --shell /bin/sh """ + NOSUDO + r"""
usermod -p '*' """ + NOSUDO + r"""
echo namespace ready >&2
exec """ + SSHD + r""" -D -e -f /run/flip-test/sshd_config
"""


def run(*cmd, **kw):
    return subprocess.run(list(cmd), capture_output=True, text=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Provision(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sshd = cls.hub = None
        cls.tmp = None
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root for a private mount namespace")
        p = run("unshare", "--mount", "--propagation", "private", "true")
        if p.returncode != 0:
            raise unittest.SkipTest("no mount namespace here: " + p.stderr.strip())
        for tool in (SSHD, "/usr/bin/ssh", "/usr/bin/scp", "/usr/bin/sudo"):
            if not os.path.exists(tool):
                raise unittest.SkipTest(tool + " is missing (make deps installs packages.list)")
        if not os.path.exists(DEB):
            env = {k: v for k, v in os.environ.items()
                   if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
            p = run("make", "--no-print-directory", "-C", ROOT, "deb", env=env, timeout=900)
            if p.returncode != 0:
                raise AssertionError("make deb failed:\n" + (p.stdout + p.stderr)[-4000:])
        cls.tmp = tempfile.mkdtemp(prefix="flip-provision-test-")
        try:
            cls._start()
        except BaseException:
            cls._stop()
            raise

    @classmethod
    def _start(cls):
        t = cls.tmp
        # a copy, so that a `make deb` elsewhere meanwhile cannot pull it away
        cls.deb = os.path.join(t, os.path.basename(DEB))
        shutil.copyfile(DEB, cls.deb)
        os.makedirs(os.path.join(t, "sshd"))
        os.makedirs(os.path.join(t, "ws", "tmp"))      # the workstation's TMPDIR
        keys = {}
        for name in ("host_key", "other_host_key", "client_key"):
            path = os.path.join(t, "sshd" if name != "client_key" else "ws", name)
            p = run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path)
            assert p.returncode == 0, p.stderr
            with open(path + ".pub", encoding="ascii") as f:
                keys[name] = " ".join(f.read().split()[:2])
        cls.client_key = os.path.join(t, "ws", "client_key")
        shutil.copyfile(cls.client_key + ".pub", os.path.join(t, "sshd", "authorized_keys"))
        cls.port = free_port()
        cls.known_hosts = os.path.join(t, "ws", "known_hosts")
        cls.other_known_hosts = os.path.join(t, "ws", "known_hosts.other")
        cls.no_known_hosts = os.path.join(t, "ws", "known_hosts.empty")
        for path, key in ((cls.known_hosts, keys["host_key"]),
                          (cls.other_known_hosts, keys["other_host_key"]), (cls.no_known_hosts, None)):
            with open(path, "w", encoding="ascii") as f:
                if key:
                    f.write("[127.0.0.1]:%d %s\n" % (cls.port, key))

        cls.hub = Hub().start(os.path.join(t, "hub"))
        cls.kit_lines = dict(cls.hub.env(), EXPECTED_TRUST_ID=cls.hub.trust_id,
                             FLIP_LOG_LEVEL="info")
        cls.kit = cls.write_kit("kit.env", cls.kit_lines, 0o600)
        cls.secrets = [cls.hub.api_key, cls.hub.aes_key_b64]

        cls.sshd_log_path = os.path.join(t, "sshd.log")
        cls.sshd_log = open(cls.sshd_log_path, "w")
        cls.sshd = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", NAMESPACE],
            env={"PATH": PATH, "T": t, "PORT": str(cls.port)}, stdin=subprocess.DEVNULL,
            stdout=cls.sshd_log, stderr=cls.sshd_log)
        deadline = time.monotonic() + 20
        while "Server listening" not in cls.read_log():
            if cls.sshd.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("sshd did not start in the namespace:\n" + cls.read_log())
            time.sleep(0.05)

    @classmethod
    def _stop(cls):
        if cls.sshd is not None:
            cls.sshd.terminate()
            try:
                cls.sshd.wait(10)
            except subprocess.TimeoutExpired:
                cls.sshd.kill()
                cls.sshd.wait()
            cls.sshd_log.close()
        if cls.hub is not None:
            cls.hub.stop()
        if cls.tmp and not os.environ.get("FLIP_KEEP_TMP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)
        elif cls.tmp:
            print("kept", cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls._stop()

    @classmethod
    def write_kit(cls, name, lines, mode):
        path = os.path.join(cls.tmp, "ws", name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# the trust's kit, written by test_provision\n")
            for k, v in lines.items():
                f.write("%s=%s\n" % (k, v))
        os.chmod(path, mode)
        return path

    @classmethod
    def read_log(cls):
        with open(cls.sshd_log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def logins(self):
        return len(re.findall(r"Accepted publickey for", self.read_log()))

    # -- running the script and looking at the target --------------------------------

    def provision(self, user="root", kit=None, known_hosts=None, trace=None, **settings):
        """tools/provision.sh with this test's settings; a CompletedProcess whose
        .out is stdout and stderr together. Every output is kept for the secrets check."""
        env = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": os.path.join(self.tmp, "ws"),
               "TMPDIR": os.path.join(self.tmp, "ws", "tmp"),
               "TRUST_HOST": "127.0.0.1", "SSH_PORT": str(self.port), "SSH_USER": user,
               "SSH_KEY": self.client_key, "SSH_CONFIG": "/dev/null",
               "SSH_KNOWN_HOSTS": known_hosts or self.known_hosts,
               "KIT": kit or self.kit, "DEB": self.deb}
        env.update(settings)
        argv = ["/bin/sh", SCRIPT]
        if trace:
            argv = ["strace", "-f", "-qq", "-e", "trace=execve", "-s", "100000", "-o", trace] + argv
        p = run(*argv, env=env, timeout=180, cwd=self.tmp)
        p.out = p.stdout + p.stderr
        type(self).outputs.append(p.out)
        if os.environ.get("FLIP_SHOW_OUTPUT"):
            print("\n$ %s\n%s" % (" ".join(argv), p.out))
        self.assertEqual(os.listdir(env["TMPDIR"]), [], "the local temporary directory stayed")
        return p

    outputs = []

    def ns(self, script):
        """Run a shell script in the target's namespace; its stdout."""
        p = run("nsenter", "--target", str(self.sshd.pid), "--mount", "--",
                "/bin/sh", "-c", script, env={"PATH": PATH}, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def stat(self, path):
        """(mode, user, group, inode) of a path on the target, or None"""
        out = self.ns("stat -c '%%a %%U %%G %%i' %s 2>/dev/null || true" % path).split()
        return tuple(out) if out else None

    def target_sha(self, path):
        return self.ns("sha256sum %s | cut -d' ' -f1" % path).strip()

    def enabled(self, units):
        out = self.ns("systemctl is-enabled %s || true" % " ".join(units))
        return dict(zip(units, out.split()))

    def links(self):
        return sorted(self.ns("find /etc/systemd/system -name 'flip*'").split())

    def assertNoSecrets(self, text, where):
        for s in self.secrets:
            self.assertNotIn(s, text, "a secret of the kit is in " + where)

    def assertNoTemporaries(self):
        self.assertEqual(self.ns("ls -A /tmp"), "", "a temporary directory stayed on the target")

    # -- the tests ----------------------------------------------------------------------

    def test_install_doctor_force_kit_and_rerun(self):
        # 1. a kit whose API key the hub refuses: installed, then doctor FAILs and
        #    nothing is enabled (as the sudo user, on a host without the package)
        bad = self.write_kit("bad.env", dict(self.kit_lines, TRUST_API_KEY="wrong-" + "7" * 40),
                             0o640)
        p = self.provision(user=ADMIN, kit=bad)
        self.assertEqual(p.returncode, 1, p.out)
        self.assertIn("FAILED at step 9/11 (check the set-up", p.stderr)
        self.assertIn("nothing was enabled or started by this run", p.stderr)
        self.assertRegex(p.stdout, r"(?m)^    FAIL\s+hub\s")
        self.assertEqual(self.ns("dpkg-query -W -f '${Status} ${Version}' flip-node"),
                         "install ok installed " + VERSION)
        self.assertEqual(self.stat("/etc/flip/flip.env")[:3], ("640", "root", "flip"))
        self.assertEqual(self.target_sha("/etc/flip/flip.env"), sha256(bad))
        self.assertEqual(set(self.enabled(CORE_UNITS).values()), {"disabled"})
        self.assertNoTemporaries()

        # 2. the right kit differs from the one there: refused, nothing changes
        p = self.provision(user=ADMIN)
        self.assertEqual(p.returncode, 1, p.out)
        self.assertIn("FAILED at step 5/11", p.stderr)
        self.assertIn("differs", p.stderr)
        self.assertIn("FORCE_KIT=1", p.stderr)
        self.assertEqual(self.target_sha("/etc/flip/flip.env"), sha256(bad))
        self.assertNotIn("[6/11]", p.stdout, "it went on to install")

        # 3. FORCE_KIT=1: replaced, checked, enabled; traced, for the command lines
        hub_beats = len(self.hub.heartbeats())
        trace = os.path.join(self.tmp, "execve.trace")
        p = self.provision(user=ADMIN, FORCE_KIT="1", trace=trace)
        self.assertEqual(p.returncode, 0, p.out)
        steps = re.findall(r"(?m)^provision: \[(\d+)/11\] ", p.stdout)
        self.assertEqual(steps, [str(i) for i in range(1, 12)], p.stdout)
        self.assertIn("replaced; the old one is /etc/flip/flip.env.previous", p.stdout)
        self.assertRegex(p.stdout, r"(?m)^    ok\s+hub\s")
        self.assertRegex(p.stdout, r"(?m)^    ok\s+aes-key\s")
        self.assertNotRegex(p.stdout, r"(?m)^    FAIL")
        self.assertIn("nothing was started", p.stdout)
        self.assertIn("no verified FL kit", p.stdout)
        self.assertGreater(len(self.hub.heartbeats()), hub_beats, "doctor did not reach the hub")

        kit = self.stat("/etc/flip/flip.env")
        self.assertEqual(kit[:3], ("640", "root", "flip"))
        self.assertEqual(self.target_sha("/etc/flip/flip.env"), sha256(self.kit))
        self.assertEqual(self.stat("/etc/flip/flip.env.previous")[:3], ("600", "root", "root"))
        self.assertEqual(self.target_sha("/etc/flip/flip.env.previous"), sha256(bad))
        self.assertIsNone(self.stat("/etc/flip/.flip.env.new"))
        # the state directory: passage for flip-metrics, which reads metrics/ only
        self.assertEqual(self.stat("/var/lib/flip")[:3], ("710", "flip", "flip-metrics"))
        for d in ("/var/spool/flip", "/var/log/flip") + tuple(
                "/var/spool/flip/" + s for s in ("tmp", "new", "cur", "out", "done", "failed",
                                                 "hold")):
            self.assertEqual(self.stat(d)[:3], ("700", "flip", "flip"), d)
        self.assertEqual(self.enabled(CORE_UNITS), {u: "enabled" for u in CORE_UNITS})
        self.assertEqual(self.enabled(FL_UNITS), {u: "disabled" for u in FL_UNITS})
        self.assertNoTemporaries()

        with open(trace, encoding="utf-8", errors="replace") as f:
            execs = [l for l in f if "execve(" in l]
        self.assertTrue(any('"scp"' in l and self.kit in l for l in execs),
                        "the trace shows no scp of the kit")
        self.assertNoSecrets("".join(execs), "a command line")

        # 4. again, as root: nothing changes
        key = self.target_sha("/var/lib/flip/deid.key")
        links = self.links()
        p = self.provision()
        self.assertEqual(p.returncode, 0, p.out)
        self.assertIn("this kit already", p.stdout)
        self.assertIn("unchanged (owner and mode checked)", p.stdout)
        self.assertIn("flip-node %s was installed already: unchanged" % VERSION, p.stdout)
        self.assertEqual(self.stat("/etc/flip/flip.env"), kit, "the kit was rewritten")
        self.assertEqual(self.target_sha("/var/lib/flip/deid.key"), key)
        self.assertEqual(self.links(), links)
        self.assertEqual(len(links), len(CORE_UNITS))
        self.assertEqual(self.ns("dpkg-query -W -f '${Version}' flip-node"), VERSION)
        self.assertRegex(p.stdout, r"(?m)^    ok\s+hub\s")
        self.assertNoTemporaries()

        # 5. FL: a kit file naming the slot, before the FL kit is there: doctor says
        #    "--", the FL units stay disabled; after flip-fl install-kit, a run
        #    enables them (the FL server is a listening loopback socket)
        fl_server = socket.socket()
        self.addCleanup(fl_server.close)
        fl_server.bind(("127.0.0.1", 0))
        fl_server.listen(8)
        fl_kit = self.write_kit("fl.env", dict(self.kit_lines, FL_KIT_SLOT=SLOT), 0o600)
        p = self.provision(kit=fl_kit, FORCE_KIT="1")
        self.assertEqual(p.returncode, 0, p.out)
        self.assertRegex(p.stdout, r"(?m)^    --\s+fl-kit\s")
        self.assertIn("no verified FL kit", p.stdout)
        self.assertEqual(self.enabled(FL_UNITS), {u: "disabled" for u in FL_UNITS})
        tarball = makekit.write_tar(makekit.make_kit(
            SLOT, server="127.0.0.1:%d" % fl_server.getsockname()[1]),
            os.path.join(self.tmp, "fl-kit.tgz"))
        with open(tarball, "rb") as f:
            q = subprocess.run(["nsenter", "--target", str(self.sshd.pid), "--mount", "--",
                                "/bin/sh", "-c", "cat >/run/flip-test/fl-kit.tgz"],
                               input=f.read(), capture_output=True, env={"PATH": PATH})
        self.assertEqual(q.returncode, 0, q.stderr)
        # as deploy-on-prem.md has the operator do it: the kit's folder and the net's
        # image folder (doctor FAILs fl-kit without it), then install-kit as flip
        self.ns("install -d -o flip -g flip -m 0750 /opt/flip /opt/flip/fl-kit "
                "/opt/flip/data /opt/flip/data/images /opt/flip/data/images/net-1 && "
                "runuser -u flip -- flip-fl install-kit /run/flip-test/fl-kit.tgz")
        p = self.provision(kit=fl_kit)
        self.assertEqual(p.returncode, 0, p.out)
        self.assertRegex(p.stdout, r"(?m)^    ok\s+fl-kit\s+slot %s verified" % SLOT)
        self.assertNotIn("no verified FL kit", p.stdout)
        self.assertEqual(self.enabled(FL_UNITS), {u: "enabled" for u in FL_UNITS})
        self.assertEqual(self.enabled(CORE_UNITS), {u: "enabled" for u in CORE_UNITS})

        for out in self.outputs:
            self.assertNoSecrets(out, "the script's output")

        # this machine: no package, no kit, no user flip, no unit enabled
        self.assertNotEqual(run("dpkg", "-s", "flip-node").returncode, 0)
        self.assertFalse(os.path.lexists("/etc/flip/flip.env"))
        self.assertNotEqual(run("getent", "passwd", "flip").returncode, 0)
        self.assertEqual([f for _d, _s, fs in os.walk("/etc/systemd/system")
                          for f in fs if f.startswith("flip")], [])

    def test_open_kit_is_refused_before_connecting(self):
        logins = self.logins()
        kit = self.write_kit("open.env", self.kit_lines, 0o644)
        p = self.provision(kit=kit)
        self.assertEqual(p.returncode, 1, p.out)
        self.assertIn("FAILED at step 1/11", p.stderr)
        self.assertIn("mode 0644", p.stderr)
        self.assertIn("chmod 600", p.stderr)
        self.assertIn("nothing was copied", p.stderr)
        self.assertNotIn("[2/11]", p.stdout)
        self.assertEqual(self.logins(), logins, "it logged in")
        self.assertNoSecrets(p.out, "the output")

    def test_unknown_or_changed_host_key_stops_with_what_to_do(self):
        logins = self.logins()
        for known in (self.no_known_hosts, self.other_known_hosts):
            p = self.provision(known_hosts=known)
            self.assertEqual(p.returncode, 1, p.out)
            self.assertIn("FAILED at step 2/11 (connect", p.stderr)
            self.assertIn("host key of 127.0.0.1 is not in your known_hosts", p.stderr)
            self.assertIn("never accepts a key by itself", p.stderr)
            self.assertIn("ssh-keyscan -p %d 127.0.0.1" % self.port, p.stderr)
        self.assertEqual(self.logins(), logins, "it logged in")

    def test_a_login_without_sudo_stops_before_copying(self):
        p = self.provision(user=NOSUDO)
        self.assertEqual(p.returncode, 1, p.out)
        self.assertIn("FAILED at step 3/11", p.stderr)
        self.assertIn("%s cannot run sudo without a password" % NOSUDO, p.stderr)
        self.assertIn("SSH_USER=root", p.stderr)
        self.assertNotIn("[4/11]", p.stdout)
        self.assertNoTemporaries()

    def test_dry_run_connects_to_nothing(self):
        logins = self.logins()
        p = self.provision(DRY_RUN="1")
        self.assertEqual(p.returncode, 0, p.out)
        self.assertIn("apt-get -q -y", p.stdout)
        self.assertIn("flipctl doctor", p.stdout)
        self.assertIn("nothing was done", p.stdout)
        self.assertEqual(self.logins(), logins)
        self.assertNoSecrets(p.out, "the output")

    def test_make_target(self):
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "TRUST_HOST", "KIT")}
        # checked before anything is built
        p = run("make", "--no-print-directory", "-C", ROOT, "provision", "KIT=" + self.kit,
                env=env, timeout=60)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("TRUST_HOST is not set", p.stderr)
        self.assertNotIn("dpkg-buildpackage", p.stdout)
        p = run("make", "-n", "--no-print-directory", "-C", ROOT, "provision",
                "TRUST_HOST=h", "KIT=" + self.kit, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("dpkg-buildpackage", p.stdout)
        self.assertRegex(p.stdout, r"DEB=build/deb/flip-node_%s_.*\.deb tools/provision\.sh"
                         % re.escape(VERSION))


if __name__ == "__main__":
    unittest.main()
