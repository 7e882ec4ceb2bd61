# SPDX-License-Identifier: Apache-2.0
"""test_imaging_project - the imaging project handlers on the native store.

create_imaging (from the frozen snapshot, or live under the threshold), its
idempotence on re-delivery, get_imaging_status's five counts, reimport_studies,
delete_imaging and update_user_profile, against a real PostgreSQL with the OMOP
fixture and the hub emulator. Retrieval itself (flip-exec imaging) is tested with
Orthanc elsewhere.
"""
import json
import os
import sys
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "omop"))

import payloads  # noqa: E402
from fixture_expected import ACCESSIONS, QUERIES  # noqa: E402
from imagingenv import ACC_SQL  # noqa: E402
from nodeenv import NodeTestCase  # noqa: E402
from pg import FixtureDatabase  # noqa: E402

def load(path):
    with open(path) as f:
        return json.load(f)




class ImagingCase(FixtureDatabase, NodeTestCase):
    def setUp(self):
        super().setUp()
        self.node.set_config(**self.pg.env())

    def persist(self, project, sql=ACC_SQL):
        p = payloads.make("persist_cohort", trust_id=self.hub.trust_id)
        p.update(project_id=project, query=sql)
        return self.add("persist_cohort", p)

    def create(self, project, query=None, name="Study A"):
        p = payloads.make("create_imaging", trust_id=self.hub.trust_id)
        p.update(project_id=project, query=query, project_name=name)
        return self.add("create_imaging", p)

    def status(self, imaging_id):
        p = payloads.make("get_imaging_status")
        p["imaging_project_id"] = imaging_id
        return self.add("get_imaging_status", p)


class TestImagingProject(ImagingCase):
    def test_create_from_snapshot_then_status_reimport_delete(self):
        project = str(uuid.uuid4())
        self.persist(project)
        t_create = self.create(project)
        self.run_all()
        r = self.result(t_create)
        self.assertTrue(r["success"], r)
        created = json.loads(r["result"])
        self.assertEqual(set(created), {"ID", "name", "created_users", "added_users"})
        self.assertEqual(created["name"], "Study A:%s-FL-Project" % project)
        self.assertEqual((created["created_users"], created["added_users"]), ([], []))
        distinct = len(ACCESSIONS)
        t_status = self.status(created["ID"])
        self.run_all()
        st = json.loads(self.result(t_status)["result"])
        self.assertEqual(st, {"project_creation_completed": True, "import_status": {
            "successful_count": 0, "failed_count": 0, "processing_count": 0,
            "queued_count": distinct, "queue_failed_count": 0}})
        # the store: one state file per distinct accession, in order, each a fresh pseudonym
        d = os.path.join(self.node.state, "imaging", created["ID"])
        files = sorted(os.listdir(os.path.join(d, "accessions")))
        self.assertEqual(len(files), distinct)
        states = [load(os.path.join(d, "accessions", f)) for f in files]
        self.assertEqual(len({s["subject"] for s in states}), distinct)
        self.assertEqual(len({s["accession"] for s in states}), distinct)
        with open(os.path.join(d, "project.json")) as f:
            meta = json.load(f)
        self.assertEqual(meta["secondary_ID"], project)
        # reimport moves failed and queue_failed back to queued
        for s, f in zip(states[:2], files[:2]):
            s["state"] = "failed" if s is states[0] else "queue_failed"
            with open(os.path.join(d, "accessions", f), "w") as out:
                json.dump(s, out)
        p = payloads.make("reimport_studies")
        p["imaging_project_id"] = created["ID"]
        t_re = self.add("reimport_studies", p)
        t_status2 = self.status(created["ID"])
        self.run_all()
        self.assertEqual((self.result(t_re)["success"], self.result(t_re)["result"]), (True, None))
        st2 = json.loads(self.result(t_status2)["result"])["import_status"]
        self.assertEqual((st2["queued_count"], st2["failed_count"], st2["queue_failed_count"]),
                         (distinct, 0, 0))
        # delete, then the project is gone
        p = payloads.make("delete_imaging")
        p["imaging_project_id"] = created["ID"]
        t_del = self.add("delete_imaging", p)
        self.run_all()
        self.assertTrue(self.result(t_del)["success"])
        self.assertFalse(os.path.exists(d))
        self.assertEqual(os.listdir(os.path.join(self.node.state, "imaging")), [])
        t_status3 = self.status(created["ID"])
        self.run_all()
        self.assertEqual(json.loads(self.result(t_status3)["result"]),
                         {"error": "404: Project not found", "status_code": 404})

    def test_create_is_idempotent_per_hub_project(self):
        project = str(uuid.uuid4())
        self.persist(project)
        a = self.create(project)
        self.run_all()
        b = self.create(project)
        self.run_all()
        self.assertEqual(json.loads(self.result(a)["result"])["ID"],
                         json.loads(self.result(b)["result"])["ID"])
        self.assertEqual(len(os.listdir(os.path.join(self.node.state, "imaging"))), 1)

    def test_live_query_when_there_is_no_snapshot(self):
        project = str(uuid.uuid4())
        t = self.create(project, query=ACC_SQL)
        self.run_all()
        created = json.loads(self.result(t)["result"])
        t_status = self.status(created["ID"])
        self.run_all()
        st = json.loads(self.result(t_status)["result"])["import_status"]
        self.assertEqual(st["queued_count"], len(ACCESSIONS))

    def test_refusals(self):
        no_snapshot = self.create(str(uuid.uuid4()))
        below = self.create(str(uuid.uuid4()), query=QUERIES["Q_BELOW"].sql)
        hostile = self.create(str(uuid.uuid4()), query="SELECT * FROM pg_catalog.pg_authid")
        missing = self.status(str(uuid.uuid4()))
        self.run_all()
        err = lambda t: json.loads(self.result(t)["result"])  # noqa: E731
        self.assertEqual(err(no_snapshot), {"error": "403: No approved cohort snapshot exists for "
                                                     "this project.", "status_code": 403})
        self.assertEqual(err(below), {"error": "403: Cohort is too small for row-level data to be "
                                               "released.", "status_code": 403})
        self.assertEqual(err(hostile)["status_code"], 400)
        self.assertEqual(err(missing), {"error": "404: Project not found", "status_code": 404})
        self.assertFalse(os.listdir(os.path.join(self.node.state, "imaging")))

    def test_update_user_profile_records_the_flag(self):
        p = payloads.make("update_user_profile")
        p.update(email="r@example.org", enabled=False)
        t = self.add("update_user_profile", p)
        self.run_all()
        self.assertEqual((self.result(t)["success"], self.result(t)["result"]), (True, None))
        with open(os.path.join(self.node.state, "imaging", "users.json")) as f:
            self.assertEqual(json.load(f), {"r@example.org": False})


if __name__ == "__main__":
    unittest.main()
