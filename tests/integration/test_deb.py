# SPDX-License-Identifier: Apache-2.0
"""test_deb - `make deb`: the Debian package builds, is lintian clean and complete, and
its maintainer scripts do what debian/ says, without installing it on this machine.

`make deb` runs once for the whole file (about half a minute: a release build in a
clean copy under build/deb/). Then:

- lintian, run here on the .deb, reports no error and no warning;
- `dpkg-deb -c` lists the six programs in /usr/bin, every unit of timers/ in
  /lib/systemd/system (pointing at /usr/bin), the man pages, the kit file and
  crontab examples, and nothing outside /etc, /lib/systemd and /usr;
- `dpkg-deb -I` shows a Depends with the runtime libraries (libcurl, libpq, dcmtk,
  ...) that dpkg-shlibdeps found, and adduser for the postinst;
- the working tree is left as it was (no debian/files, no debhelper leftovers);
- debian/control's Build-Depends are all in packages.list (the node's build and run
  list) and the package tools in packages-test.list (what make deb adds);
- the maintainer scripts run in a private mount namespace (unshare), where /etc
  and /usr/bin are overlays and /var/spool, /var/lib, /var/log and /run are empty
  tmpfs, so nothing reaches the real system: a first configure creates the user
  flip and the directories with flipctl init's owner and modes and prints what to
  do; a second configure (an upgrade) changes nothing; remove and purge remove the
  spool and state and keep the audit trail. dpkg -i is never run here (this is the
  CI machine).
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from nodeenv import ROOT

with open(os.path.join(ROOT, "VERSION"), encoding="utf-8") as _f:
    VERSION = _f.read().strip()
ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                      text=True).stdout.strip()
DEB = os.path.join(ROOT, "build", "deb", "flip-node_%s_%s.deb" % (VERSION, ARCH))
PROGRAMS = sorted(p for p in os.listdir(os.path.join(ROOT, "bin"))
                  if os.path.isfile(os.path.join(ROOT, "bin", p, "main.c")))
UNITS = sorted(f for f in os.listdir(os.path.join(ROOT, "timers"))
               if re.search(r"\.(service|timer|path|socket)$", f))
PAGES = sorted(f for f in os.listdir(os.path.join(ROOT, "docs", "man"))
               if re.search(r"\.[78]$", f))


def run(*cmd, **kw):
    return subprocess.run(list(cmd), capture_output=True, text=True, **kw)


MAKE_DEB = None


def setUpModule():
    """`make deb`, once for every test here (a fresh build/deb/ each time)."""
    global MAKE_DEB
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    MAKE_DEB = run("make", "--no-print-directory", "-C", ROOT, "deb", env=env, timeout=900)


def assert_built(test):
    test.assertEqual(MAKE_DEB.returncode, 0,
                     "make deb failed:\n" + (MAKE_DEB.stdout + MAKE_DEB.stderr)[-4000:])
    test.assertTrue(os.path.isfile(DEB), DEB + " was not built")


class DebPackage(unittest.TestCase):
    def setUp(self):
        assert_built(self)

    def test_lintian_clean(self):
        p = run("lintian", DEB, timeout=300)
        found = [line for line in p.stdout.splitlines() if re.match(r"[EW]: ", line)]
        self.assertEqual(found, [], p.stdout)
        self.assertNotEqual(p.returncode, 2, p.stderr)  # 2: lintian itself failed
        # make deb ran it too, on the .changes, and kept what it said
        with open(os.path.join(ROOT, "build", "deb", "lintian.log"), encoding="utf-8") as f:
            self.assertEqual([l for l in f if re.match(r"[EW]: ", l)], [])

    def contents(self):
        p = run("dpkg-deb", "-c", DEB)
        self.assertEqual(p.returncode, 0, p.stderr)
        files = {}
        for line in p.stdout.splitlines():
            mode, owner, _size, _date, _time, path = line.split(None, 5)
            files[path[1:].split(" -> ")[0]] = (mode, owner)
        return files

    def test_contents(self):
        files = self.contents()
        for prog in PROGRAMS:
            self.assertEqual(files.get("/usr/bin/" + prog), ("-rwxr-xr-x", "root/root"), prog)
        for unit in UNITS:
            self.assertIn("/lib/systemd/system/" + unit, files)
        for page in PAGES:
            self.assertIn("/usr/share/man/man%s/%s.gz" % (page[-1], page), files)
        self.assertEqual(files.get("/etc/flip/flip.env.example"), ("-rw-------", "root/root"))
        self.assertIn("/etc/flip/flip.cron.example", files)
        self.assertIn("/usr/share/doc/flip-node/copyright", files)
        self.assertIn("/usr/share/doc/flip-node/deploy-on-prem.md.gz", files)
        self.assertIn("/usr/share/doc/flip-node/design/ARCHITECTURE.md.gz", files)
        # the monitoring files as promtool and Grafana take them (docs/operations.md)
        for f in ("flip-node.rules.yml", "flip-node.dashboard.json"):
            self.assertIn("/usr/share/doc/flip-node/monitoring/" + f, files)
        outside = [f for f in files if f != "/" and not re.match(r"/(etc|lib|usr)(/|$)", f)]
        self.assertEqual(outside, [], "the directories under /var are the postinst's")
        self.assertEqual([f for f in files if f.startswith("/usr/local")], [])

    def test_units_run_the_packaged_programs(self):
        tmp = tempfile.mkdtemp(prefix="flip-deb-")
        self.addCleanup(shutil.rmtree, tmp)
        self.assertEqual(run("dpkg-deb", "-x", DEB, tmp).returncode, 0)
        for unit in UNITS:
            with open(os.path.join(tmp, "lib", "systemd", "system", unit), encoding="utf-8") as f:
                text = f.read()
            settings = "".join(l for l in text.splitlines(True) if not l.startswith("#"))
            self.assertNotIn("/usr/local/bin", settings, unit)
            for exe in re.findall(r"(?m)^ExecStart=-?(/usr/bin/\S+)", text):
                self.assertTrue(os.path.isfile(tmp + exe), "%s runs %s" % (unit, exe))
        with open(os.path.join(tmp, "etc", "flip", "flip.cron.example"), encoding="utf-8") as f:
            self.assertIn("/usr/bin", f.read())

    def test_control(self):
        p = run("dpkg-deb", "-f", DEB, "Package", "Version", "Architecture", "Depends")
        self.assertEqual(p.returncode, 0, p.stderr)
        fields = dict(l.split(": ", 1) for l in p.stdout.splitlines())
        self.assertEqual(fields["Package"], "flip-node")
        self.assertEqual(fields["Version"], VERSION)
        self.assertEqual(fields["Architecture"], ARCH)
        depends = [d.strip().split()[0] for d in fields["Depends"].split(",")]
        for lib in (r"libcurl4", r"libpq5", r"libdcmtk\d+", r"libjansson4", r"libssl3",
                    r"libarchive13", r"libmicrohttpd12", r"libpg-query[\d.]+",
                    r"libprotobuf-c1", r"libstdc\+\+6", r"libc6", r"adduser"):
            self.assertTrue(any(re.fullmatch(lib, d) for d in depends),
                            "Depends has no %s: %s" % (lib, fields["Depends"]))
        p = run("dpkg-deb", "-I", DEB, "conffiles")
        self.assertEqual(sorted(p.stdout.split()),
                         ["/etc/flip/flip.cron.example", "/etc/flip/flip.env.example"])

    def test_working_tree_untouched(self):
        debian = os.path.join(ROOT, "debian")
        left = [f for f in ("files", "flip-node", ".debhelper", "debhelper-build-stamp",
                            "flip-node.substvars", "tmp") if os.path.lexists(os.path.join(debian, f))]
        self.assertEqual(left, [])
        parent = os.path.dirname(ROOT)
        self.assertEqual([f for f in os.listdir(parent) if f.startswith("flip-node_")], [])


class DebSources(unittest.TestCase):
    def test_build_depends_are_in_packages_list(self):
        def read(name):
            with open(os.path.join(ROOT, name), encoding="utf-8") as f:
                return {l.split("#")[0].strip() for l in f} - {""}
        listed, test_listed = read("packages.list"), read("packages-test.list")
        with open(os.path.join(ROOT, "debian", "control"), encoding="utf-8") as f:
            control = f.read()
        m = re.search(r"(?ms)^Build-Depends:(.*?)^\S", control)
        wanted = [d.strip().split()[0] for d in m.group(1).split(",") if d.strip()]
        missing = [d for d in wanted if d != "debhelper-compat" and d not in listed]
        self.assertEqual(missing, [])
        for tool in ("debhelper", "lintian", "dpkg-dev"):
            self.assertIn(tool, test_listed)
            self.assertNotIn(tool, listed)

    def test_the_node_list_holds_no_test_tool_or_service(self):
        # a trust's host gets packages.list only: nothing that listens or tests
        def read(name):
            with open(os.path.join(ROOT, name), encoding="utf-8") as f:
                return {l.split("#")[0].strip() for l in f} - {""}
        node, test = read("packages.list"), read("packages-test.list")
        self.assertEqual(node & test, set())
        for p in ("orthanc", "dcmtk", "postgresql", "openssh-server", "sudo", "lintian",
                  "clang", "valgrind", "hyperfine", "debootstrap", "python3"):
            self.assertNotIn(p, node)

    def test_changelog_is_at_this_version(self):
        p = run("dpkg-parsechangelog", "-l", os.path.join(ROOT, "debian", "changelog"),
                "-S", "Version")
        self.assertEqual(p.stdout.strip(), VERSION)


# The maintainer scripts in a private mount namespace: /etc and /usr/bin are
# overlays (writes go to $T), /var/spool, /var/lib, /var/log and /run are empty
# tmpfs (no /run/systemd/system: nothing is asked of systemd). Each step prints
# "== step" and the state: the flip user and the directories with mode and owner.
SCENARIO = r"""
set -e
mkdir -p $T/etc.up $T/etc.work $T/bin.up $T/bin.work $T/unit.up $T/unit.work
cp -p $T/root/usr/bin/* $T/bin.up/
cp -p $T/root/lib/systemd/system/* $T/unit.up/
mount -t overlay overlay -o lowerdir=/etc,upperdir=$T/etc.up,workdir=$T/etc.work /etc
mount -t overlay overlay -o lowerdir=/usr/bin,upperdir=$T/bin.up,workdir=$T/bin.work /usr/bin
mount -t overlay overlay \
    -o lowerdir=/lib/systemd/system,upperdir=$T/unit.up,workdir=$T/unit.work /lib/systemd/system
for d in /var/spool /var/lib /var/log /run /opt; do mount -t tmpfs -o mode=0755 tmpfs $d; done
mkdir -p /etc/flip && cp -p $T/root/etc/flip/* /etc/flip/
state() {
    echo "== $1"
    getent passwd flip | cut -d: -f1,6,7 | sed 's/^/user /'
    getent passwd flip-fl | cut -d: -f1,7 | sed 's/^/fluser /'
    id -nG flip 2>/dev/null | sed 's/^/groups /'
    for p in /var/spool/flip /var/spool/flip/tmp /var/spool/flip/new /var/spool/flip/cur \
             /var/spool/flip/out /var/spool/flip/done /var/spool/flip/failed \
             /var/spool/flip/hold /var/lib/flip /var/lib/flip/deid.key /var/log/flip \
             /var/lib/flip/metrics \
             /opt/flip/data/images /opt/flip/data/images/net-1 \
             /opt/flip/data/images/net-1/upload /opt/flip/fl-kit; do
        [ -e $p ] && stat -c 'path %n %a %U %G %s' $p
    done
    [ -e /var/lib/flip/deid.key ] && sha256sum /var/lib/flip/deid.key | sed 's/^/key /'
    find /etc/systemd/system -name 'flip*' | sed 's/^/enabled /'
    [ -d /var/lib/systemd/deb-systemd-helper-enabled ] && echo tracked
    true
}
# as dpkg runs them (deb-systemd-helper refuses to run otherwise)
script() {
    DPKG_MAINTSCRIPT_PACKAGE=flip-node DPKG_MAINTSCRIPT_NAME=$1 sh $T/ctl/"$@"
}
script postinst configure
state installed
chmod 0750 /var/lib/flip          # as an operator's ACL set-up would change it
echo audit > /var/log/flip/audit.log
script postinst configure 0.0.9
state upgraded
script prerm remove
script postrm remove
state removed
script postrm purge
state purged
"""


class DebMaintainerScripts(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root for a private mount namespace")
        assert_built(self)
        p = run("unshare", "--mount", "--propagation", "private", "true")
        if p.returncode != 0:
            self.skipTest("no mount namespace here: " + p.stderr.strip())

    def states(self, out):
        states, cur = {}, None
        for line in out.splitlines():
            if line.startswith("== "):
                cur = states.setdefault(line[3:], {"paths": {}})
            elif cur is not None and line.startswith("user "):
                cur["user"] = line[5:]
            elif cur is not None and line.startswith("fluser "):
                cur["fluser"] = line[7:]
            elif cur is not None and line.startswith("groups "):
                cur["groups"] = line[7:].split()
            elif cur is not None and line.startswith("path "):
                _, path, mode, user, group, size = line.split()
                cur["paths"][path] = (mode, user, group, int(size))
            elif cur is not None and line.startswith("key "):
                cur["key"] = line.split()[1]
            elif cur is not None and line.startswith("enabled "):
                cur.setdefault("enabled", []).append(line[8:])
            elif cur is not None and line == "tracked":
                cur["tracked"] = True
        return states

    def test_install_upgrade_remove_purge(self):
        host_passwd = run("getent", "passwd", "flip").stdout
        tmp = tempfile.mkdtemp(prefix="flip-deb-ns-")
        self.addCleanup(shutil.rmtree, tmp)
        for how, where in (("-x", "root"), ("-e", "ctl")):
            self.assertEqual(run("dpkg-deb", how, DEB, os.path.join(tmp, where)).returncode, 0)
        host_images = os.path.exists("/opt/flip/data/images")
        p = run("unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", SCENARIO,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "T": tmp}, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(run("getent", "passwd", "flip").stdout, host_passwd,
                         "the host's user database changed")
        self.assertEqual(os.path.exists("/opt/flip/data/images"), host_images,
                         "the host's /opt changed")
        s = self.states(p.stdout)

        inst = s["installed"]
        self.assertEqual(inst.get("user"), "flip:/var/lib/flip:/usr/sbin/nologin")
        # the state directory: passage for flip-metrics, which reads metrics/ only
        self.assertEqual(inst["paths"].get("/var/lib/flip", ())[:3], ("710", "flip", "flip-metrics"))
        self.assertEqual(inst["paths"].get("/var/lib/flip/metrics", ())[:3],
                         ("2750", "flip", "flip-metrics"))
        for d in ("/var/spool/flip", "/var/log/flip") + tuple(
                "/var/spool/flip/" + st for st in ("tmp", "new", "cur", "out", "done",
                                                   "failed", "hold")):
            self.assertEqual(inst["paths"].get(d, ())[:3], ("700", "flip", "flip"), d)
        self.assertEqual(inst["paths"]["/var/lib/flip/deid.key"], ("600", "flip", "flip", 32))
        # the FL client's image folder: the node user's (flip-fl check wants it so), in
        # the group of the client's own user, flip-fl, which reads the copies there
        for d in ("/opt/flip/data/images", "/opt/flip/data/images/net-1"):
            self.assertEqual(inst["paths"].get(d, ())[:3], ("750", "flip", "flip-fl"), d)
        # where training code writes what it uploads
        self.assertEqual(inst["paths"].get("/opt/flip/data/images/net-1/upload", ())[:3],
                         ("2770", "flip", "flip-fl"))
        # the FL client's own user, and flip in its group (to hand it files)
        self.assertEqual(inst.get("fluser"), "flip-fl:/usr/sbin/nologin")
        self.assertIn("flip-fl", inst.get("groups", []))
        # FL_KIT_DIR: the node's user's, so that it can install the FL kit there
        self.assertEqual(inst["paths"].get("/opt/flip/fl-kit", ())[:3], ("750", "flip", "flip"))
        self.assertIn("nothing is enabled yet", p.stdout)
        self.assertEqual(inst.get("enabled"), None, "a unit was enabled at installation")
        self.assertTrue(inst.get("tracked"), "deb-systemd-helper did not record the units")
        self.assertIn("flipctl doctor", p.stdout)

        up = s["upgraded"]
        self.assertEqual(up["paths"]["/var/lib/flip"][0], "750", "an upgrade re-ran init")
        self.assertEqual(up["key"], inst["key"], "an upgrade replaced the de-identification key")

        self.assertIn("/var/spool/flip", s["removed"]["paths"], "remove is not purge")
        purged = s["purged"]["paths"]
        self.assertNotIn("/var/spool/flip", purged)
        self.assertNotIn("/var/lib/flip", purged)
        self.assertNotIn("/opt/flip/data/images", purged, "image copies outlive a purge")
        self.assertIn("/var/log/flip", purged, "the audit trail outlives a purge")
        # FL_KIT_DIR, made by flipctl init, outlives a purge like any FL kit in it
        self.assertIn("/opt/flip/fl-kit", purged)
        self.assertIn("kept the audit trail /var/log/flip, the FL kit /opt/flip/fl-kit, "
                      "the user flip", p.stderr)
        self.assertNotIn("deb-systemd-helper", p.stderr)


if __name__ == "__main__":
    unittest.main()
