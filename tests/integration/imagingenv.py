# SPDX-License-Identifier: Apache-2.0
"""imagingenv - the imaging tests' stand: the OMOP fixture, a real Orthanc, a node set up.

    from imagingenv import PacsNodeCase

    class T(PacsNodeCase):
        def test_x(self):
            imaging_id = self.create_project()
            self.assertEqual(self.status(imaging_id), {...})

PacsNodeCase is FixtureDatabase + NodeTestCase with one throwaway Orthanc per class
(tests/pacs/orthanc.py) in a temporary directory. load_pacs() fills it: by default
with the OMOP fixture's studies (load_fixture; what it stored is cls.expected); a
class that needs other files overrides it. Each test's node points at both services
and has run `flipctl init`; a PACS a test stopped is started again first.
create_project() freezes ACC_SQL's cohort and creates an imaging project on it
(both through the hub; named after the class's PROJECT_NAME), returning its id; status() is the hub's view of
its import_status.
"""
import json
import os
import shutil
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "omop"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pacs"))

import payloads  # noqa: E402
from nodeenv import NodeTestCase  # noqa: E402
from orthanc import Orthanc, load_fixture  # noqa: E402
from pg import FixtureDatabase  # noqa: E402

# every (person, accession) pair of the fixture: the cohort whose studies are retrieved
ACC_SQL = "SELECT p.person_id, io.accession_id FROM person p JOIN image_occurrence io USING (person_id)"


class PacsNodeCase(FixtureDatabase, NodeTestCase):
    PROJECT_NAME = "Imaging"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.svc = tempfile.mkdtemp(prefix="flip-img-")
        cls.pacs = Orthanc(os.path.join(cls.svc, "orthanc"))
        cls.pacs.start()
        cls.load_pacs()

    @classmethod
    def load_pacs(cls):
        """the studies this class retrieves: the OMOP fixture's"""
        cls.expected = load_fixture(cls.pacs, os.path.join(cls.svc, "orthanc"))

    @classmethod
    def tearDownClass(cls):
        cls.pacs.stop()
        shutil.rmtree(cls.svc, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if self.pacs.pid is None:
            self.pacs.start()
        self.node.set_config(**self.pg.env(), **self.pacs.env())
        self.assertRun(self.node.flipctl("init"))

    def create_project(self):
        project = str(uuid.uuid4())
        p = payloads.make("persist_cohort", trust_id=self.hub.trust_id)
        p.update(project_id=project, query=ACC_SQL)
        self.add("persist_cohort", p)
        p = payloads.make("create_imaging", trust_id=self.hub.trust_id)
        p.update(project_id=project, query=None, project_name=self.PROJECT_NAME)
        t = self.add("create_imaging", p)
        self.run_all()
        r = self.result(t)
        self.assertTrue(r["success"], r)
        return json.loads(r["result"])["ID"]

    def status(self, imaging_id):
        p = payloads.make("get_imaging_status")
        p["imaging_project_id"] = imaging_id
        t = self.add("get_imaging_status", p)
        self.run_all()
        return json.loads(self.result(t)["result"])["import_status"]
