# SPDX-License-Identifier: Apache-2.0
"""test_first_build - `make` on a fresh Debian 12 machine works the first time, and
installs only what the node needs.

The clone (the files git knows, as in the working tree) is copied into a fresh
Debian 12 root filesystem (tests/integration/freshroot.py: debootstrap minbase,
cached), where nothing but make is installed, and `make` runs there once, as root,
with the network of this machine for apt. It must:

- install packages.list and build every program (the old Makefile computed the
  compiler flags with pkg-config when it was read, before `deps` had installed the
  headers, and failed with "libpq-fe.h: No such file or directory");
- install nothing from packages-test.list: no PostgreSQL, Orthanc, dcmtk tools,
  sshd, sudo, lintian, clang, valgrind or hyperfine on a trust's host.

Skipped, saying why, where this machine cannot run debootstrap or systemd-nspawn.
"""
import os
import subprocess
import time
import unittest

import freshroot
from nodeenv import ROOT


def tree_files():
    """The files git knows in the working tree (tracked and new, not ignored)."""
    p = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       cwd=ROOT, capture_output=True, check=True)
    return [f for f in p.stdout.decode().split("\0") if f and os.path.lexists(os.path.join(ROOT, f))]


def copy_tree(dest):
    """The clone's files into dest, as `make deb` copies them."""
    os.makedirs(dest, exist_ok=True)
    files = "\0".join(tree_files()).encode() + b"\0"
    tar = subprocess.Popen(["tar", "--null", "-T", "-", "-cf", "-"], cwd=ROOT,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    untar = subprocess.Popen(["tar", "-xf", "-", "-C", dest], stdin=tar.stdout)
    tar.stdout.close()
    tar.communicate(files)
    if untar.wait() != 0 or tar.returncode != 0:
        raise RuntimeError("cannot copy the tree into " + dest)


# from packages-test.list: what must never come with `make` (services that listen
# once installed, and test tools); dpkg-dev and openssl are in it too, but
# build-essential and the base system bring those anyway
UNWANTED = ("orthanc", "dcmtk", "postgresql", "openssh-server", "sudo", "lintian", "clang",
            "valgrind", "hyperfine", "strace", "python3", "libcmocka-dev", "debhelper",
            "curl", "debootstrap", "systemd-container", "mandoc")


def listed(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return [l.split("#")[0].strip() for l in f if l.split("#")[0].strip()]


class FirstBuild(unittest.TestCase):

    def setUp(self):
        why = freshroot.unavailable()
        if why:
            self.skipTest("no fresh Debian 12 root here: " + why)
        self.root = os.path.join(ROOT, "build", "fresh-host", "first-build")
        self.addCleanup(freshroot.remove, self.root)

    def test_make_works_the_first_time_and_installs_only_the_node_list(self):
        t0 = time.monotonic()
        freshroot.copy(self.root)
        copy_tree(os.path.join(self.root, "src", "flip-node"))
        # nothing of the build is there yet: the machine is as fresh as a new host
        p = freshroot.run(self.root, "dpkg-query -W -f='${Status}\\n' libpq-dev pkg-config "
                          "2>/dev/null | grep -c 'install ok installed' || true")
        self.assertEqual(p.stdout.strip(), "0", p.stdout + p.stderr)
        p = freshroot.run(self.root, "cd /src/flip-node && make -j2 2>&1", timeout=1500,
                          env={"DEBIAN_FRONTEND": "noninteractive"}, apt=True)
        self.assertEqual(p.returncode, 0, "make failed on a fresh host:\n" + p.stdout[-4000:])
        programs = sorted(p for p in os.listdir(os.path.join(ROOT, "bin"))
                  if os.path.isfile(os.path.join(ROOT, "bin", p, "main.c")))
        built = os.path.join(self.root, "src", "flip-node", "build", "bin")
        self.assertEqual(sorted(os.listdir(built)), programs)
        p = freshroot.run(self.root, "%s/flip-poll --version" % "/src/flip-node/build/bin")
        self.assertEqual(p.returncode, 0, p.stderr)
        # the node's list is in, the tests' list is not
        q = "dpkg-query -W -f='${Package} ${Status}\\n' %s 2>/dev/null | grep 'install ok installed' || true"
        p = freshroot.run(self.root, q % " ".join(listed("packages.list")))
        self.assertEqual(sorted(l.split()[0] for l in p.stdout.splitlines() if l.strip()),
                         sorted(listed("packages.list")))
        p = freshroot.run(self.root, q % " ".join(UNWANTED))
        self.assertEqual(p.stdout.strip(), "", "make installed test tools on a trust's host")
        for unwanted in ("/usr/sbin/sshd", "/usr/sbin/Orthanc", "/usr/bin/sudo"):
            self.assertFalse(os.path.exists(self.root + unwanted), unwanted)
        # a second make does nothing more (no package, no rebuild)
        p = freshroot.run(self.root, "cd /src/flip-node && make 2>&1")
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertNotIn("installing Debian packages", p.stdout)
        self.assertNotIn("cc ", p.stdout)
        print("first build on a fresh Debian 12 in %.0f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    unittest.main()
