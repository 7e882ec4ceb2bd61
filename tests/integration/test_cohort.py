# SPDX-License-Identifier: Apache-2.0
"""test_cohort - cohort_query and persist_cohort end to end against a real PostgreSQL.

One throwaway cluster per class (tests/omop/pg.py) loaded with the hand-made fixture
(tests/omop/fixture.sql) and FLIP's read-only role; a fresh hub emulator and node per
test (nodeenv). The expected statistics are the ones written down by hand in
tests/omop/fixture_expected.py; the node must produce them through the real path:
hub -> flip-poll -> flip-exec (guard, libpq, statistics in PostgreSQL) -> flip-report
-> the hub's /cohort/results.
"""
import hashlib
import json
import os
import sys
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "omop"))

import payloads  # noqa: E402
from fixture_expected import QUERIES, expected, same_statistics  # noqa: E402
from nodeenv import NodeTestCase  # noqa: E402
from pg import FixtureDatabase  # noqa: E402

TOO_SMALL = "Cohort is too small for row-level data to be released."


def load(path):
    with open(path) as f:
        return json.load(f)


class CohortCase(FixtureDatabase, NodeTestCase):
    pg = None

    def setUp(self):
        super().setUp()
        self.node.set_config(**self.pg.env())

    def cohort_task(self, sql, **kw):
        p = payloads.make("cohort_query", trust_id=self.hub.trust_id)
        p["query"] = sql
        p.update(kw)
        return self.add("cohort_query", p), p

    def cohort_result(self, query_id):
        return self.hub.cohort_results()["current"][query_id]

    def task_result(self, tid):
        results = self.hub.task(tid)["results"]
        self.assertEqual(len(results), 1, results)
        return results[0]


class TestStatistics(CohortCase):
    def test_every_named_query_matches_the_hand_written_answer(self):
        ids = {}
        for name, q in QUERIES.items():
            ids[name] = self.cohort_task(q.sql)
        self.run_all()
        for name, (tid, p) in ids.items():
            with self.subTest(query=name):
                got = self.cohort_result(p["query_id"])
                self.assertTrue(same_statistics(got, expected(name)),
                                "%s\ngot  %s\nwant %s" % (name, json.dumps(got), json.dumps(expected(name))))
                self.assertEqual(got["trust_id"], self.hub.trust_id)
                self.assertNotIn("error", got)
                r = self.task_result(tid)
                self.assertEqual((r["success"], r["result"]), (True, None))
        self.assertSpoolSettled()

    def test_suppressed_is_identical_to_a_genuine_zero(self):
        (_, below) = self.cohort_task(QUERIES["Q_BELOW"].sql)
        (_, zero) = self.cohort_task(QUERIES["Q_ZERO"].sql)
        self.run_all()
        a, b = self.cohort_result(below["query_id"]), self.cohort_result(zero["query_id"])
        for r in (a, b):
            r.pop("query_id")
        self.assertEqual(a, b)
        self.assertEqual((a["record_count"], a["data"], a["suppressed"]), (0, [], True))

    def test_hostile_and_broken_queries_fail_with_the_category(self):
        cases = {
            "SELECT * FROM pg_catalog.pg_authid": "400: Schema 'pg_catalog' is not accessible.",
            "DELETE FROM person": "400: Only SELECT statements are allowed.",
            "SELECT 1; SELECT 2": "400: Exactly one SQL statement is allowed per request.",
            "SELECT pg_read_file('/etc/passwd')": None,   # refused; exact text is the guard's
            "SELECT person_id FROM nosuchtable": "400: The table 'nosuchtable' does not exist.",
            "SELECT nosuchcolumn FROM person": "400: The column 'nosuchcolumn' does not exist.",
            "SELECT person_id FROM person LIMIT CASE WHEN 1=1 THEN 1 ELSE 2 END":
                "400: LIMIT must be a literal integer.",
        }
        tasks = {sql: self.cohort_task(sql) for sql in cases}
        self.run_all()
        for sql, want in cases.items():
            with self.subTest(sql=sql):
                tid, p = tasks[sql]
                r = self.task_result(tid)
                self.assertFalse(r["success"])
                err = json.loads(r["result"])
                self.assertTrue(err["error"].startswith("400: "), err)
                self.assertEqual(err["status_code"], 400)
                if want:
                    self.assertEqual(err["error"], want)
                c = self.cohort_result(p["query_id"])
                self.assertEqual((c["record_count"], c["data"], c["error"]), (0, [], err["error"]))

    def test_sql_text_never_reaches_logs_or_the_audit_trail(self):
        marker = "year_of_birth = 1991 /* flip-marker-7c1e */"
        self.cohort_task("SELECT person_id FROM person WHERE " + marker)
        self.cohort_task("SELECT broken FROM person WHERE " + marker)
        self.run_all()
        for path in self.node.all_files():
            if "/spool/" in path:
                continue        # the spool keeps the task itself (mode 0700), by design
            with open(path, "rb") as f:
                self.assertNotIn(b"flip-marker-7c1e", f.read(), path)
        self.assertNotIn("flip-marker-7c1e", "".join(self.node.stderr_log))
        self.assertNotIn(self.pg.password, "".join(self.node.stderr_log))

    def test_policy_deny_answers_the_suppressed_zero_and_runs_no_sql(self):
        pol = os.path.join(self.tmp, "policy.toml")
        with open(pol, "w") as f:
            f.write('[[access.rule]]\nid = "no-stats"\naction = "cohort.statistics"\neffect = "deny"\n')
        os.chmod(pol, 0o600)
        self.node.set_config(ACCESS_POLICY_FILE=pol)
        tid, p = self.cohort_task(QUERIES["Q_ALL"].sql)
        self.run_all()
        c = self.cohort_result(p["query_id"])
        self.assertEqual((c["record_count"], c["data"], c["suppressed"]), (0, [], True))
        self.assertEqual(self.task_result(tid)["success"], True)

    def test_invalid_policy_fails_closed(self):
        pol = os.path.join(self.tmp, "policy.toml")
        with open(pol, "w") as f:
            f.write("[disclosure]\nmin_cohort_size = true\n")
        os.chmod(pol, 0o600)
        self.node.set_config(ACCESS_POLICY_FILE=pol)
        tid, _ = self.cohort_task(QUERIES["Q_ALL"].sql)
        self.run_all()
        err = json.loads(self.task_result(tid)["result"])
        self.assertEqual(err, {"error": "500: access_policy_invalid", "status_code": 500})

    def test_policy_floor_raises_the_threshold(self):
        pol = os.path.join(self.tmp, "policy.toml")
        with open(pol, "w") as f:
            f.write("[disclosure]\nmin_cohort_size = 1000\n")
        os.chmod(pol, 0o600)
        self.node.set_config(ACCESS_POLICY_FILE=pol)
        _, p = self.cohort_task(QUERIES["Q_ALL"].sql)
        self.run_all()
        self.assertTrue(self.cohort_result(p["query_id"])["suppressed"])


class TestTimeout(CohortCase):
    def test_statement_timeout_is_reported_as_query_timeout(self):
        self.node.set_config(COHORT_QUERY_TIMEOUT_SECONDS="1")
        # countable (an uncountable cohort is answered suppressed without running)
        tid, p = self.cohort_task("SELECT p.person_id FROM person p, generate_series(1, 2000000000) AS g")
        self.run_all()
        err = json.loads(self.task_result(tid)["result"])
        self.assertEqual(err, {"error": "504: query_timeout", "status_code": 504})
        self.assertEqual(self.cohort_result(p["query_id"])["error"], "504: query_timeout")


class TestDatabaseDown(CohortCase):
    def test_unreachable_database_is_transient_then_503(self):
        self.node.set_config(OMOP_DB_PORT="1", FLIP_TRANSIENT_GIVE_UP_SECONDS="1")
        tid, p = self.cohort_task(QUERIES["Q_ALL"].sql)
        self.assertRun(self.node.poll())
        self.assertRun(self.node.exec())
        name = self.node.jobs("new")
        self.assertEqual(len(name), 1, "a transient failure goes back to new/")
        state = self.node.job_json(name[0], "exec.json")
        self.assertEqual((state["attempts"], state["service"]), (1, "omop"))
        self.assertEqual(self.node.jobs("out"), [])
        import time
        time.sleep(1.1)
        self.node.write_job_json(name[0], "exec.json", dict(state, next_attempt_at=0))
        self.assertRun(self.node.exec())
        self.assertRun(self.node.report())
        err = json.loads(self.task_result(tid)["result"])
        self.assertEqual(err, {"error": "503: omop unavailable", "status_code": 503})


class TestSnapshot(CohortCase):
    def persist(self, sql, project=None):
        p = payloads.make("persist_cohort", trust_id=self.hub.trust_id)
        p["query"] = sql
        if project:
            p["project_id"] = project
        return self.add("persist_cohort", p), p

    def test_persist_freezes_the_membership_not_the_values(self):
        tid, p = self.persist(QUERIES["Q_ALL"].sql)
        self.run_all()
        r = self.task_result(tid)
        self.assertTrue(r["success"], r)
        res = json.loads(r["result"])
        self.assertEqual(set(res), {"row_count", "columns", "has_accessions", "snapshot_at",
                                    "query_hash", "subject_count"})
        self.assertEqual(res["row_count"], QUERIES["Q_ALL"].record_count)
        self.assertIs(res["has_accessions"], False)
        self.assertRegex(res["snapshot_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(res["query_hash"], hashlib.sha256(
            " ".join(QUERIES["Q_ALL"].sql.lower().split()).encode()).hexdigest())
        d = os.path.join(self.node.state, "cohorts", p["project_id"].lower())
        self.assertEqual(sorted(os.listdir(d)), ["meta.json", "persons.txt", "query.sql"])
        meta = load(os.path.join(d, "meta.json"))
        for k in res:
            self.assertEqual(meta[k], res[k], k)
        self.assertEqual(meta["format_version"], 2)
        with open(os.path.join(d, "persons.txt")) as f:
            self.assertEqual(f.read(), "".join("%d\n" % i for i in range(1, 41)))
        with open(os.path.join(d, "query.sql")) as f:
            self.assertEqual(f.read(), QUERIES["Q_ALL"].sql)
        self.assertEqual(sorted(os.listdir(os.path.join(self.node.state, "cohorts"))),
                         [p["project_id"].lower()], "no temporary left beside it")
        self.assertIn('"hub_validated": true', json.dumps(self.hub.task(tid)))

    def test_persist_below_threshold_refuses_and_keeps_nothing(self):
        tid, p = self.persist(QUERIES["Q_BELOW"].sql)
        self.run_all()
        err = json.loads(self.task_result(tid)["result"])
        self.assertEqual(err, {"error": "403: " + TOO_SMALL, "status_code": 403})
        self.assertFalse(os.path.exists(os.path.join(self.node.state, "cohorts", p["project_id"])))

    def test_freezing_is_once_per_project(self):
        project = str(uuid.uuid4())
        first, _ = self.persist(QUERIES["Q_ALL"].sql, project)
        self.run_all()
        facts = json.loads(self.task_result(first)["result"])
        d = os.path.join(self.node.state, "cohorts", project)
        before = {n: os.stat(os.path.join(d, n)).st_mtime_ns for n in os.listdir(d)}
        # the hub's routine re-check, and a re-check with another query: nothing re-runs
        # (OMOP unreachable proves it), the frozen facts are the answer
        self.node.set_config(OMOP_DB_PORT="1")
        tids = [self.persist(QUERIES["Q_ALL"].sql, project)[0],
                self.persist(QUERIES["Q_T2DM"].sql, project)[0]]
        self.run_all()
        for tid in tids:
            r = self.task_result(tid)
            self.assertTrue(r["success"], r)
            self.assertEqual(json.loads(r["result"]), facts)
        self.assertEqual({n: os.stat(os.path.join(d, n)).st_mtime_ns for n in os.listdir(d)},
                         before, "the snapshot is untouched")

    def test_hub_requeues_persist_to_a_frozen_trust(self):
        project = str(uuid.uuid4())
        tid, p = self.persist(QUERIES["Q_ALL"].sql, project)
        self.run_all()
        again = self.hub.requeue_persist(project)
        self.assertEqual(len(again), 1)
        self.run_all()
        self.assertEqual(json.loads(self.task_result(again[0])["result"]),
                         json.loads(self.task_result(tid)["result"]))

    def test_refusals_carry_the_status_the_hub_classifies(self):
        cases = [("SELECT gender_source_value FROM person", None, 400),
                 (QUERIES["Q_ALL"].sql, "not-a-uuid", 400)]
        tids = []
        for sql, project, _ in cases:
            p = payloads.make("persist_cohort", trust_id=self.hub.trust_id)
            p["query"] = sql
            if project:
                p["project_id"] = project
            tids.append(self.add("persist_cohort", p))
        self.run_all()
        for tid, (_, _, status) in zip(tids, cases):
            err = json.loads(self.task_result(tid)["result"])
            self.assertEqual(err["status_code"], status, err)

    def test_policy_deny_on_statistics_is_403(self):
        pol = os.path.join(self.node.root, "policy.toml")
        with open(pol, "w") as f:
            f.write('[[access.rule]]\nid = "no-stats"\naction = "cohort.statistics"\n'
                    'effect = "deny"\n')
        os.chmod(pol, 0o600)
        self.node.set_config(ACCESS_POLICY_FILE=pol)
        tid, p = self.persist(QUERIES["Q_ALL"].sql)
        self.run_all()
        err = json.loads(self.task_result(tid)["result"])
        self.assertEqual(err, {"error": "403: " + TOO_SMALL, "status_code": 403})
        self.assertFalse(os.path.exists(os.path.join(self.node.state, "cohorts", p["project_id"])))

    def test_oversized_snapshot_is_refused_not_truncated(self):
        self.node.set_config(SNAPSHOT_MAX_BYTES="64")
        tid, p = self.persist(QUERIES["Q_ALL"].sql)
        self.run_all()
        err = json.loads(self.task_result(tid)["result"])
        self.assertEqual(err["status_code"], 413)
        self.assertFalse(os.path.exists(os.path.join(self.node.state, "cohorts", p["project_id"])))

    def write_v1(self, project, sql):
        """A format 1 snapshot as flip-node wrote it before membership snapshots."""
        d = os.path.join(self.node.state, "cohorts", project)
        os.makedirs(d)
        rows = [(i, "M" if i % 2 else "F") for i in (3, 1, 2, 3, 7)] + [(None, "F")]
        meta = {"format_version": 1, "row_count": len(rows), "columns": ["person_id", "sex"],
                "kinds": ["number", "string"], "subject_count": 4, "has_accessions": False,
                "query_hash": hashlib.sha256(" ".join(sql.lower().split()).encode()).hexdigest(),
                "created_at": "2026-01-02T03:04:05Z", "project_id": project}
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f)
        for i in range(2):
            with open(os.path.join(d, "c%04d.jsonl" % i), "w") as f:
                f.write("".join(json.dumps(r[i]) + "\n" for r in rows))
        return d

    def test_format1_snapshot_is_converted_at_the_hubs_recheck(self):
        project = str(uuid.uuid4())
        sql = QUERIES["Q_ALL"].sql
        d = self.write_v1(project, sql)
        tid, _ = self.persist(sql, project)
        self.run_all()
        res = json.loads(self.task_result(tid)["result"])
        self.assertEqual((res["row_count"], res["subject_count"], res["snapshot_at"]),
                         (6, 4, "2026-01-02T03:04:05Z"))
        self.assertEqual(sorted(os.listdir(d)), ["meta.json", "persons.txt", "query.sql"])
        with open(os.path.join(d, "persons.txt")) as f:
            self.assertEqual(f.read(), "1\n2\n3\n7\n")

    def test_format1_snapshot_of_another_query_is_refused_with_what_to_do(self):
        project = str(uuid.uuid4())
        d = self.write_v1(project, "SELECT 1")
        tid, _ = self.persist(QUERIES["Q_ALL"].sql, project)
        self.run_all()
        err = json.loads(self.task_result(tid)["result"])
        self.assertEqual(err["status_code"], 409, err)
        self.assertIn("c0000.jsonl", os.listdir(d), "nothing is destroyed")
        self.assertIn("delete FLIP_STATE_DIR/cohorts/", "".join(self.node.stderr_log))


if __name__ == "__main__":
    unittest.main()
