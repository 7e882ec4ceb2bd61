# SPDX-License-Identifier: Apache-2.0
"""test_systemd - the .deb under a real systemd: Debian 12 booted in systemd-nspawn,
docs/deploy-on-prem.md followed as written, a round trip through every unit.

The fresh root filesystem (freshroot.py, cached) is copied and booted with its own
systemd 252 as PID 1 (systemd-nspawn -b). The test first fetches the package's
dependencies into the apt cache (the only step with this machine's network), then
moves itself into a network namespace of its own with loopback alone, where it
starts the hub emulator, a PostgreSQL with the OMOP fixture and an Orthanc with the
DICOM fixture; the container shares that namespace, so everything talks over
127.0.0.1 and nothing else can reach or be reached. Then, inside the container:

1. `apt install ./flip-node_<version>_<arch>.deb` (`make deb` builds it when the
   tree is newer than the one in build/deb/);
3. the kit file as root:flip 0640; 4. `flipctl init`; 5. `flipctl doctor` as flip
   (exit 0, a `disk` line); 6. `systemctl enable --now` of every timer, path unit and
   the socket; 7. the journal of flip-poll.service says "authenticated to hub";
- tasks of every type, queued on the hub, come back with their results (cohort
  statistics, a frozen cohort, an imaging project retrieved from Orthanc by
  flip-exec-imaging, its status...), through the path units and timers alone;
- flip-poll.timer starts a heartbeat every 5 s (not 6);
- flip-fl.timer without an FL kit is skipped, not failed; the kit installs as the
  node's user from standard input (root is refused), flip-fl-client@<slot> runs the
  stand-in client (tests/fl/fakeclient.sh) and flip-fl.service checks the kit;
- an image download and an upload through flip-serve.socket (127.0.0.1:8010): the
  copies group-readable, the upload taken, the sentinel gone;
- at the end `systemctl --failed` lists nothing and the journal holds no warning
  from any flip unit (no "left-over process", no exit 2 of an idle worker).

Skipped, saying why, where this machine cannot boot a container.
"""
import ctypes
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid

import freshroot
from nodeenv import ROOT

sys.path.insert(0, os.path.join(ROOT, "tests", "omop"))
sys.path.insert(0, os.path.join(ROOT, "tests", "pacs"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fl"))
from hubclient import Hub  # noqa: E402

with open(os.path.join(ROOT, "VERSION"), encoding="utf-8") as _f:
    VERSION = _f.read().strip()
DEB = os.path.join(ROOT, "build", "deb", "flip-node_%s_%s.deb" % (VERSION, freshroot.ARCH))
SLOT = "Trust_2"
KEY = "systemd-test-internal-key"
COHORT_SQL = ("SELECT p.person_id, p.gender_source_value, p.year_of_birth, io.accession_id "
              "FROM person p LEFT JOIN image_occurrence io USING (person_id)")
UNITS = ("flip-poll.timer flip-exec.path flip-exec.timer flip-report.path flip-report.timer "
         "flip-purge.timer flip-exec-imaging.timer flip-fl.timer flip-serve.socket")
CLONE_NEWNET = 0x40000000


def deb_is_current():
    if not os.path.exists(DEB):
        return False
    # what goes into the package: everything git knows but the tests
    p = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    newest = max((os.stat(os.path.join(ROOT, f)).st_mtime
                  for f in p.stdout.decode().split("\0")
                  if f and not f.startswith("tests/") and os.path.exists(os.path.join(ROOT, f))),
                 default=0)
    return os.stat(DEB).st_mtime >= newest


def private_loopback():
    """Move this process into a network namespace of its own, loopback up."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


class Systemd(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        why = freshroot.unavailable()
        if why is None and shutil.which("nsenter") is None:
            why = "nsenter is missing"
        if why:
            raise unittest.SkipTest("cannot boot a container here: " + why)
        cls.t0 = time.monotonic()
        cls.timings = []
        cls.tmp = tempfile.mkdtemp(prefix="flip-systemd-")
        cls.hub = cls.pg = cls.pacs = cls.box = None
        try:
            cls.setup()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def mark(cls, what):
        cls.timings.append("%s %.0f s" % (what, time.monotonic() - cls.t0))

    @classmethod
    def setup(cls):
        if not deb_is_current():
            env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
            p = subprocess.run(["make", "deb"], cwd=ROOT, capture_output=True, text=True, env=env,
                               timeout=900)
            if p.returncode != 0:
                raise AssertionError("make deb failed:\n" + (p.stdout + p.stderr)[-3000:])
        cls.mark("deb")
        cls.root = os.path.join(ROOT, "build", "fresh-host", "systemd")
        freshroot.copy(cls.root)
        cls.mark("rootfs")
        shutil.copy(DEB, os.path.join(cls.root, "root", os.path.basename(DEB)))
        shutil.copy(os.path.join(ROOT, "tests", "fl", "fakeclient.sh"),
                    os.path.join(cls.root, "usr", "local", "bin", "fakeclient"))
        os.chmod(os.path.join(cls.root, "usr", "local", "bin", "fakeclient"), 0o755)
        import makekit
        kit = makekit.make_kit(SLOT, "/usr/local/bin/fakeclient", [])
        makekit.write_tar(kit, os.path.join(cls.root, "root", "fl-kit.tar.gz"))
        # the package's dependencies into the apt cache: the one step with the network
        p = freshroot.run(cls.root, "apt-get update -qq && apt-get install -y -qq --download-only "
                          "/root/" + os.path.basename(DEB), timeout=900,
                          env={"DEBIAN_FRONTEND": "noninteractive"}, apt=True)
        if p.returncode != 0:
            raise AssertionError("cannot fetch the package's dependencies:\n" + p.stdout + p.stderr)
        cls.mark("apt download")
        private_loopback()
        from pg import Postgres
        from orthanc import Orthanc, load_fixture
        cls.pg = Postgres(os.path.join(cls.tmp, "pg"))
        cls.pg.start()
        cls.pg.setup_omop(fixture_sql_path=os.path.join(ROOT, "tests", "omop", "fixture.sql"))
        cls.pacs = Orthanc(os.path.join(cls.tmp, "orthanc"))
        cls.pacs.start()
        cls.studies = load_fixture(cls.pacs, os.path.join(cls.tmp, "orthanc"))
        cls.hub = Hub()
        cls.hub.start(os.path.join(cls.tmp, "hub"), trust_name="Trust_Systemd")
        cls.mark("services")
        kit_lines = dict(cls.hub.env(), EXPECTED_TRUST_ID=cls.hub.trust_id,
                         TRUST_INTERNAL_SERVICE_KEY=KEY, FL_KIT_SLOT=SLOT, FLIP_LOG_LEVEL="info")
        kit_lines.update(cls.pg.env())
        kit_lines.update(cls.pacs.env())
        with open(os.path.join(cls.root, "root", "your-kit.env"), "w") as f:
            for k, v in kit_lines.items():
                f.write("%s=%s\n" % (k, v))
        cls.box = freshroot.Booted(cls.root, "flipnode%d" % os.getpid(),
                                   os.path.join(cls.tmp, "console.log"))
        cls.mark("boot")

    @classmethod
    def tearDownClass(cls):
        if cls.box:
            cls.box.stop()
        for s in (cls.hub, cls.pacs, cls.pg):
            if s:
                try:
                    s.stop()
                except Exception:  # noqa: BLE001 - best effort at tear-down
                    pass
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if getattr(cls, "root", None):
            freshroot.remove(cls.root)
        print("timings: " + ", ".join(cls.timings), file=sys.stderr)

    # -- helpers --------------------------------------------------------------------

    def sh(self, command, **kw):
        return self.box.sh(command, **kw)

    def wait(self, what, cond, timeout=120, step=1.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(step)
        self.fail("waited %d s for %s" % (timeout, what))

    def done(self, tid):
        t = self.hub.task(tid)
        return t if t["results"] else None

    def serve(self, method, path, body):
        req = urllib.request.Request("http://127.0.0.1:8010" + path, method=method,
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "X-Trust-Internal-Service-Key": KEY})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    # -- the procedure, in order -----------------------------------------------------

    def test_deploy_on_prem_under_systemd(self):
        box, hub = self.box, self.hub
        self.assertIn("systemd 252", self.sh("systemctl --version").stdout)
        # 1. install the package (its dependencies come from the apt cache)
        self.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /root/%s"
                % os.path.basename(DEB), apt=True)
        self.mark("installed")
        # 3. the kit file
        self.sh("install -o root -g flip -m 0640 /root/your-kit.env /etc/flip/flip.env")
        # 4. the directories (again: the package ran it once)
        self.sh("flipctl init")
        # 5. doctor, as flip
        p = self.sh("runuser -u flip -- flipctl doctor", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"(?m)^ok\s+disk\s+/var/spool/flip: \d+% free")
        self.assertRegex(p.stdout, r"(?m)^--\s+fl-kit")
        # 6. start the node: every timer, path unit and the socket
        self.sh("systemctl daemon-reload && systemctl enable --now " + UNITS)
        # 7. verify: the journal line the procedure names
        self.wait("flip-poll's 'authenticated' line", lambda: "authenticated to hub as trust "
                  "Trust_Systemd" in self.sh("journalctl -u flip-poll.service -o cat").stdout, 60)
        self.mark("started")

        # flip-fl.timer with no FL kit: skipped, never failed
        self.wait("a flip-fl run", lambda: self.sh(
            "systemctl show -P ConditionTimestampMonotonic flip-fl.service").stdout.strip() not in ("", "0"), 60)
        self.assertEqual(self.sh("systemctl show -P ConditionResult flip-fl.service").stdout.strip(), "no")

        # a round trip of every task type, through the path units and timers alone
        tid = hub.trust_id
        project = str(uuid.uuid4())
        sealed = hub.seal(project, "project_id")
        query_id = str(uuid.uuid4())
        cohort = hub.add_task("cohort_query", {
            "query_name": "everyone", "query": COHORT_SQL, "encrypted_project_id": sealed,
            "query_id": query_id, "trust_id": tid})
        persist = hub.add_task("persist_cohort", {
            "project_id": project, "trust_id": tid, "encrypted_project_id": sealed,
            "query": COHORT_SQL, "query_id": query_id})
        create = hub.add_task("create_imaging", {
            "project_id": project, "trust_id": tid, "project_name": "Systemd study",
            "query": None, "dicom_to_nifti": False,
            "users": [{"id": str(uuid.uuid4()), "email": "r@example.org", "name": "R",
                       "organisation": None, "is_disabled": False}]})
        profile = hub.add_task("update_user_profile", {"email": "r@example.org", "enabled": True})
        for t in (cohort, persist, create, profile):
            self.wait("task %s" % t, lambda t=t: self.done(t), 120)
        for t in (cohort, persist, create):
            self.assertTrue(self.hub.task(t)["results"][-1]["success"], self.hub.task(t))
        self.mark("cohort tasks")
        imaging_id = json.loads(self.hub.task(create)["results"][-1]["result"])["ID"]
        # flip-exec-imaging.timer retrieves from Orthanc within its 30 s
        query = "U0VMRUNUIDE"
        def retrieved():
            log = self.sh("journalctl -u flip-exec-imaging.service -o cat").stdout
            return re.search(r"worked on: [1-9]\d* successful", log)
        self.wait("the imaging retrieval", retrieved, 150)
        status = hub.add_task("get_imaging_status", {"imaging_project_id": imaging_id,
                                                     "encoded_query": query})
        self.wait("get_imaging_status", lambda: self.done(status), 60)
        self.assertTrue(self.hub.task(status)["results"][-1]["success"], self.hub.task(status))
        self.mark("imaging")

        # flip-poll every 5 s: the hub's record of heartbeats
        beats = [b["ts"] for b in hub.heartbeats()][-8:]
        gaps = [b - a for a, b in zip(beats, beats[1:])]
        self.assertLess(statistics.median(gaps), 5.5, gaps)
        self.assertGreater(statistics.median(gaps), 4.5, gaps)

        # the FL kit: root is refused, the node's user installs it from stdin
        p = self.sh("flip-fl install-kit /root/fl-kit.tar.gz", check=False)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("sudo -u flip flip-fl install-kit - <", p.stderr)
        self.sh("runuser -u flip -- flip-fl install-kit - < /root/fl-kit.tar.gz")
        self.sh("systemctl enable --now flip-fl-client@%s.service" % SLOT)
        # the client's output goes to its log (StandardOutput=append:), as the client's user
        self.wait("the stand-in FL client", lambda: "Round 0 started" in self.sh(
            "cat /var/log/flip/fl-client.log", check=False).stdout, 60)
        # and it runs as its own user, not as flip
        self.assertEqual(self.sh("stat -c %%U /proc/$(systemctl show -P MainPID "
                                 "flip-fl-client@%s.service)" % SLOT).stdout.strip(), "flip-fl")
        self.sh("systemctl start flip-fl.service")
        self.assertEqual(self.sh("systemctl show -P Result flip-fl.service").stdout.strip(), "success")
        self.assertEqual(self.sh("systemctl is-active flip-fl-client@%s.service" % SLOT).stdout.strip(),
                         "active")
        self.mark("fl")

        # image download and upload through flip-serve.socket
        acc = next(a for a, n in sorted(self.studies.items()) if n > 1)
        body = {"encrypted_central_hub_project_id": sealed, "accession_id": acc}
        code, got = self.serve("POST", "/download/images/net-1?assessor_type=scan&resource_type=DICOM",
                               body)
        self.assertEqual(code, 200, "%s\n%s" % (got, self.sh(
            "journalctl -u flip-exec-imaging.service -u 'flip-serve@*' -o cat").stdout))
        where = self.root + got["path"]
        files = glob.glob(os.path.join(where, "scans", "*", "resources", "DICOM", "files", "*"))
        self.assertEqual(len(files), self.studies[acc])
        for f in files + [os.path.dirname(f) for f in files]:
            mode = os.stat(f).st_mode & 0o777
            self.assertTrue(mode & 0o040, "%s is %o: the client's group cannot read it" % (f, mode))
            self.assertFalse(mode & 0o007, "%s is %o" % (f, mode))
        self.assertEqual(self.serve("POST", "/download/images/net-1?resource_type=DICOM", body)[0], 200)
        up = os.path.join(self.root, "opt", "flip", "data", "images", "net-1", "upload", "run1")
        os.makedirs(up, exist_ok=True)
        with open(os.path.join(up, "seg.nii.gz"), "wb") as f:
            f.write(b"\x1f\x8b not really a nifti")
        self.sh("chown -R flip:flip /opt/flip/data/images/net-1/upload")
        ubody = dict(body, scan_id="9001", resource_id="SEG", files=["run1/seg.nii.gz"], exist_ok=False)
        code, got = self.serve("PUT", "/upload/images/net-1", ubody)
        self.assertEqual(code, 200, got)
        self.assertEqual(glob.glob(os.path.join(where, ".flip_complete-*")), [])
        self.mark("serve")

        # the rest of the task types, then let the timers run a full 30 s round
        rest = [hub.add_task("reimport_studies", {"imaging_project_id": imaging_id,
                                                  "encoded_query": query}),
                hub.add_task("delete_imaging", {"imaging_project_id": imaging_id})]
        for t in rest:
            self.wait("task %s" % t, lambda t=t: self.done(t), 90)
        time.sleep(35)
        self.mark("idle round")

        types = {t["task_type"] for t in hub.tasks() if t["results"]}
        self.assertEqual(types, {"cohort_query", "persist_cohort", "create_imaging",
                                 "update_user_profile", "get_imaging_status",
                                 "reimport_studies", "delete_imaging"})
        self.assertEqual(self.sh("systemctl --failed --plain --no-legend").stdout.strip(), "")
        p = self.sh("journalctl -p warning -u 'flip-*' -o short-monotonic --no-pager")
        lines = [l for l in p.stdout.splitlines() if l.strip() and not l.startswith("-- ")]
        self.assertEqual(lines, [], "warnings in the journal of the flip units")
        self.assertEqual(self.sh("runuser -u flip -- flipctl audit verify", check=False).returncode, 0)


if __name__ == "__main__":
    unittest.main()
