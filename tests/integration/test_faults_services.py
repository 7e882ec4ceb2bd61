# SPDX-License-Identifier: Apache-2.0
"""test_faults_services - the hospital's own services failing under a running job.

Database: a throwaway PostgreSQL (tests/omop/pg.py) is restarted while flip-exec's
cohort query runs, and the query is cancelled by the server (pg_cancel_backend()
from the test, as a DBA would). PACS: a throwaway Orthanc (tests/pacs/orthanc.py) is
killed (SIGKILL) while flip-exec imaging is in the middle of a study's C-GET, and of
its C-MOVE. The worker is held at the right moment by the test build's FLIP_PAUSE_AT.

Each test asserts the line the operator reads and that nothing was lost: the job
retries under the transient rules and the hub receives one answer; a study stays
queued, its staging is removed, no partial study is ever in the store, and the next
run completes it. docs/reliability.md describes each fault.
"""
import glob
import json
import os
import signal
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "omop"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pacs"))

import payloads  # noqa: E402
from fixture_expected import ACCESSIONS, expected, same_statistics  # noqa: E402
from nodeenv import NodeTestCase, wait_for  # noqa: E402
from imagingenv import PacsNodeCase  # noqa: E402
from pg import FixtureDatabase  # noqa: E402

try:
    import pydicom  # noqa: F401  (Debian's python3-pydicom: the fixture needs it)
except ImportError:  # pragma: no cover - packages.list installs it
    pydicom = None

# a cohort query that keeps PostgreSQL busy for a few seconds (generate_series is
# allowed by the guard) and then answers the Q_ALL statistics
SLOW_SQL = ("SELECT p.person_id, p.gender_source_value, p.year_of_birth FROM person p "
            "WHERE (SELECT count(*) FROM generate_series(1, 40000000)) > 0")


class TestDatabaseFaults(FixtureDatabase, NodeTestCase):

    def setUp(self):
        super().setUp()
        self.node.set_config(**self.pg.env())

    def start_slow_query(self):
        p = payloads.make("cohort_query", trust_id=self.hub.trust_id)
        p["query"] = SLOW_SQL
        tid = self.add("cohort_query", p)
        self.assertRun(self.node.poll("--no-snapshot"))
        worker = self.node.popen("flip-exec")
        backend = wait_for(lambda: self.pg.psql(
            "SELECT pid FROM pg_stat_activity WHERE usename = '%s' AND state = 'active' "
            "AND backend_type = 'client backend' AND query LIKE '%%generate_series%%' "
            # the statistics statement, not the column probe before it
            "AND query NOT LIKE '%%LIMIT 0'" % self.pg.user).strip(), 30, 0.05)
        self.assertTrue(backend, "the cohort query never became active")
        return tid, p, worker, backend

    def finish(self, worker):
        out, err = worker.communicate(timeout=120)
        return worker.returncode, err

    def assertRetriedThenOneAnswer(self, tid, p, rc, err, why):
        self.assertEqual(rc, 0, err)
        self.assertIn("flip-exec: warning: %s\n" % why, err)
        self.assertRegex(err, r"(?m)^flip-exec: warning: task %s: omop unavailable; attempt 1, retry "
                         r"in [12] s \(gives up 600 s after the first failure\)$" % tid)
        name = self.node.jobs("new")
        self.assertEqual(len(name), 1, "a transient failure goes back to new/: %s" % err)
        state = self.node.job_json(name[0], "exec.json")
        self.assertEqual((state["attempts"], state["service"]), (1, "omop"))
        self.assertEqual(self.node.jobs("out"), [])
        self.assertEqual(self.hub.task(tid)["results"], [])
        # the retry, once due, answers; the hub gets exactly one result and one cohort
        self.node.write_job_json(name[0], "exec.json", dict(state, next_attempt_at=0))
        self.assertRun(self.node.exec())
        self.assertRun(self.node.report())
        self.assertExactlyOnce([tid])
        self.assertEqual(self.hub.task(tid)["results"][0],
                         {**self.hub.task(tid)["results"][0], "success": True})
        got = self.hub.cohort_results()
        self.assertEqual(len(got["history"]), 1)
        body = got["current"][p["query_id"]]
        self.assertNotIn("error", body)
        self.assertTrue(same_statistics(body, expected("Q_ALL")), body)

    def test_database_restarted_during_a_cohort_query(self):
        tid, p, worker, _ = self.start_slow_query()
        self.pg.stop()                      # pg_ctl stop -m fast: the backend is terminated
        self.pg.start()
        self.node.set_config(**self.pg.env())
        rc, err = self.finish(worker)
        self.assertRetriedThenOneAnswer(tid, p, rc, err,
                                        "OMOP database unavailable (SQLSTATE none)")

    def test_query_cancelled_by_the_server(self):
        tid, p, worker, backend = self.start_slow_query()
        self.assertEqual(self.pg.psql("SELECT pg_cancel_backend(%s)" % backend).strip(), "t")
        rc, err = self.finish(worker)
        self.assertRetriedThenOneAnswer(tid, p, rc, err,
                                        "OMOP query cancelled by the database server "
                                        "(SQLSTATE 57014, not our statement timeout)")


@unittest.skipIf(pydicom is None, "python3-pydicom is not installed")
class TestPacsFaults(PacsNodeCase):
    PROJECT_NAME = "Faults"

    def run_all(self):
        super().run_all("--no-snapshot")

    def allow_cmove(self):
        self.pacs.rest("PUT", "/modalities/flipnode", json.dumps({
            "AET": self.pacs.node_aet, "Host": "127.0.0.1", "Port": self.pacs.node_port,
            "AllowEcho": True, "AllowFind": True, "AllowGet": True, "AllowMove": True,
            "AllowStore": False, "AllowStorageCommitment": False,
            "AllowFindWorklist": False}).encode(), "application/json")
        self.node.set_config(PACS_RETRIEVE="move", FLIP_DICOM_PORT=str(self.pacs.node_port))

    def stored_studies(self, d):
        """Study folders (data/<subject>/<accession>) visible in the project's store;
        the staging folders (data/.stage-*) are not part of it."""
        return sorted(glob.glob(os.path.join(d, "data", "[!.]*", "*")))

    def kill_pacs_mid_study(self, move=False):
        if move:
            self.allow_cmove()
        imaging_id = self.create_project()
        d = os.path.join(self.node.state, "imaging", imaging_id)
        worker = self.node.popen("flip-exec", "imaging",
                                 env={"FLIP_PAUSE_AT": "imaging.after_instance:3"})
        staged = os.path.join(d, "data", ".stage-*", "*", "scans", "*", "resources", "DICOM",
                              "files", "*.dcm")
        try:
            self.assertTrue(wait_for(lambda: glob.glob(staged), 60, 0.05),
                            "no instance was staged")
            # the PACS dies in the middle of the study: SIGKILL, no goodbye
            os.kill(self.pacs.pid, signal.SIGKILL)
            _, err = worker.communicate(timeout=120)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        self.pacs.stop()
        self.assertEqual(worker.returncode, 1, err)
        self.assertIn("cannot be reached", err)
        # the staging is gone, nothing partial is in the store, everything is queued
        self.assertEqual(glob.glob(os.path.join(d, "data", ".stage-*")), [])
        self.assertEqual(self.stored_studies(d), [])
        self.pacs.start()
        self.node.set_config(**self.pacs.env())
        if move:
            self.allow_cmove()
        st = self.status(imaging_id)
        self.assertEqual((st["queued_count"], st["failed_count"], st["successful_count"],
                          st["processing_count"]), (len(ACCESSIONS), 0, 0, 0), st)
        # the next run completes every study
        p = self.node.run("flip-exec", "imaging", timeout=300)
        self.assertRun(p)
        st = self.status(imaging_id)
        self.assertEqual(st, {"successful_count": len(self.expected), "failed_count": 0,
                              "processing_count": 0, "queued_count": 0,
                              "queue_failed_count": len(ACCESSIONS) - len(self.expected)})
        self.assertEqual(len(self.stored_studies(d)), len(self.expected))
        self.assertEqual(glob.glob(os.path.join(d, "data", ".stage-*")), [])

    def test_pacs_killed_during_cget(self):
        self.kill_pacs_mid_study()

    def test_pacs_killed_during_cmove(self):
        self.kill_pacs_mid_study(move=True)


if __name__ == "__main__":
    unittest.main()
