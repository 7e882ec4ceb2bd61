# SPDX-License-Identifier: Apache-2.0
"""test_pipeline - flip-poll, flip-exec and flip-report end to end against the hub emulator.

What the hub sees when everything works: one task of each of the seven types goes
through poll, exec and report and gets exactly one result; the spool ends with every
job in done/. No OMOP database or PACS is configured here, so every handler answers a
failure: the placeholders "501: <type> is not available on this node yet" exactly,
the handlers that have landed (cohort_query, persist_cohort) their own
"<status>: <detail>" with the same status_code; a failed cohort_query also posts its
failure body to /cohort/results, before the task result. Also: the heartbeat (bodyless, snapshot, the 422 fallback,
hub.json, the one "authenticated" line and a quiet idle run), the identity check
(EXPECTED_TRUST_ID), the AES key fingerprint check, a refused API key, hub order
across polls (120 tasks, three polls of at most 50), the audit trail and its hash
chain, `--loop`, and the poll/report locks.
"""

import datetime
import hashlib
import json
import os
import time
import unittest
import uuid

import payloads
from nodeenv import (HAVE_FLIPCTL, NodeTestCase, failure_body, read_json,
                     verify_audit_chain, wait_for)


class TestHappyPath(NodeTestCase):

    def test_every_task_type_gets_exactly_one_result(self):
        sent = {t: payloads.make(t, self.hub.trust_id) for t in payloads.TASK_TYPES}
        ids = {t: self.hub.add_task(t, p) for t, p in sent.items()}
        order = [ids[t] for t in payloads.TASK_TYPES]

        self.assertRun(self.node.poll())
        # spooled in new/, in hub order, with consecutive seq numbers
        self.assertEqual(self.node.task_ids("new"), order)
        for k, name in enumerate(self.node.jobs("new"), 1):
            self.assertEqual(name[:16], "%016d" % k)
        for t, i in ids.items():
            task = self.node.job_json(i, "task.json")
            self.assertEqual(task["id"], i)
            self.assertEqual(task["task_type"], t)
            self.assertEqual(task["payload"], sent[t])
            self.assertEqual(task["created_at"], self.hub.task(i)["created_at"])
            self.assertIn("fetched_at", task)
            self.assertIsInstance(task["seq"], int)
        self.assertEqual(self.node.jobs("out"), [])

        self.assertRun(self.node.exec())
        self.assertEqual(self.node.task_ids("out"), order)
        self.assertEqual(self.node.jobs("new") + self.node.jobs("cur"), [])

        self.assertRun(self.node.report())
        # what a node with no OMOP database and no imaging project answers to each type
        no_omop = failure_body("500: OMOP database not configured on this node", 500)
        no_project = failure_body("404: Project not found", 404)
        expected = {
            "cohort_query": no_omop, "persist_cohort": no_omop,
            "create_imaging": no_omop,          # no snapshot: its live query needs OMOP
            "delete_imaging": no_project, "get_imaging_status": no_project,
            "reimport_studies": no_project,
            "update_user_profile": {"success": True, "result": None},
        }
        errors = {}
        for t, i in ids.items():
            hub_task = self.hub.task(i)
            self.assertEqual(len(hub_task["results"]), 1, t)
            want = expected[t]
            if not want["success"]:
                errors[t] = json.loads(hub_task["results"][0]["result"])["error"]
            self.assertEqual(hub_task["status"], "COMPLETED" if want["success"] else "FAILED", t)
            self.assertEqual([(r["success"], r["result"]) for r in hub_task["results"]],
                             [(want["success"], want["result"])], t)
            posts = self.result_requests(i)
            self.assertEqual(len(posts), 1, t)
            self.assertEqual(json.loads(posts[0]["body"]), want, t)
            self.assertEqual(posts[0]["status"], 200)
            # the body posted is result.json as spooled, byte for byte
            with open(os.path.join(self.node.job_dir(i), "result.json")) as f:
                self.assertEqual(json.loads(f.read()), json.loads(posts[0]["body"]))

        # the cohort query's failure body, posted before the task result
        q = sent["cohort_query"]
        cohort = self.hub.cohort_results()
        self.assertEqual(len(cohort["history"]), 1)
        today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        self.assertEqual(cohort["current"][q["query_id"]],
                         {"query_id": q["query_id"], "trust_id": self.hub.trust_id,
                          "created": today, "record_count": 0, "data": [],
                          "error": errors["cohort_query"]})
        paths = [r["path"] for r in self.hub.requests() if r["method"] == "POST"
                 and r["path"] != "/api/trust/heartbeat"]
        self.assertEqual(paths[:2], ["/api/cohort/results",
                                     "/api/tasks/%s/result" % ids["cohort_query"]])

        # the spool: everything in done/, nothing anywhere else
        self.assertEqual(self.node.task_ids("done"), order)
        self.assertSpoolSettled()
        self.assertEqual(self.node.jobs("failed") + self.node.jobs("hold"), [])
        for t, i in ids.items():
            files = set(self.node.job_files(i))
            self.assertTrue({"task.json", "result.json", "state.json"} <= files, files)
            self.assertEqual("cohort.json" in files, t == "cohort_query", t)
            self.assertEqual(self.node.job_json(i, "state.json")["outcome"], "accepted")

        # a second round finds nothing to do and posts nothing
        before = len(self.hub.requests())
        self.assertRun(self.node.exec())
        self.assertRun(self.node.report())
        self.assertEqual(len(self.hub.requests()), before)


class TestHeartbeat(NodeTestCase):

    def test_no_snapshot_sends_a_bodyless_heartbeat(self):
        self.assertRun(self.node.poll("--no-snapshot"))
        hbs = self.hub.heartbeats()
        self.assertEqual(len(hbs), 1)
        self.assertIsNone(hbs[0]["body"])
        self.assertEqual(hbs[0]["raw"], "")
        req = self.hub.requests()[0]
        self.assertEqual((req["method"], req["path"], req["body"]),
                         ("POST", "/api/trust/heartbeat", ""))
        self.assertEqual(req["headers"].get("content-length"), "0")
        self.assertEqual(req["headers"].get("authorization"), self.hub.api_key)

    def test_snapshot_is_accepted_by_the_hub(self):
        self.assertRun(self.node.poll())
        hbs = self.hub.heartbeats()
        self.assertEqual(len(hbs), 1)
        body = hbs[0]["body"]
        self.assertIsInstance(body, dict, hbs)
        self.assertIn("flip-node", body["services"])
        for name, svc in body["services"].items():
            self.assertRegex(name, r"^[a-z0-9-]{1,32}$")
            self.assertIn(svc["status"], ("healthy", "degraded", "down", "unknown"))
        self.assertEqual(self.hub.requests()[0]["headers"].get("content-type"),
                         "application/json")
        self.assertEqual([r["status"] for r in self.hub.requests()], [200, 200])

    def test_rejected_snapshot_falls_back_to_bodyless_and_still_fetches(self):
        self.hub.config(reject_snapshot=True)
        tid = self.add("delete_imaging")
        p = self.node.poll()
        self.assertRun(p)
        reqs = [(r["method"], r["path"], r["status"], bool(r["body"]))
                for r in self.hub.requests()]
        self.assertEqual(reqs, [("POST", "/api/trust/heartbeat", 422, True),
                                ("POST", "/api/trust/heartbeat", 200, False),
                                ("GET", "/api/tasks/pending", 200, False)])
        self.assertEqual([h["body"] for h in self.hub.heartbeats()], [None])
        self.assertEqual(self.node.task_ids("new"), [tid])
        self.assertIn("422", p.stderr)

    def test_reply_kept_in_state_dir(self):
        self.hub.config(hub_version="9.8.7")
        self.assertRun(self.node.poll("--no-snapshot"))
        path = os.path.join(self.node.state, "hub.json")
        self.assertTrue(os.path.exists(path), os.listdir(self.node.state))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        kept = read_json(path)
        self.assertEqual(kept["reply"]["trust_id"], self.hub.trust_id)
        self.assertEqual(kept["reply"]["trust_name"], "Trust_1")
        self.assertEqual(kept["reply"]["hub_version"], "9.8.7")

    def test_authenticated_logged_once_and_idle_runs_are_quiet(self):
        p = self.node.poll()
        self.assertRun(p)
        line = "authenticated to hub as trust Trust_1 (%s)" % self.hub.trust_id
        self.assertEqual(p.stderr.count(line), 1, p.stderr)
        for _ in range(2):
            p = self.node.poll()
            self.assertRun(p)
            self.assertEqual(p.stderr, "", "an idle poll must write nothing at info")
        self.assertEqual(self.node.exec().stderr, "")
        self.assertEqual(self.node.report().stderr, "")
        # a different trust name/id on the hub is announced again
        self.hub.config(trust_id=str(uuid.uuid4()), trust_name="Trust_2")
        p = self.node.poll()
        self.assertIn("authenticated to hub as trust Trust_2", p.stderr)

    def test_authenticated_logged_by_poll_after_doctor(self):
        # deploy-on-prem.md: doctor (step 5) heartbeats before the timers start, and
        # flip-poll's journal must still show the line step 7 tells the operator to see
        self.node.flipctl("doctor")
        self.assertTrue(os.path.exists(os.path.join(self.node.state, "hub.json")))
        p = self.node.poll()
        self.assertRun(p)
        self.assertIn("authenticated to hub as trust Trust_1 (%s)" % self.hub.trust_id,
                      p.stderr)


class TestIdentity(NodeTestCase):

    def test_other_trust_id_exits_2_before_fetching(self):
        other = str(uuid.uuid4())
        self.node.set_config(EXPECTED_TRUST_ID=other)
        tid = self.add("delete_imaging")
        p = self.node.poll()
        self.assertRun(p, 2)
        self.assertIn(other, p.stderr)
        self.assertIn(self.hub.trust_id, p.stderr)
        self.assertIn("EXPECTED_TRUST_ID", p.stderr)
        self.assertEqual(self.pending_requests(), [])
        self.assertEqual([r["path"] for r in self.hub.requests()], ["/api/trust/heartbeat"])
        self.assertEqual(self.hub.task(tid)["status"], "PENDING")
        self.assertEqual(self.hub.task(tid)["deliveries"], 0)
        self.assertEqual({k: v for k, v in self.node.spool_snapshot().items() if v and k != "seq"},
                         {})
        # --loop stops at once too
        t0 = time.monotonic()
        self.assertRun(self.node.poll("--loop", "10", "--no-snapshot"), 2)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(self.pending_requests(), [])

    def test_matching_trust_id_any_case(self):
        self.node.set_config(EXPECTED_TRUST_ID=self.hub.trust_id.upper())
        tid = self.add("delete_imaging")
        self.assertRun(self.node.poll())
        self.assertEqual(self.node.task_ids("new"), [tid])


class TestFingerprint(NodeTestCase):

    def ours(self):
        return hashlib.sha256(self.hub.aes_key).hexdigest()[:12]

    def test_mismatch_is_logged_with_both_and_work_goes_on(self):
        self.hub.config(fingerprint="abcdef012345")
        tid = self.add("delete_imaging")
        p = self.node.poll()
        self.assertRun(p)
        lines = [l for l in p.stderr.splitlines() if "abcdef012345" in l]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn(self.ours(), lines[0])
        self.assertIn("error", lines[0])
        self.assertEqual(self.node.task_ids("new"), [tid])
        self.assertFalse(read_json(os.path.join(self.node.state, "hub.json"))
                         ["fingerprint_match"])

    def test_matching_or_absent_fingerprint_is_no_error(self):
        tid = self.add("delete_imaging")
        p = self.node.poll()          # the emulator sends the matching fingerprint
        self.assertRun(p)
        self.assertNotIn("fingerprint", p.stderr)
        self.assertNotIn("error", p.stderr)
        self.hub.config(fingerprint=None)
        tid2 = self.add("delete_imaging")
        p = self.node.poll()
        self.assertRun(p)
        self.assertNotIn("fingerprint", p.stderr)
        self.assertNotIn("error", p.stderr)
        self.assertEqual(self.node.task_ids("new"), [tid, tid2])


class TestApiKey(NodeTestCase):

    def test_refused_key_exits_1_fetches_nothing_and_hides_the_key(self):
        wrong = "wrong-" + uuid.uuid4().hex
        self.node.set_config(TRUST_API_KEY=wrong)
        tid = self.add("delete_imaging")
        p = self.node.poll()
        self.assertRun(p, 1)
        self.assertIn("401", p.stderr)
        self.assertNotIn(wrong, p.stderr + p.stdout)
        self.assertNotIn(self.hub.api_key, p.stderr + p.stdout)
        self.assertEqual(self.pending_requests(), [])
        self.assertEqual(self.hub.task(tid)["deliveries"], 0)
        self.assertEqual([v for k, v in self.node.spool_snapshot().items()
                          if k != "seq" and v], [])
        # the header carried the configured key, raw
        self.assertEqual(self.hub.requests()[0]["headers"]["authorization"], wrong)

    def test_refused_key_on_report_keeps_results(self):
        tid = self.add("delete_imaging")
        self.assertRun(self.node.poll())
        self.assertRun(self.node.exec())
        wrong = "wrong-" + uuid.uuid4().hex
        self.node.set_config(TRUST_API_KEY=wrong)
        p = self.node.report()
        self.assertRun(p, 1)
        self.assertNotIn(wrong, p.stderr)
        self.assertEqual(self.node.task_ids("out"), [tid])
        self.assertEqual(self.hub.task(tid)["results"], [])
        self.node.set_config(TRUST_API_KEY=self.hub.api_key)
        self.node.make_due()
        self.assertRun(self.node.report())
        self.assertExactlyOnce([tid])


class TestHubOrder(NodeTestCase):

    def test_120_tasks_three_polls_in_hub_order_reported_once(self):
        base = datetime.datetime(2024, 1, 1, 12, 0, 0)
        specs = []
        for k in range(120):
            t = payloads.TASK_TYPES[k % 7]
            specs.append({"task_type": t, "payload": payloads.make(t, self.hub.trust_id),
                          "created_at": (base + datetime.timedelta(seconds=k)).isoformat()})
        # queue them shuffled: the hub orders by created_at, not by insertion
        order = list(range(120))
        order = order[1::2] + order[0::2]
        ids_by_k = dict(zip(order, self.hub.add_tasks([specs[k] for k in order])))
        hub_order = [ids_by_k[k] for k in range(120)]

        counts = []
        for _ in range(3):
            self.assertRun(self.node.poll("--no-snapshot"))
            counts.append(len(self.node.jobs("new")))
        self.assertEqual(counts, [50, 100, 120])
        self.assertEqual([r["status"] for r in self.pending_requests()], [200, 200, 200])
        seqs = [self.node.job_json(i, "task.json")["seq"] for i in hub_order]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(set(seqs)), 120)
        # the names carry the same seq; listing new/ gives the hub's order
        self.assertEqual(self.node.task_ids("new"), hub_order)
        for i, s in zip(hub_order, seqs):
            self.assertEqual(self.node.find_job(i), ("new", "%016d-%s" % (s, i)))

        self.assertRun(self.node.poll("--no-snapshot"))  # nothing left to fetch
        self.assertEqual(len(self.node.jobs("new")), 120)
        self.assertRun(self.node.exec())
        self.assertRun(self.node.report())
        self.assertExactlyOnce(hub_order)
        self.assertEqual(len(self.result_requests()), 120)
        # reported in hub order too
        posted = [r["path"].split("/")[3] for r in self.result_requests()]
        self.assertEqual(posted, hub_order)
        self.assertSpoolSettled()


class TestAudit(NodeTestCase):

    def test_events_and_hash_chain(self):
        tid = self.add("update_user_profile")
        qid = self.add("cohort_query")
        for p in self.node.cycle(snapshot=True):
            self.assertRun(p)
        lines = self.node.audit_lines()
        self.assertIsNone(verify_audit_chain(lines))
        events = [json.loads(line) for line in lines]
        for e in events:
            self.assertEqual(set(e) >= {"ts", "prog", "pid", "event", "task_id", "task_type",
                                        "detail", "prev", "hash"}, True, e)
            self.assertRegex(e["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        for i, t in ((tid, "update_user_profile"), (qid, "cohort_query")):
            mine = [(e["event"], e["prog"]) for e in events if e["task_id"] == i]
            names = [m[0] for m in mine]
            for ev in ("task.fetched", "task.started", "task.finished", "result.reported"):
                self.assertIn(ev, names, (i, mine))
            self.assertLess(names.index("task.fetched"), names.index("task.started"))
            self.assertLess(names.index("task.finished"), names.index("result.reported"))
            self.assertTrue(all(e["task_type"] == t for e in events if e["task_id"] == i))
        # no SQL text in the trail
        self.assertNotIn("omop.person", "\n".join(lines))
        # the Python check catches an edit
        bad = list(lines)
        bad[1] = bad[1].replace('"event":"', '"event":"x', 1)
        self.assertIsNotNone(verify_audit_chain(bad))
        self.assertIsNotNone(verify_audit_chain(lines[:1] + lines[2:]))

    @unittest.skipUnless(HAVE_FLIPCTL, "flipctl is not built yet")
    def test_flipctl_audit_verify(self):
        self.add("delete_imaging")
        for p in self.node.cycle():
            self.assertRun(p)
        self.assertRun(self.node.flipctl("audit", "verify"))
        lines = self.node.audit_lines()
        with open(self.node.audit_path(), "w") as f:
            f.write("\n".join(lines[:1] + lines[2:]) + "\n")
        self.assertNotEqual(self.node.flipctl("audit", "verify").returncode, 0)


class TestLoopAndLocks(NodeTestCase):

    def test_loop_heartbeats_every_interval(self):
        self.node.set_config(POLL_INTERVAL_SECONDS=1)
        t0 = time.monotonic()
        p = self.node.poll("--loop", "3", "--no-snapshot")
        took = time.monotonic() - t0
        self.assertRun(p)
        n = len(self.hub.heartbeats())
        self.assertTrue(2 <= n <= 4, "%d heartbeats in --loop 3" % n)
        self.assertEqual(len(self.pending_requests()), n)
        self.assertTrue(1.5 <= took <= 6, took)

    def test_loop_picks_up_tasks_queued_meanwhile(self):
        self.node.set_config(POLL_INTERVAL_SECONDS=1)
        proc = self.node.popen("flip-poll", "--loop", "3", "--no-snapshot")
        try:
            self.assertTrue(wait_for(lambda: self.hub.heartbeats(), 5))
            tid = self.add("delete_imaging")
            _out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(self.node.task_ids("new"), [tid])

    def test_second_poll_exits_at_once_while_one_holds_the_lock(self):
        self.hub.fault(path="/api/trust/heartbeat", kind="slow", delay=3)
        tid = self.add("delete_imaging")
        first = self.node.popen("flip-poll", "--no-snapshot")
        try:
            self.assertTrue(wait_for(lambda: self.hub.requests(), 5))
            t0 = time.monotonic()
            p = self.node.poll("--no-snapshot")
            self.assertRun(p)
            self.assertLess(time.monotonic() - t0, 2.0)
            self.assertEqual(len(self.hub.requests()), 1, "the second poll called the hub")
            _out, err = first.communicate(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        self.assertEqual(first.returncode, 0, err)
        self.assertEqual(self.node.task_ids("new"), [tid])

    def test_second_report_exits_at_once_while_one_holds_the_lock(self):
        tid = self.add("delete_imaging")
        self.assertRun(self.node.poll("--no-snapshot"))
        self.assertRun(self.node.exec())
        self.hub.fault(path="/api/tasks/", kind="slow", delay=3)
        first = self.node.popen("flip-report")
        try:
            self.assertTrue(wait_for(lambda: self.result_requests(), 5))
            t0 = time.monotonic()
            self.assertRun(self.node.report())
            self.assertLess(time.monotonic() - t0, 2.0)
            self.assertEqual(len(self.result_requests()), 1)
            _out, err = first.communicate(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        self.assertEqual(first.returncode, 0, err)
        self.assertExactlyOnce([tid])
        self.assertSpoolSettled()

    def test_report_takes_a_result_that_lands_while_it_runs(self):
        # flip-report.path does not start a second run while one is active: the run
        # itself must look at out/ again, or the result waits for the 30 s timer
        first_id = self.add("delete_imaging")
        self.assertRun(self.node.poll("--no-snapshot"))
        self.assertRun(self.node.exec())
        second_id = self.add("delete_imaging")
        self.assertRun(self.node.poll("--no-snapshot"))
        self.hub.fault(path="/api/tasks/", kind="slow", delay=3)
        report = self.node.popen("flip-report")
        try:
            self.assertTrue(wait_for(lambda: self.result_requests(), 5))
            self.assertRun(self.node.exec())        # the second result lands in out/ now
            self.assertEqual(self.node.task_ids("out"), [first_id, second_id])
            _out, err = report.communicate(timeout=30)
        finally:
            if report.poll() is None:
                report.kill()
                report.wait()
        self.assertEqual(report.returncode, 0, err)
        self.assertExactlyOnce([first_id, second_id])
        self.assertSpoolSettled()


if __name__ == "__main__":
    unittest.main()
