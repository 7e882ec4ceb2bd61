# SPDX-License-Identifier: Apache-2.0
"""freshroot - a fresh Debian 12 root filesystem for the tests that play a new trust host.

    import freshroot
    why = freshroot.unavailable()           # None, or why this machine cannot do it
    base = freshroot.base()                 # the cached debootstrap tree (made once)
    root = freshroot.copy(dest)             # a private copy to build or boot in
    freshroot.run(root, "make", timeout=900)          # a command in it (systemd-nspawn)
    c = freshroot.Booted(root); c.sh("systemctl --failed"); c.stop()   # booted (-b)

The base tree is `debootstrap --variant=minbase` of bookworm with systemd, dbus,
make and ca-certificates, from the Debian mirror this machine's apt uses
(/etc/apt/sources.list and sources.list.d). It is made once into
/var/cache/flip-node-tests/ (FLIP_FRESHROOT_CACHE overrides it) under a lock, so
concurrent test runs share one, and is never changed after: each test copies it.
Downloaded packages are kept in the cache's apt-archives/, bind-mounted as the
copy's /var/cache/apt/archives, so a second run fetches nothing twice; apt's lock
there is per container, so run() and Booted.sh() with apt=True hold a lock of the
host's (apt_lock()) while a command uses it.

A copy shares the network namespace of the caller (systemd-nspawn without
--private-network); a caller that wants a private loopback-only network unshares
one first (see test_systemd.py). Nothing is registered with systemd-machined
(--register=no, --keep-unit): the machine running the tests may have no systemd.
"""
import contextlib
import fcntl
import glob
import os
import re
import shutil
import subprocess
import time

CACHE = os.environ.get("FLIP_FRESHROOT_CACHE", "/var/cache/flip-node-tests")
SUITE = "bookworm"
INCLUDE = "systemd,systemd-sysv,dbus,make,ca-certificates"
ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                      text=True).stdout.strip()
BASE = os.path.join(CACHE, "%s-%s-minbase" % (SUITE, ARCH))
ARCHIVES = os.path.join(CACHE, "apt-archives")
NSPAWN = ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
          "--resolv-conf=copy-host", "--timezone=off"]


def unavailable():
    """None when this machine can make and run the fresh root, else the reason."""
    if os.geteuid() != 0:
        return "not root: debootstrap and systemd-nspawn need root"
    for tool in ("debootstrap", "systemd-nspawn"):
        if shutil.which(tool) is None:
            return tool + " is missing (make deps-test installs packages-test.list)"
    if not os.path.isdir("/sys/fs/cgroup"):
        return "no cgroup file system: a container cannot be run here"
    return None


def mirror():
    """The Debian archive URI apt is configured with (deb.debian.org if none is found)."""
    texts = []
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) \
            + sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            with open(path, encoding="utf-8") as f:
                texts.append((path, f.read()))
        except OSError:
            continue
    for path, text in texts:
        if path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                uris = re.search(r"(?mi)^URIs:\s*(\S+)", stanza)
                suites = re.search(r"(?mi)^Suites:\s*(.*)$", stanza)
                enabled = re.search(r"(?mi)^Enabled:\s*no", stanza)
                if uris and suites and not enabled and SUITE in suites.group(1).split():
                    return uris.group(1)
        else:
            for line in text.splitlines():
                m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m and m.group(2) == SUITE:
                    return m.group(1)
    return "http://deb.debian.org/debian"


def base(log=None):
    """The cached base tree, made now when missing (about 3 minutes, network)."""
    os.makedirs(CACHE, mode=0o755, exist_ok=True)
    os.makedirs(ARCHIVES, mode=0o755, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(BASE, ".complete")):
            return BASE
        tmp = BASE + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.monotonic()
        p = subprocess.run(["debootstrap", "--variant=minbase", "--include=" + INCLUDE,
                            "--cache-dir=" + ARCHIVES, SUITE, tmp, mirror()],
                           capture_output=True, text=True, timeout=1200)
        if p.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError("debootstrap failed:\n" + (p.stdout + p.stderr)[-3000:])
        # no machine id: each boot of a copy makes its own, as a fresh install does
        with open(os.path.join(tmp, "etc", "machine-id"), "w"):
            pass
        with open(os.path.join(tmp, ".complete"), "w") as f:
            f.write("debootstrap %s from %s in %.0f s\n" % (SUITE, mirror(), time.monotonic() - t0))
        os.rename(tmp, BASE)
        if log:
            log("made the base tree %s in %.0f s" % (BASE, time.monotonic() - t0))
        return BASE


@contextlib.contextmanager
def apt_lock():
    """Held while a container uses the shared apt-archives/ (two containers' apt
    would each take its own lock on it and fail on the other's)."""
    os.makedirs(CACHE, mode=0o755, exist_ok=True)
    with open(os.path.join(CACHE, ".apt-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def copy(dest):
    """A private copy of the base tree at dest (replaced if there)."""
    src = base()
    remove(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    subprocess.run(["cp", "-a", "--reflink=auto", src, dest], check=True)
    return dest


def remove(path):
    """Remove a copy (unmounting nothing: nspawn's mounts end with it)."""
    if os.path.lexists(path):
        subprocess.run(["rm", "-rf", "--one-file-system", path], check=False)


def run(root, command, timeout=900, env=None, binds=(), apt=False):
    """Run /bin/sh -c command in root (not booted); a CompletedProcess (text).
    apt: the command uses apt (holds apt_lock())."""
    args = NSPAWN + ["-D", root, "--bind=%s:/var/cache/apt/archives" % ARCHIVES]
    for b in binds:
        args.append("--bind=" + b)
    for k, v in (env or {}).items():
        args.append("--setenv=%s=%s" % (k, v))
    args += ["/bin/sh", "-c", command]
    with apt_lock() if apt else contextlib.nullcontext():
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)


class Booted:
    """root booted with its own systemd as PID 1 (systemd-nspawn -b); commands run in
    it through nsenter into every namespace of its PID 1."""

    def __init__(self, root, name, log_path, binds=(), timeout=120):
        self.root = root
        # CAP_NET_ADMIN: a host's systemd brings up the loopback of a unit's private
        # network (PrivateNetwork=yes); without it every such start logs a warning.
        # The container shares its caller's network namespace: give it one of its
        # own (test_systemd.py does) before booting.
        args = NSPAWN + ["-b", "-D", root, "-M", name, "--console=passive",
                         "--capability=CAP_NET_ADMIN",
                         "--bind=%s:/var/cache/apt/archives" % ARCHIVES]
        for b in binds:
            args.append("--bind=" + b)
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.pid = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            kids = self._children(self.proc.pid)
            if kids:
                try:
                    with open("/proc/%d/comm" % kids[0]) as f:
                        if f.read().strip() == "systemd":
                            self.pid = kids[0]
                except OSError:
                    pass
            if self.pid:
                p = self.sh("systemctl is-system-running", check=False, timeout=30)
                if p.stdout.strip() in ("running", "degraded"):
                    return
            time.sleep(0.5)
        state = self.sh("systemctl is-system-running; systemctl --failed --no-pager",
                        check=False).stdout if self.pid else "(no PID 1)"
        self.stop()
        raise RuntimeError("the container did not finish booting in %d s: %s" % (timeout, state))

    @staticmethod
    def _children(pid):
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def sh(self, command, check=True, timeout=300, input=None, apt=False):
        """/bin/sh -c command inside the booted container, as root (apt: holding
        apt_lock())."""
        with apt_lock() if apt else contextlib.nullcontext():
            p = self._sh(command, timeout, input)
        if check and p.returncode != 0:
            raise AssertionError("in the container: %s: exit %d\n%s%s" % (
                command, p.returncode, p.stdout, p.stderr))
        return p

    def _sh(self, command, timeout, input):
        return subprocess.run(["nsenter", "-t", str(self.pid), "-a", "/usr/bin/env", "-i",
                            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                            "LANG=C.UTF-8", "/bin/sh", "-c", command],
                           capture_output=True, text=input is None or isinstance(input, str),
                           timeout=timeout, input=input)

    def stop(self):
        if self.proc.poll() is None:
            if self.pid:
                self.sh("systemctl poweroff", check=False, timeout=30)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
