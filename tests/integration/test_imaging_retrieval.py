# SPDX-License-Identifier: Apache-2.0
"""test_imaging_retrieval - imaging projects retrieved end to end from a real Orthanc.

A throwaway Orthanc (tests/pacs/orthanc.py) holds real DICOM sample files relabelled
with the OMOP fixture's accession numbers; a throwaway PostgreSQL holds the fixture.
The hub sends persist_cohort and create_imaging; flip-exec imaging retrieves every
study by C-FIND + C-GET, de-identifies every instance and stores it in the XNAT-shaped
layout. Every stored file is then read back with pydicom and checked. The same
retrieval with PACS_RETRIEVE=move: C-MOVE to the node's receiver on FLIP_DICOM_PORT,
the port the Orthanc harness registered for the node (C-MOVE is allowed for it through
Orthanc's REST API in that test only: the configuration file stays the harness's).
"""
import glob
import json
import socket
import time
import urllib.error
import urllib.request
import os
import subprocess
import sys
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "omop"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pacs"))

import payloads  # noqa: E402
from fixture_expected import ACCESSIONS  # noqa: E402
from imagingenv import ACC_SQL, PacsNodeCase  # noqa: E402
from users import TwoUsers, open_traversal  # noqa: E402

try:
    import pydicom  # Debian's python3-pydicom
except ImportError:  # pragma: no cover - packages.list installs it
    pydicom = None

REMOVED = ["PatientBirthDate", "PatientAddress", "InstitutionName", "ReferringPhysicianName",
           "OperatorsName", "AccessionNumber", "OtherPatientIDs", "PatientTelephoneNumbers",
           "PerformingPhysicianName", "InstitutionAddress"]


@unittest.skipIf(pydicom is None, "python3-pydicom is not installed")
class TestRetrieval(PacsNodeCase):
    PROJECT_NAME = "Retrieval"

    def test_every_study_retrieved_and_deidentified(self):
        imaging_id = self.create_project()
        p = self.node.run("flip-exec", "imaging", timeout=600)
        self.assertRun(p)
        self.check_retrieved(imaging_id)

    def socket_options(self, *args):
        """flip-exec imaging under strace: its setsockopt calls, counted by option"""
        trace = os.path.join(self.node.root, "setsockopt.trace")
        # LeakSanitizer cannot run under ptrace: off for this run of a SAN=1 build
        env = {"ASAN_OPTIONS": "detect_leaks=0"} if os.environ.get("FLIP_SAN") == "1" else None
        p = self.node.run("flip-exec", "imaging", *args, timeout=600, env=env,
                          wrap=["strace", "-f", "-qq", "-e", "trace=setsockopt", "-o", trace])
        self.assertRun(p)
        with open(trace) as f:
            calls = f.read()
        return {o: calls.count(o) for o in ("TCP_NODELAY, [1]", "TCP_QUICKACK, [1]")}

    def test_dicom_connections_are_tuned_for_small_messages(self):
        """Nagle's algorithm off and quick ACKs on every DICOM connection: each of the
        C-FIND and C-GET associations of every study (on loopback with Orthanc the
        delayed ACKs were 97% of a retrieval's time)"""
        self.create_project()
        n = self.socket_options()
        self.assertGreaterEqual(n["TCP_NODELAY, [1]"], 2 * len(self.expected), n)
        self.assertGreater(n["TCP_QUICKACK, [1]"], n["TCP_NODELAY, [1]"], n)

    def allow_cmove(self):
        self.pacs.rest("PUT", "/modalities/flipnode", json.dumps({
            "AET": self.pacs.node_aet, "Host": "127.0.0.1", "Port": self.pacs.node_port,
            "AllowEcho": True, "AllowFind": True, "AllowGet": True, "AllowMove": True,
            "AllowStore": False, "AllowStorageCommitment": False,
            "AllowFindWorklist": False}).encode(), "application/json")
        self.node.set_config(PACS_RETRIEVE="move", FLIP_DICOM_PORT=str(self.pacs.node_port))

    def test_every_study_retrieved_by_cmove(self):
        self.allow_cmove()
        imaging_id = self.create_project()
        # the receiver's connections (accepted from the PACS) are tuned too: three
        # connections a study (C-FIND, C-MOVE, the PACS's C-STORE association)
        n = self.socket_options()
        self.assertGreaterEqual(n["TCP_NODELAY, [1]"], 3 * len(self.expected), n)
        self.assertGreater(n["TCP_QUICKACK, [1]"], n["TCP_NODELAY, [1]"], n)
        self.check_retrieved(imaging_id)
        # the receiver lived only for the retrieval: the port is free again
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", self.pacs.node_port))

    def check_retrieved(self, imaging_id):
        """the checks of a complete retrieval: counts, layout, de-identification, logs"""
        st = self.status(imaging_id)
        found = len(self.expected)
        self.assertEqual(st, {"successful_count": found, "failed_count": 0, "processing_count": 0,
                              "queued_count": 0, "queue_failed_count": len(ACCESSIONS) - found})
        d = os.path.join(self.node.state, "imaging", imaging_id)
        states = {}
        for f in sorted(os.listdir(os.path.join(d, "accessions"))):
            with open(os.path.join(d, "accessions", f)) as fh:
                s = json.load(fh)
            states[s["accession"]] = s
        for acc, count in self.expected.items():
            with self.subTest(accession=acc):
                s = states[acc]
                self.assertEqual((s["state"], s["instances"]), ("successful", count))
                files = glob.glob(os.path.join(d, "data", s["subject"], acc, "scans", "*",
                                               "resources", "DICOM", "files", "*.dcm"))
                self.assertEqual(len(files), count)
                study_uids = set()
                for path in files:
                    ds = pydicom.dcmread(path)
                    self.assertEqual(str(ds.PatientName), s["subject"])
                    self.assertEqual(ds.PatientID, s["subject"])
                    self.assertEqual(ds.get("PatientIdentityRemoved"), "YES")
                    self.assertTrue(ds.get("DeidentificationMethod"))
                    for kw in REMOVED:
                        self.assertNotIn(kw, ds, "%s left in %s" % (kw, path))
                    for elem in ds.iterall():
                        self.assertFalse(elem.tag.is_private, "private tag %s" % elem.tag)
                    self.assertTrue(ds.StudyInstanceUID.startswith("2.25."))
                    self.assertTrue(ds.SOPInstanceUID.startswith("2.25."))
                    self.assertEqual(ds.file_meta.MediaStorageSOPInstanceUID, ds.SOPInstanceUID)
                    self.assertNotEqual(ds.StudyInstanceUID, self.pacs.studies[acc])
                    study_uids.add(ds.StudyInstanceUID)
                self.assertEqual(len(study_uids), 1, "one study keeps one (new) Study UID")
        for acc, s in states.items():
            if acc not in self.expected:
                self.assertEqual((s["state"], s["error"]), ("queue_failed", "not_found"))
        # nothing of the accession numbers or patient data in the logs
        for line in self.node.stderr_log:
            for acc in self.expected:
                self.assertNotIn(acc, line)
        # a second run has nothing to do
        p = self.node.run("flip-exec", "imaging")
        self.assertRun(p)
        self.assertEqual(p.stderr.strip(), "")

    def serve(self):
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            port = sk.getsockname()[1]
        self.node.set_config(TRUST_INTERNAL_SERVICE_KEY="k-test",
                             BASE_IMAGES_DOWNLOAD_DIR=os.path.join(self.tmp, "images"))
        proc = subprocess.Popen([os.path.join(os.environ.get("FLIP_BIN", "build/test/bin"), "flip-serve"),
                                 "-c", self.node.kit, "--listen", "127.0.0.1:%d" % port],
                                stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (proc.terminate(), proc.wait(10)))
        url = "http://127.0.0.1:%d" % port
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                return url
            except OSError:
                time.sleep(0.05)
        self.fail("flip-serve did not start")

    def call(self, url, path, body, method="POST"):
        req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json",
                                              "X-Trust-Internal-Service-Key": "k-test"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def retrieved_project(self, name):
        """a hub project frozen, its imaging project created and retrieved; returns the
        hub project id and the imaging project id"""
        project = str(uuid.uuid4())
        p = payloads.make("persist_cohort", trust_id=self.hub.trust_id)
        p.update(project_id=project, query=ACC_SQL)
        self.add("persist_cohort", p)
        p = payloads.make("create_imaging", trust_id=self.hub.trust_id)
        p.update(project_id=project, query=None, project_name=name)
        t = self.add("create_imaging", p)
        self.run_all()
        imaging_id = json.loads(self.result(t)["result"])["ID"]
        self.assertRun(self.node.run("flip-exec", "imaging", timeout=600))
        return project, imaging_id

    def test_no_pacs_needed_while_nothing_waits(self):
        # the timer runs flip-exec imaging every 30 s: with every accession done and
        # PACS_HOST unset it must not fail (exit 2 left the unit failed each time)
        self.retrieved_project("Idle")
        self.node.set_config(PACS_HOST=None)
        self.assertRun(self.node.run("flip-exec", "imaging"))
        # an accession waiting with no PACS configured is a configuration error
        p = payloads.make("persist_cohort", trust_id=self.hub.trust_id)
        project = str(uuid.uuid4())
        p.update(project_id=project, query=ACC_SQL)
        self.add("persist_cohort", p)
        p = payloads.make("create_imaging", trust_id=self.hub.trust_id)
        p.update(project_id=project, query=None, project_name="Waiting")
        self.add("create_imaging", p)
        self.run_all()
        q = self.node.run("flip-exec", "imaging")
        self.assertRun(q, 2)
        self.assertIn("PACS_HOST is not set", q.stderr)

    def test_download_and_upload_images_for_fl_training(self):
        project, imaging_id = self.retrieved_project("Handoff")
        url = self.serve()
        sealed = self.hub.seal(project, "project_id")
        acc = next(a for a, n in self.expected.items() if n > 1)
        body = {"encrypted_central_hub_project_id": sealed, "accession_id": acc}
        status, got = self.call(url, "/download/images/net-1?assessor_type=scan&resource_type=DICOM",
                                body)
        self.assertEqual(status, 200, got)
        want_dir = os.path.join(self.tmp, "images", "net-1", project, acc)
        self.assertEqual(got, {"path": os.path.realpath(want_dir)})
        self.assertTrue(os.path.exists(os.path.join(want_dir, ".flip_complete-scan-DICOM")))
        files = glob.glob(os.path.join(want_dir, "scans", "*", "resources", "DICOM", "files", "*.dcm"))
        self.assertEqual(len(files), self.expected[acc])
        # hard links from the store: no copy
        store = glob.glob(os.path.join(self.node.state, "imaging", imaging_id, "data", "*", acc,
                                       "scans", "*", "resources", "DICOM", "files", "*.dcm"))
        self.assertEqual({os.stat(f).st_ino for f in files}, {os.stat(f).st_ino for f in store})
        # a second call answers from the sentinel
        self.assertEqual(self.call(url, "/download/images/net-1?resource_type=DICOM", body)[0], 200)
        # refusals
        self.assertEqual(self.call(url, "/download/images/net-1", dict(body, accession_id="../etc")),
                         (400, {"detail": "Invalid download request"}))
        self.assertIn(self.call(url, "/download/images/..", body)[0], (400, 404))
        self.assertEqual(self.call(url, "/download/images/net-1?resource_type=DICOM",
                                   dict(body, accession_id="ACC0030"))[0], 404)
        self.assertEqual(self.call(url, "/download/images/net-1?assessor_type=assessor", body)[0], 404)
        # training code writes a segmentation; upload takes it into the store
        up = os.path.join(self.tmp, "images", "net-1", "upload", "run1")
        os.makedirs(up)
        with open(os.path.join(up, "seg.nii.gz"), "wb") as f:
            f.write(b"\x1f\x8b fake nifti")
        ubody = dict(body, scan_id="9001", resource_id="SEG", files=["run1/seg.nii.gz"], exist_ok=False)
        status, got = self.call(url, "/upload/images/net-1", ubody, method="PUT")
        self.assertEqual((status, got), (200, ["scans/9001/resources/SEG/files/seg.nii.gz"]))
        self.assertFalse(os.path.exists(os.path.join(want_dir, ".flip_complete-scan-DICOM")))
        self.assertEqual(self.call(url, "/upload/images/net-1", ubody, method="PUT")[0], 409)
        self.assertEqual(self.call(url, "/upload/images/net-1", dict(ubody, files=["../../x"]),
                                   method="PUT")[0], 422)
        status, got = self.call(url, "/download/images/net-1?resource_type=SEG", body)
        self.assertEqual(status, 200, got)
        with open(os.path.join(want_dir, "scans", "9001", "resources", "SEG", "files", "seg.nii.gz"), "rb") as f:
            self.assertEqual(f.read(), b"\x1f\x8b fake nifti")
        # resource_type is free-form: an uploaded resource of any safe name comes back
        with open(os.path.join(up, "struct.dcm"), "wb") as f:
            f.write(b"rtstruct")
        status, got = self.call(url, "/upload/images/net-1", dict(ubody, resource_id="RTSTRUCT",
                                                                  files=["run1/struct.dcm"]),
                                method="PUT")
        self.assertEqual((status, got), (200, ["scans/9001/resources/RTSTRUCT/files/struct.dcm"]))
        status, got = self.call(url, "/download/images/net-1?resource_type=RTSTRUCT", body)
        self.assertEqual(status, 200, got)
        with open(os.path.join(want_dir, "scans", "9001", "resources", "RTSTRUCT", "files",
                               "struct.dcm"), "rb") as f:
            self.assertEqual(f.read(), b"rtstruct")
        self.assertEqual(self.call(url, "/download/images/net-1?resource_type=NOPE", body)[0], 404)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to make test users")
    def test_training_code_cannot_change_the_store(self):
        """the copies handed to the FL client are 0440, owned by the node's user with the
        client's group: the client's uid reads them and cannot write them, even though
        they are hard links to the store; an upload never replaces a resource it did
        not create (a retrieved DICOM file, with exist_ok), and may replace its own"""
        users = TwoUsers()
        self.addCleanup(users.remove)
        self.node.set_config(FL_CLIENT_USER=users.fl)
        project, imaging_id = self.retrieved_project("Readonly")
        url = self.serve()
        sealed = self.hub.seal(project, "project_id")
        acc = next(a for a, n in self.expected.items() if n > 1)
        body = {"encrypted_central_hub_project_id": sealed, "accession_id": acc}
        self.assertEqual(self.call(url, "/download/images/net-1?resource_type=DICOM", body)[0], 200)
        open_traversal(os.path.join(self.tmp, "images"))
        copy = sorted(glob.glob(os.path.join(self.tmp, "images", "net-1", project, acc, "scans",
                                             "*", "resources", "DICOM", "files", "*.dcm")))[0]
        store = [f for f in glob.glob(os.path.join(self.node.state, "imaging", imaging_id, "data",
                                                   "*", acc, "scans", "*", "resources", "DICOM",
                                                   "files", os.path.basename(copy)))
                 if os.stat(f).st_ino == os.stat(copy).st_ino][0]
        with open(store, "rb") as f:
            original = f.read()
        st = os.stat(copy)
        self.assertEqual((st.st_mode & 0o7777, st.st_gid), (0o440, users.fl_pw.pw_gid))
        self.assertEqual(st.st_uid, os.geteuid(), "owned by the node's user (flip-serve's)")
        as_fl = users.as_user(users.fl)
        p = subprocess.run(as_fl + ["cat", copy], capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, original)
        for attack in ("printf EVIL > %s" % copy, "printf EVIL >> %s" % copy,
                       "chmod u+w %s" % copy, "rm -f %s" % copy):
            p = subprocess.run(as_fl + ["sh", "-c", attack], capture_output=True)
            self.assertNotEqual(p.returncode, 0, attack)
        with open(store, "rb") as f:
            self.assertEqual(f.read(), original, "the store's file was changed")
        # an upload naming the retrieved DICOM resource, exist_ok: refused, store intact
        series = os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.dirname(store)))))
        up = os.path.join(self.tmp, "images", "net-1", "upload")
        os.makedirs(up, exist_ok=True)
        with open(os.path.join(up, os.path.basename(store)), "wb") as f:
            f.write(b"EVIL")
        for res in ("DICOM", "NIFTI", "SEG"):
            ubody = dict(body, scan_id=series, resource_id=res,
                         files=[os.path.basename(store)], exist_ok=True)
            status, got = self.call(url, "/upload/images/net-1", ubody, method="PUT")
            if res == "DICOM":
                self.assertEqual(status, 409, got)
        with open(store, "rb") as f:
            self.assertEqual(f.read(), original, "an upload replaced a retrieved file")
        # what an upload created, an upload may replace (exist_ok)
        with open(os.path.join(up, "seg.nii.gz"), "wb") as f:
            f.write(b"one")
        ubody = dict(body, scan_id="9002", resource_id="MYSEG", files=["seg.nii.gz"],
                     exist_ok=True)
        self.assertEqual(self.call(url, "/upload/images/net-1", ubody, method="PUT")[0], 200)
        with open(os.path.join(up, "seg.nii.gz"), "wb") as f:
            f.write(b"two")
        self.assertEqual(self.call(url, "/upload/images/net-1", ubody, method="PUT")[0], 200)
        self.assertEqual(self.call(url, "/upload/images/net-1", dict(ubody, exist_ok=False),
                                   method="PUT")[0], 409)

    def test_governance_deny_covers_images(self):
        """with cohort.dataframe and cohort.accession_ids denied by the governance
        policy, /download/images is refused too (the accession ids' decision governs
        the images of those accessions), and so is it under a raised threshold"""
        project, imaging_id = self.retrieved_project("Governed")
        url = self.serve()
        sealed = self.hub.seal(project, "project_id")
        acc = next(a for a, n in self.expected.items() if n > 1)
        body = {"encrypted_central_hub_project_id": sealed, "accession_id": acc}
        pol = os.path.join(self.tmp, "policy.toml")
        with open(pol, "w") as f:
            for action in ("cohort.dataframe", "cohort.accession_ids"):
                f.write('[[access.rule]]\nid = "deny-%s"\naction = "%s"\neffect = "deny"\n'
                        'projects = ["%s"]\n' % (action, action, project))
        os.chmod(pol, 0o600)
        self.node.set_config(ACCESS_POLICY_FILE=pol)
        status, got = self.call(url, "/download/images/net-1?resource_type=DICOM", body)
        self.assertEqual((status, got), (403, {"detail": "Cohort is too small for row-level "
                                                         "data to be released."}))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "images", "net-1", project, acc)))
        self.node.set_config(ACCESS_POLICY_FILE=None, COHORT_QUERY_THRESHOLD="100000")
        self.assertEqual(self.call(url, "/download/images/net-1?resource_type=DICOM", body)[0], 403)
        self.node.set_config(COHORT_QUERY_THRESHOLD=None)
        self.assertEqual(self.call(url, "/download/images/net-1?resource_type=DICOM", body)[0], 200)

    def test_purge_images_removes_unused_copies_only(self):
        """flipctl purge --images: a copy unused for IMAGE_CACHE_RETENTION_HOURS goes, one
        that training keeps asking for stays (each download touches its sentinel), the
        store's own files and the training code's upload/ are untouched, and nothing is
        followed through a link"""
        project, imaging_id = self.retrieved_project("Sweep")
        url = self.serve()
        self.node.set_config(IMAGE_CACHE_RETENTION_HOURS="24")
        sealed = self.hub.seal(project, "project_id")
        old, used = sorted(self.expected)[:2]
        for acc in (old, used):
            body = {"encrypted_central_hub_project_id": sealed, "accession_id": acc}
            self.assertEqual(self.call(url, "/download/images/net-1?resource_type=DICOM", body)[0],
                             200)
        base = os.path.join(self.tmp, "images")
        net = os.path.join(base, "net-1")
        week_ago = time.time() - 7 * 24 * 3600
        for acc in (old, used):
            d = os.path.join(net, project, acc)
            for f in [d] + glob.glob(os.path.join(d, ".flip_complete-*")):
                os.utime(f, (week_ago, week_ago), follow_symlinks=False)
        # training asks for `used` again: its sentinel is touched
        body = {"encrypted_central_hub_project_id": sealed, "accession_id": used}
        self.assertEqual(self.call(url, "/download/images/net-1?resource_type=DICOM", body)[0], 200)
        # the training code's upload/, and a link planted where a project folder would be
        os.makedirs(os.path.join(net, "upload", "run1"))
        with open(os.path.join(net, "upload", "run1", "seg.nii.gz"), "wb") as f:
            f.write(b"x")
        outside = os.path.join(self.tmp, "outside")
        os.makedirs(os.path.join(outside, old))
        os.utime(os.path.join(outside, old), (week_ago, week_ago))
        os.symlink(outside, os.path.join(net, str(uuid.uuid4())))
        store = glob.glob(os.path.join(self.node.state, "imaging", imaging_id, "data", "*", old,
                                       "scans", "*", "resources", "DICOM", "files", "*.dcm"))
        self.assertTrue(store)
        p = self.node.flipctl("purge", "--images")
        self.assertRun(p)
        self.assertIn("removed 1 image copy unused for 24 hours", p.stdout)
        self.assertFalse(os.path.exists(os.path.join(net, project, old)))
        self.assertTrue(os.path.exists(os.path.join(net, project, used, ".flip_complete-scan-DICOM")))
        self.assertTrue(all(os.path.exists(f) for f in store))
        self.assertTrue(os.path.exists(os.path.join(net, "upload", "run1", "seg.nii.gz")))
        self.assertTrue(os.path.isdir(os.path.join(outside, old)))
        ev = [e for e in self.node.audit_events() if e["event"] == "operator.purge_images"]
        self.assertEqual(ev[-1]["detail"]["removed"], 1)
        # once `used` is stale too, the emptied project folder goes with it
        d = os.path.join(net, project, used)
        for f in [d] + glob.glob(os.path.join(d, ".flip_complete-*")):
            os.utime(f, (week_ago, week_ago), follow_symlinks=False)
        self.assertRun(self.node.flipctl("purge", "--images"))
        self.assertFalse(os.path.exists(os.path.join(net, project)))
        # a base directory that holds the project store is refused, not swept
        self.node.set_config(BASE_IMAGES_DOWNLOAD_DIR=os.path.dirname(self.node.state))
        p = self.node.flipctl("purge", "--images")
        self.assertRun(p, 1)
        self.assertIn("FLIP_STATE_DIR", p.stderr)
        self.assertTrue(all(os.path.exists(f) for f in store))

    def test_accessions_that_cannot_be_a_path_are_queue_failed(self):
        project = str(uuid.uuid4())
        p = payloads.make("create_imaging", trust_id=self.hub.trust_id)
        p.update(project_id=project, project_name="Hostile", query=(
            "SELECT p.person_id, CASE WHEN p.person_id % 2 = 0 THEN 'ACC/0001' ELSE '..' END "
            "AS accession_id FROM person p"))
        t = self.add("create_imaging", p)
        self.run_all()
        imaging_id = json.loads(self.result(t)["result"])["ID"]
        self.assertRun(self.node.run("flip-exec", "imaging"))
        st = self.status(imaging_id)
        self.assertEqual((st["queue_failed_count"], st["successful_count"]), (2, 0))
        d = os.path.join(self.node.state, "imaging", imaging_id)
        for f in os.listdir(os.path.join(d, "accessions")):
            with open(os.path.join(d, "accessions", f)) as fh:
                self.assertEqual(json.load(fh)["error"], "invalid_accession")
        self.assertEqual(os.listdir(os.path.join(d, "data")), [])

    def test_pacs_down_keeps_the_studies_queued(self):
        imaging_id = self.create_project()
        self.node.set_config(PACS_DICOM_PORT="1")
        p = self.node.run("flip-exec", "imaging")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot be reached", p.stderr)
        st = self.status(imaging_id)
        self.assertEqual((st["queued_count"], st["failed_count"], st["successful_count"]),
                         (len(ACCESSIONS), 0, 0))

    def test_project_deleted_during_retrieval_stops_the_worker(self):
        imaging_id = self.create_project()
        d = os.path.join(self.node.state, "imaging", imaging_id)
        # the worker pauses after its first stored instance; the project is deleted then
        env = {"FLIP_PAUSE_AT": "imaging.after_instance:3"}
        worker = subprocess.Popen([os.path.join(os.environ.get("FLIP_BIN", "build/test/bin"), "flip-exec"),
                                   "-c", self.node.kit, "imaging"], env=dict(os.environ, **env),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline and not glob.glob(os.path.join(d, "data", ".stage-*", "*", "scans",
                                                                       "*", "resources", "DICOM", "files", "*.dcm")):
            time.sleep(0.05)
        p = payloads.make("delete_imaging")
        p["imaging_project_id"] = imaging_id
        t = self.add("delete_imaging", p)
        self.run_all()
        self.assertTrue(self.result(t)["success"])
        _, err = worker.communicate(timeout=120)
        self.assertEqual(worker.returncode, 0, err)
        self.assertIn("deleted during retrieval", err)
        self.assertFalse(os.path.exists(d))
        # nothing of the project is left anywhere in the store
        self.assertEqual([e for e in os.listdir(os.path.join(self.node.state, "imaging"))
                          if e != "users.json"], [])

    def test_deleted_project_is_not_retrieved(self):
        imaging_id = self.create_project()
        p = payloads.make("delete_imaging")
        p["imaging_project_id"] = imaging_id
        self.add("delete_imaging", p)
        self.run_all()
        p = self.node.run("flip-exec", "imaging")
        self.assertRun(p)
        self.assertFalse(os.path.exists(os.path.join(self.node.state, "imaging", imaging_id)))


if __name__ == "__main__":
    unittest.main()
