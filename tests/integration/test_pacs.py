# SPDX-License-Identifier: Apache-2.0
"""test_pacs - the DICOM shim against a real Orthanc, and the Orthanc harness itself.

One throwaway Orthanc (tests/pacs/orthanc.py) is started for the class, loaded with
the DICOM fixture (pydicom's sample files relabelled ACC0001..ACC0013), and:

- the harness is checked: every fixture accession is one study in Orthanc with the
  expected number of instances, its HTTP API answers on loopback, and the config
  it wrote refuses remote HTTP access and checks the called AE title;
- build/test/unit/test_dicom_net (the C checks of lib/dicom_net.cc: C-ECHO, C-FIND of
  every accession exactly once and of a case variant, C-GET of every study into
  memory with the expected counts, storage_error, not_found, pacs_unreachable on a
  closed port and on a silent peer, association_rejected for wrong AE titles) is
  run with the FLIP_TEST_PACS_* variables pointing at this Orthanc; it must pass
  every test and skip none.

The cmocka program comes from $FLIP_BIN/../unit (the test build that tests/run.py
names), else build/test/unit; when it is missing the test fails under tests/run.py
(FLIP_BIN set) and is skipped when run by hand.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "pacs"))

import orthanc  # noqa: E402


def unit_binary():
    """The test_dicom_net program of the test build, or None."""
    bindir = os.environ.get("FLIP_BIN")
    candidates = []
    if bindir:
        candidates.append(os.path.join(os.path.dirname(os.path.abspath(bindir)), "unit",
                                       "test_dicom_net"))
    candidates.append(os.path.join(ROOT, "build", "test", "unit", "test_dicom_net"))
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    return None


def allow_move(pacs):
    """allow_move - let the node's AE C-MOVE (the harness's configuration refuses it),
    through Orthanc's REST API: in memory only, the configuration file is unchanged.
    The destination is the modality's 127.0.0.1:node_port."""
    pacs.rest("PUT", "/modalities/flipnode", json.dumps({
        "AET": pacs.node_aet, "Host": "127.0.0.1", "Port": pacs.node_port,
        "AllowEcho": True, "AllowFind": True, "AllowGet": True, "AllowMove": True,
        "AllowStore": False, "AllowStorageCommitment": False,
        "AllowFindWorklist": False}).encode(), "application/json")
    mod = pacs.rest("GET", "/modalities/flipnode/configuration")
    if not mod.get("AllowMove") or int(mod.get("Port")) != pacs.node_port:
        raise orthanc.OrthancError("C-MOVE could not be allowed for %s: %r"
                                   % (pacs.node_aet, mod))


@unittest.skipUnless(orthanc.available(), "Orthanc, dcmodify or python3-pydicom not installed")
class PacsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="flip-pacs-")
        cls.pacs = orthanc.Orthanc(cls.tmp, node_port=orthanc.free_port())
        try:
            cls.pacs.start()
            allow_move(cls.pacs)
            cls.expected = orthanc.load_fixture(cls.pacs, cls.tmp)
        except Exception:
            cls.pacs.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pacs.stop()
        if os.environ.get("FLIP_KEEP_TMP"):
            print("kept", cls.tmp, file=sys.stderr)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_fixture_loaded(self):
        self.assertEqual(len(self.expected), len(orthanc.FIXTURE))
        self.assertEqual(sorted(self.expected), ["ACC%04d" % i for i in range(1, 14)])
        self.assertGreaterEqual(sum(self.expected.values()), 20)
        self.assertEqual(len(self.pacs.rest("GET", "/studies")), len(self.expected))
        for acc, n in self.expected.items():
            found = self.pacs.rest("POST", "/tools/find", json.dumps(
                {"Level": "Study", "Query": {"AccessionNumber": acc}}).encode())
            self.assertEqual(len(found), 1, acc)
            stats = self.pacs.rest("GET", "/studies/%s/statistics" % found[0])
            self.assertEqual(int(stats["CountInstances"]), n, acc)
        # the originals under pydicom's directory are untouched: dcmodify ran on copies
        for _acc, files in orthanc.fixture_files():
            for f in files:
                p = subprocess.run(["dcmdump", "+P", "0008,0050", f], capture_output=True,
                                   text=True)
                self.assertNotIn("ACC00", p.stdout, f)

    def test_harness_config(self):
        with open(self.pacs.config_path) as f:
            conf = json.load(f)
        self.assertFalse(conf["RemoteAccessAllowed"])
        self.assertFalse(conf["AuthenticationEnabled"])
        self.assertTrue(conf["DicomCheckCalledAet"])
        mod = conf["DicomModalities"]["flipnode"]
        self.assertEqual(mod["AET"], "FLIPNODE")
        self.assertTrue(mod["AllowGet"] and mod["AllowFind"] and mod["AllowEcho"])
        self.assertFalse(mod["AllowStore"] or mod["AllowMove"])
        self.assertTrue(conf["StorageDirectory"].startswith(self.tmp))
        self.assertEqual(self.pacs.env()["PACS_DICOM_PORT"], str(self.pacs.dicom_port))

    def test_dicom_shim(self):
        binary = unit_binary()
        if binary is None:
            if os.environ.get("FLIP_BIN"):
                self.fail("test_dicom_net not built (make build/test/unit/test_dicom_net)")
            self.skipTest("build/test/unit/test_dicom_net not built")
        env = dict(os.environ,
                   FLIP_TEST_PACS_HOST=self.pacs.host,
                   FLIP_TEST_PACS_PORT=str(self.pacs.dicom_port),
                   FLIP_TEST_PACS_AET=self.pacs.aet,
                   FLIP_TEST_NODE_AET=self.pacs.node_aet,
                   FLIP_TEST_PACS_CLOSED_PORT=str(orthanc.free_port()),
                   FLIP_TEST_NODE_PORT=str(self.pacs.node_port),
                   FLIP_TEST_PACS_EXPECT=",".join("%s=%d" % kv
                                                  for kv in sorted(self.expected.items())),
                   CMOCKA_MESSAGE_OUTPUT="stdout")
        p = subprocess.run([binary], capture_output=True, text=True, env=env, timeout=120,
                           cwd=ROOT)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        m = re.search(r"\[  PASSED  \] (\d+) test", out)
        self.assertIsNotNone(m, out)
        self.assertGreaterEqual(int(m.group(1)), 16, out)
        self.assertNotIn("SKIPPED", out)
        self.assertNotIn("FAILED", out)
        # dcmtk printed nothing of its own: the node's output stays its own
        self.assertNotRegex(out, r"(?m)^[IWEDF]: ")


if __name__ == "__main__":
    unittest.main()
