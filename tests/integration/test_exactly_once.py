# SPDX-License-Identifier: Apache-2.0
"""test_exactly_once - every task gets exactly one accepted result, whatever happens.

The hub has no acknowledgement call: fetching claims, and a second result for a task
is refused with 409. These tests drive the node through what breaks that in real
life and check the emulator's record (each task's `results` list has one entry) and
the spool (nothing left in tmp/, new/, cur/, out/):

- re-delivery: the hub requeues a task before its result arrives (409, failed/,
  then re-delivered: back to out/ and reported); a requeued task still in new/ is
  left alone and runs once;
- upload faults: a 500 burst (backoff recorded in state.json), a 500 after the hub
  stored the result (the next 409 means done/, with a note), dropped connections
  before and after processing, a truncated answer, 429, and the final 403/404/422
  (failed/ with the hub's words, never retried); a cohort result fault;
- crashes: FLIP_CRASH_AT at each of the nine crash points exits 99 and re-running
  the stages recovers; the release build ignores FLIP_CRASH_AT;
- a lost answer to the fetch (the hub claimed, the node never saw the tasks): the
  tasks come back after the stale requeue and are spooled once;
- randomized soaks: 200 tasks queued in waves, stages run in random order, ~30% of
  runs crash at a random point (name@N), tasks IN_PROGRESS for more than ~1 s are
  requeued (by the test, as the hub's stale check would); the second soak also puts a
  random hub fault before ~30% of the runs. The seed is printed and can be set with
  FLIP_SOAK_SEED; each soak fails after 120 s.
"""

import json
import os
import random
import time
import unittest

import payloads
from hubclient import HubError
from nodeenv import EXIT_CRASH, Node, NodeTestCase

CRASH_POINTS = ("poll.after_fetch", "poll.mid_spool", "poll.after_spool",
                "exec.after_claim", "exec.mid_handler", "exec.after_result",
                "report.after_cohort_post", "report.after_post", "report.after_state")


class TestRedelivery(NodeTestCase):

    def test_requeued_before_report_409_then_redelivered_and_reported(self):
        tid = self.add("delete_imaging")
        self.assertRun(self.node.poll())
        self.assertRun(self.node.exec())
        self.hub.requeue(tid)                       # the hub's 30-minute requeue, early
        self.assertRun(self.node.report())
        self.assertEqual(self.node.task_ids("failed"), [tid])
        st = self.node.job_json(tid, "state.json")
        self.assertEqual(st["outcome"], "refused")
        self.assertEqual(st["result_status"], 409)
        self.assertIn("not in progress", st["result_detail"])
        self.assertNotIn("note", st)
        self.assertEqual(self.hub.task(tid)["results"], [])
        self.assertEqual(self.hub.task(tid)["status"], "PENDING")

        p = self.node.poll()                        # re-delivered: back to out/
        self.assertRun(p)
        self.assertIn("re-delivered", p.stderr)
        self.assertEqual(self.node.task_ids("out"), [tid])
        self.assertEqual(self.node.job_json(tid, "state.json")["redeliveries"], 1)
        self.assertRun(self.node.exec())            # nothing to run again
        self.assertRun(self.node.report())
        self.assertEqual(self.node.task_ids("done"), [tid])
        self.assertExactlyOnce([tid])
        self.assertEqual(self.hub.task(tid)["deliveries"], 2)
        started = [e for e in self.node.audit_events()
                   if e["event"] == "task.started" and e["task_id"] == tid]
        self.assertEqual(len(started), 1)
        self.assertSpoolSettled()

    def test_requeued_while_in_new_is_left_alone_and_runs_once(self):
        tid = self.add("update_user_profile")
        self.assertRun(self.node.poll())
        name = self.node.jobs("new")
        self.hub.requeue(tid)
        self.assertRun(self.node.poll())
        self.assertEqual(self.node.jobs("new"), name)
        self.assertEqual(self.hub.task(tid)["deliveries"], 2)
        self.assertEqual(self.node.spool_snapshot()["seq"], "1")
        self.assertRun(self.node.exec())
        self.assertRun(self.node.report())
        self.assertExactlyOnce([tid])
        started = [e for e in self.node.audit_events()
                   if e["event"] == "task.started" and e["task_id"] == tid]
        self.assertEqual(len(started), 1)
        self.assertSpoolSettled()

    def test_redelivery_while_waiting_in_out_makes_it_due_now(self):
        tid = self.add("delete_imaging")
        self.assertRun(self.node.poll())
        self.assertRun(self.node.exec())
        self.hub.fault(path="/api/tasks/%s/result" % tid, kind="status", status=503)
        self.assertRun(self.node.report(), 1)
        st = self.node.job_json(tid, "state.json")
        self.assertGreater(st["next_attempt_at"], time.time())
        self.hub.requeue(tid)
        self.assertRun(self.node.poll())
        st = self.node.job_json(tid, "state.json")
        self.assertEqual(st["next_attempt_at"], 0)
        self.assertEqual(st["attempts"], 0)
        self.assertRun(self.node.report())
        self.assertEqual(self.node.task_ids("done"), [tid])
        self.assertExactlyOnce([tid])


class TestUploadFaults(NodeTestCase):

    def ready(self, task_type="delete_imaging"):
        """One task fetched and run; its result waits in out/."""
        tid = self.add(task_type)
        self.assertRun(self.node.poll("--no-snapshot"))
        self.assertRun(self.node.exec())
        self.assertEqual(self.node.task_ids("out"), [tid])
        return tid

    def path(self, tid):
        return "/api/tasks/%s/result" % tid

    def test_500_burst_backs_off_then_one_result(self):
        tid = self.ready()
        self.hub.fault(path=self.path(tid), kind="status", status=500, count=3)
        for attempt in (1, 2, 3):
            self.assertRun(self.node.report(), 1)
            st = self.node.job_json(tid, "state.json")
            self.assertEqual(st["attempts"], attempt)
            self.assertEqual(st["result_status"], 500)
            delay = st["next_attempt_at"] - st["last_attempt_at"]
            base = 2.0 * 2 ** (attempt - 1)
            self.assertTrue(0.5 * base - 0.1 <= delay <= base + 0.1,
                            "attempt %d: delay %.2f s, want [%g, %g]"
                            % (attempt, delay, base / 2, base))
            self.assertEqual(self.node.task_ids("out"), [tid])
            # not due yet: a run now posts nothing and exits 0
            n = len(self.result_requests(tid))
            self.assertRun(self.node.report())
            self.assertEqual(len(self.result_requests(tid)), n)
            self.node.make_due(tid)
        self.assertRun(self.node.report())
        self.assertEqual(self.node.task_ids("done"), [tid])
        self.assertEqual([r["status"] for r in self.result_requests(tid)], [500, 500, 500, 200])
        self.assertExactlyOnce([tid])
        self.assertSpoolSettled()

    def test_after_status_500_then_409_means_done_with_note(self):
        tid = self.ready()
        self.hub.fault(path=self.path(tid), kind="after_status", status=500)
        self.assertRun(self.node.report(), 1)
        self.assertEqual(len(self.hub.task(tid)["results"]), 1)   # stored, answer lost
        self.assertEqual(self.node.task_ids("out"), [tid])
        self.assertTrue(self.node.job_json(tid, "state.json")["maybe_accepted"])
        self.node.make_due(tid)
        self.assertRun(self.node.report())
        self.assertEqual(self.node.task_ids("done"), [tid])
        self.assertEqual(self.node.task_ids("failed"), [])
        st = self.node.job_json(tid, "state.json")
        self.assertEqual(st["result_status"], 409)
        self.assertEqual(st["outcome"], "accepted")
        self.assertIn("409 after an earlier attempt", st["note"])
        self.assertEqual([r["status"] for r in self.result_requests(tid)], [500, 409])
        self.assertExactlyOnce([tid])
        reported = [e for e in self.node.audit_events() if e["event"] == "result.reported"]
        self.assertEqual(len(reported), 1)

    def check_lost_answer(self, kind, processed):
        tid = self.ready()
        self.hub.fault(path=self.path(tid), kind=kind)
        self.assertRun(self.node.report(), 1)
        self.assertEqual(len(self.hub.task(tid)["results"]), 1 if processed else 0)
        st = self.node.job_json(tid, "state.json")
        self.assertEqual(st["attempts"], 1)
        self.assertEqual(self.node.task_ids("out"), [tid])
        self.node.make_due(tid)
        self.assertRun(self.node.report())
        self.assertEqual(self.node.task_ids("done"), [tid])
        st = self.node.job_json(tid, "state.json")
        self.assertEqual(st["result_status"], 409 if processed else 200)
        self.assertEqual("note" in st, processed)
        self.assertExactlyOnce([tid])
        self.assertSpoolSettled()

    def test_drop_before_processing(self):
        self.check_lost_answer("drop", processed=False)

    def test_reset_before_processing(self):
        self.check_lost_answer("reset", processed=False)

    def test_drop_after_processing(self):
        self.check_lost_answer("drop_after", processed=True)

    def test_truncated_answer(self):
        self.check_lost_answer("truncate", processed=True)

    def test_answer_lost_on_a_reused_connection(self):
        # Regression (found by the faults soak, fixed in lib/hub.c + bin/flip-report/report.c with
        # hub_reply.maybe_resent): when the hub processes a result POST and the
        # connection closes before any answer (drop_after), libcurl silently re-sends
        # the POST if the connection was a reused one ("Connection died, retrying a
        # fresh connect"); the re-sent POST gets 409, which report_job() used to take
        # as final: failed/, "result.refused", an error line, for an accepted result.
        # The first job of a run uses a fresh connection, hence the second job here.
        first = self.add("delete_imaging")
        tid = self.add("delete_imaging")
        self.assertRun(self.node.poll("--no-snapshot"))
        self.assertRun(self.node.exec())
        self.hub.fault(path=self.path(tid), kind="drop_after")
        self.node.report()
        self.node.make_due()
        self.node.report()
        self.assertExactlyOnce([first, tid])
        self.assertEqual(sorted(self.node.task_ids("done")), sorted([first, tid]),
                         "job of an accepted result is in failed/; state.json: %r"
                         % self.node.job_json(tid, "state.json"))
        refused = [e for e in self.node.audit_events() if e["event"] == "result.refused"]
        self.assertEqual(refused, [])

    def test_429_is_retried_and_not_taken_for_acceptance(self):
        tid = self.ready()
        self.hub.fault(path=self.path(tid), kind="status", status=429)
        self.assertRun(self.node.report(), 1)
        st = self.node.job_json(tid, "state.json")
        self.assertEqual((st["attempts"], st["result_status"], st["maybe_accepted"]),
                         (1, 429, False))
        self.node.make_due(tid)
        self.assertRun(self.node.report())
        self.assertEqual(self.node.task_ids("done"), [tid])
        self.assertNotIn("note", self.node.job_json(tid, "state.json"))
        self.assertExactlyOnce([tid])

    def test_final_refusals_go_to_failed_with_the_hubs_words(self):
        ids = {}
        for status in (403, 404, 422):
            ids[status] = self.add("delete_imaging")
        self.assertRun(self.node.poll("--no-snapshot"))
        self.assertRun(self.node.exec())
        for status, tid in ids.items():
            self.hub.fault(path=self.path(tid), kind="status", status=status,
                           body={"detail": "hub says %d for %s" % (status, tid)})
        p = self.node.report()
        self.assertRun(p)
        self.assertEqual(sorted(self.node.task_ids("failed")), sorted(ids.values()))
        for status, tid in ids.items():
            st = self.node.job_json(tid, "state.json")
            self.assertEqual(st["result_status"], status)
            self.assertEqual(st["result_detail"], "hub says %d for %s" % (status, tid))
            self.assertEqual(st["outcome"], "refused")
            self.assertIn("hub says %d" % status, p.stderr)
        refused = [e["task_id"] for e in self.node.audit_events() if e["event"] == "result.refused"]
        self.assertEqual(sorted(refused), sorted(ids.values()))
        # never retried
        n = len(self.result_requests())
        self.node.make_due()
        self.assertRun(self.node.report())
        self.assertEqual(len(self.result_requests()), n)
        self.assertEqual(n, 3)
        self.assertSpoolSettled()

    def test_cohort_results_first_and_retried_alone(self):
        tid = self.ready("cohort_query")
        self.hub.fault(path="/api/cohort/results", kind="status", status=502)
        self.assertRun(self.node.report(), 1)
        self.assertEqual(self.result_requests(tid), [])   # task result waits for the cohort
        st = self.node.job_json(tid, "state.json")
        self.assertEqual((st["attempts"], st["cohort_status"]), (1, 502))
        self.node.make_due(tid)
        # now the cohort body is stored but its answer is lost: re-posting is harmless
        self.hub.fault(path="/api/cohort/results", kind="after_status", status=500)
        self.assertRun(self.node.report(), 1)
        self.assertEqual(self.result_requests(tid), [])
        self.node.make_due(tid)
        self.assertRun(self.node.report())
        self.assertTrue(self.node.job_json(tid, "state.json")["cohort_accepted"])
        self.assertEqual(len(self.hub.cohort_results()["current"]), 1)
        self.assertExactlyOnce([tid])
        # accepted cohort results are not posted again when the task result needs a retry
        self.assertEqual(self.node.task_ids("done"), [tid])

    def test_task_result_retry_does_not_repost_cohort(self):
        tid = self.ready("cohort_query")
        self.hub.fault(path=self.path(tid), kind="status", status=500)
        self.assertRun(self.node.report(), 1)
        self.node.make_due(tid)
        self.assertRun(self.node.report())
        cohort_posts = [r for r in self.hub.requests() if r["path"] == "/api/cohort/results"]
        self.assertEqual(len(cohort_posts), 1)
        self.assertExactlyOnce([tid])


class TestLostFetch(NodeTestCase):
    """The hub claimed tasks but its answer to GET /tasks/pending never arrived whole:
    nothing is spooled, and the tasks come back (once each) after the stale requeue."""

    def test_claimed_tasks_whose_answer_was_lost_come_back(self):
        # Regression (was a bug in bin/flip-poll/intake.c intake_fetch()): the GET follows the
        # heartbeat on the same connection, so when the hub claims the tasks and the
        # connection dies before the answer, libcurl silently sends the GET again; the
        # second claims nothing. flip-poll now says so and exits 1.
        for kind, status in (("after_status", 500), ("drop_after", None), ("truncate", None)):
            with self.subTest(kind=kind):
                self.hub.reset()
                self.node = Node(os.path.join(self.tmp, "node-" + kind), self.hub)
                ids = [self.add("delete_imaging"), self.add("update_user_profile")]
                rule = {"path": "/api/tasks/pending", "kind": kind}
                if status:
                    rule["status"] = status
                self.hub.fault(**rule)
                p = self.node.poll("--no-snapshot")
                self.assertTrue(all(self.hub.task(i)["status"] == "IN_PROGRESS" for i in ids))
                self.assertEqual([self.node.find_job(i) for i in ids], [None, None])
                self.assertRun(p, 1)
                self.assertIn("fetching tasks failed", p.stderr)
                self.assertEqual([self.node.find_job(i) for i in ids], [None, None])
                self.assertEqual(sorted(self.hub.requeue_stale(older_than=0)), sorted(ids))
                self.assertRun(self.node.poll("--no-snapshot"))
                self.assertEqual([self.node.find_job(i)[0] for i in ids], ["new", "new"])
                self.assertRun(self.node.exec())
                self.assertRun(self.node.report())
                self.assertExactlyOnce(ids)
                self.assertSpoolSettled()


class TestCrashPoints(NodeTestCase):

    def settle(self, node, ids, rounds=6):
        for _ in range(rounds):
            for p in (node.poll("--no-snapshot"), node.exec()):
                self.assertIn(p.returncode, (0,), p.stderr)
            node.make_due()
            self.assertRun(node.report())
            if all(self.hub.task(i)["status"] in ("COMPLETED", "FAILED") for i in ids):
                # one more exec/report so nothing stays behind in the spool
                self.assertRun(node.exec())
                node.make_due()
                self.assertRun(node.report())
                return
        self.fail("did not settle: %r" % {i: self.hub.task(i)["status"] for i in ids})

    def test_each_crash_point_exits_99_and_recovers(self):
        for point in CRASH_POINTS:
            with self.subTest(point=point):
                self.hub.reset()
                node = Node(os.path.join(self.tmp, "node-" + point), self.hub)
                self.node = node
                ids = [self.add("cohort_query"), self.add("delete_imaging"),
                       self.add("update_user_profile")]
                stage = point.split(".")[0]
                if stage != "poll":
                    self.assertRun(node.poll("--no-snapshot"))
                    if stage == "report":
                        self.assertRun(node.exec())
                run = {"poll": node.poll, "exec": node.exec, "report": node.report}[stage]
                p = run(crash_at=point)
                self.assertEqual(p.returncode, EXIT_CRASH, "%s: %s" % (point, p.stderr))
                self.check_after_crash(point, node, ids)
                if point in ("poll.after_fetch", "poll.mid_spool"):
                    # claimed on the hub, not (all) on disk: the hub's stale requeue
                    moved = self.hub.requeue_stale(older_than=0)
                    self.assertEqual(sorted(moved), sorted(ids))
                self.settle(node, ids)
                self.assertExactlyOnce(ids)
                self.assertSpoolSettled()
                self.assertEqual(sorted(node.task_ids("done")), sorted(ids))
                self.assertEqual(len(self.hub.cohort_results()["current"]), 1)

    def check_after_crash(self, point, node, ids):
        """What the spool and the hub look like right after the crash."""
        snap = node.spool_snapshot()
        first = ids[0]   # the oldest task: the first one each stage works on
        if point == "poll.after_fetch":
            self.assertEqual([v for k, v in snap.items() if k != "seq" and v], [])
            self.assertTrue(all(self.hub.task(i)["status"] == "IN_PROGRESS" for i in ids))
        elif point == "poll.mid_spool":
            self.assertEqual(node.task_ids("new"), [first])
            self.assertEqual(len(snap["tmp"]), 2)
        elif point == "poll.after_spool":
            self.assertEqual(node.task_ids("new"), ids)
        elif point in ("exec.after_claim", "exec.mid_handler", "exec.after_result"):
            self.assertEqual(node.task_ids("cur"), [first])
            self.assertEqual(node.task_ids("new"), ids[1:])
            self.assertEqual("result.json" in node.job_files(first),
                             point == "exec.after_result")
        elif point == "report.after_cohort_post":
            self.assertEqual(len(self.hub.cohort_results()["history"]), 1)
            self.assertEqual(self.result_requests(), [])
            self.assertEqual(node.task_ids("out"), ids)
        elif point in ("report.after_post", "report.after_state"):
            self.assertEqual(len(self.hub.task(first)["results"]), 1)
            self.assertEqual(node.task_ids("out"), ids)
            st = node.job_json(first, "state.json")
            self.assertEqual(st.get("outcome") == "accepted", point == "report.after_state")

    def test_audit_trail_complete_after_a_crash_at_after_spool(self):
        # Regression (was a gap in bin/flip-poll/intake.c intake_accept()): the task.fetched
        # audit lines are now written before any job becomes visible, so a crash at
        # poll.after_spool cannot leave a job that runs without its record.
        ids = [self.add("delete_imaging"), self.add("update_user_profile")]
        self.assertEqual(self.node.poll(crash_at="poll.after_spool").returncode, EXIT_CRASH)
        self.settle(self.node, ids)
        self.assertExactlyOnce(ids)
        for i in ids:
            events = [e["event"] for e in self.node.audit_events() if e["task_id"] == i]
            self.assertIn("task.fetched", events, "task %s: %r" % (i, events))

    def test_crash_at_nth_hit(self):
        ids = [self.add("delete_imaging") for _ in range(4)]
        self.assertRun(self.node.poll("--no-snapshot"))
        p = self.node.exec(crash_at="exec.after_result@3")
        self.assertEqual(p.returncode, EXIT_CRASH)
        self.assertEqual(self.node.task_ids("out"), ids[:2])
        self.assertEqual(self.node.task_ids("cur"), ids[2:3])
        p = self.node.report(crash_at="report.after_post@2")
        self.assertEqual(p.returncode, EXIT_CRASH)
        self.assertEqual(self.node.task_ids("done"), ids[:1])
        self.settle(self.node, ids)
        self.assertExactlyOnce(ids)
        self.assertSpoolSettled()

    def test_release_build_ignores_crash_at(self):
        ids = [self.add("cohort_query"), self.add("delete_imaging")]
        for point in CRASH_POINTS:
            prog = {"poll": "flip-poll", "exec": "flip-exec", "report": "flip-report"}[
                point.split(".")[0]]
            p = self.node.run(prog, crash_at=point, release=True)
            self.assertRun(p, 0, "release %s with FLIP_CRASH_AT=%s" % (prog, point))
        self.assertExactlyOnce(ids)
        self.assertSpoolSettled()
        # and the test build does honour it (the variable reaches the program)
        self.add("delete_imaging")
        self.assertEqual(self.node.poll(crash_at="poll.after_fetch").returncode, EXIT_CRASH)


class TestSoak(NodeTestCase):

    maxDiff = None

    TASKS = 200
    WAVE = 4            # tasks are queued in waves while the stages run
    BUDGET = 120.0
    # points reached once per run: only @1 can fire; the others once per job
    ONCE_PER_RUN = ("poll.after_fetch", "poll.after_spool")

    FAULTS = (("status", 500), ("status", 503), ("status", 429), ("after_status", 500),
              ("after_status", 502), ("drop", None), ("drop_after", None), ("truncate", None),
              ("reset", None))
    FAULT_PATHS = (("/api/tasks/pending", "GET"), ("/api/tasks/", "POST"),
                   ("/api/cohort/results", "POST"), ("/api/trust/heartbeat", "POST"))

    STALE = 1.0

    def requeue_stale(self):
        """The hub's stale check with a ~1 s timeout, done by the test: every task
        IN_PROGRESS for more than STALE seconds goes back to PENDING, except that after
        the hub's 3 retries a task is left IN_PROGRESS when the node holds it where it
        will finish on its own (new/, cur/, out/): the hub would fail it instead, which
        on a loaded machine says more about the machine than about the node. Returns
        how many tasks were requeued."""
        moved = 0
        now = time.time()
        for t in self.hub.tasks():
            if t["status"] != "IN_PROGRESS" or now - t["updated_at"] <= self.STALE:
                continue
            where = self.node.find_job(t["id"])
            if t["retries"] >= 3 and where and where[0] in ("new", "cur", "out"):
                continue
            try:
                self.hub.requeue(t["id"])
                moved += 1
            except HubError:    # reported meanwhile: no longer IN_PROGRESS
                pass
        return moved

    def explain(self, task_id):
        """Where a job is, its state.json and log, and the hub's record, for a message."""
        where = self.node.find_job(task_id)
        files = {}
        if where:
            d = self.node.job_dir(task_id)
            for name in ("state.json", "log"):
                if os.path.exists(os.path.join(d, name)):
                    with open(os.path.join(d, name)) as f:
                        files[name] = f.read()
        t = self.hub.task(task_id)
        return {"where": where, "files": files,
                "hub": {k: t[k] for k in ("status", "retries", "deliveries", "results")},
                "requests": [(r["method"], r["status"], r["handled_status"], r["fault"])
                             for r in self.hub.requests() if task_id in r["path"]]}

    def test_random_crashes_and_requeues(self):
        self.soak(faults=False)

    def test_random_crashes_requeues_and_hub_faults(self):
        """The same with a random hub fault (5xx, 429, a stored result whose answer is
        lost, dropped or truncated answers) before ~30% of the runs."""
        self.soak(faults=True)

    def soak(self, faults):
        seed = int(os.environ.get("FLIP_SOAK_SEED", "20240611")) + faults
        print("\nsoak%s seed: %d (set FLIP_SOAK_SEED to replay)"
              % (" with faults" if faults else "", seed - faults), flush=True)
        rng = random.Random(seed)
        # The test plays the hub's stale check itself (requeue_stale below), so that a
        # slow or loaded machine cannot push tasks into the hub's retry limit.
        self.hub.config(stale_seconds=3600.0)
        specs = []
        for k in range(self.TASKS):
            t = payloads.TASK_TYPES[k % 7]
            specs.append({"task_type": t, "payload": payloads.make(t, self.hub.trust_id)})
        ids = []
        stages = {"poll": lambda **kw: self.node.poll("--no-snapshot", **kw),
                  "exec": self.node.exec, "report": self.node.report}
        points = {s: [p for p in CRASH_POINTS if p.startswith(s + ".")] for s in stages}
        runs = crashes = requeued = 0
        t0 = time.monotonic()

        def settled():
            return len(ids) == self.TASKS and all(
                t["status"] in ("COMPLETED", "FAILED") for t in self.hub.tasks())

        while not settled():
            if time.monotonic() - t0 > self.BUDGET:
                self.fail("soak (seed %d) did not settle in %g s: %r" % (
                    seed, self.BUDGET, {s: sum(t["status"] == s for t in self.hub.tasks())
                                        for s in ("PENDING", "IN_PROGRESS")}))
            requeued += self.requeue_stale()
            if len(ids) < self.TASKS and rng.random() < 0.5:
                ids += self.hub.add_tasks(specs[len(ids):len(ids) + self.WAVE])
            stage = rng.choice(sorted(stages))
            # one fault at a time: unconsumed rules would pile up on a rarely used path
            if faults and rng.random() < 0.3 and not self.hub.faults():
                kind, status = rng.choice(self.FAULTS)
                path, method = rng.choice(self.FAULT_PATHS)
                rule = {"path": path, "method": method, "kind": kind}
                if status:
                    rule["status"] = status
                self.hub.fault(**rule)
            crash_at = None
            if rng.random() < 0.3:
                point = rng.choice(points[stage])
                n = 1 if point in self.ONCE_PER_RUN else rng.randint(1, 4)
                crash_at = "%s@%d" % (point, n)
            p = stages[stage](crash_at=crash_at)
            runs += 1
            if p.returncode == EXIT_CRASH:
                self.assertIsNotNone(crash_at, p.stderr)
                crashes += 1
            else:
                self.assertIn(p.returncode, (0, 1) if faults else (0,),
                              "%s (crash_at %s): %s" % (stage, crash_at, p.stderr))
            if stage == "report":
                self.node.make_due()
        # drain what is left in the spool (e.g. after a crash between POST and done/)
        self.hub.clear_faults()
        for _ in range(3):
            self.assertRun(self.node.exec())
            self.node.make_due()
            self.assertRun(self.node.report())
        took = time.monotonic() - t0
        tasks = self.hub.tasks()
        redelivered = sum(t["deliveries"] > 1 for t in tasks)
        print("soak: %d tasks, %d runs, %d crashes, %d requeues, %d re-delivered, "
              "%d hub faults, %.1f s"
              % (len(tasks), runs, crashes, requeued, redelivered,
                 sum(1 for r in self.hub.requests() if r["fault"]), took), flush=True)
        self.assertGreaterEqual(crashes, 5)
        self.assertGreater(redelivered, 0, "the soak should exercise re-delivery")
        unreported = {t["id"]: self.explain(t["id"]) for t in tasks if not t["results"]}
        self.assertEqual(unreported, {}, "tasks without a result (seed %d)" % seed)
        self.assertExactlyOnce(ids)
        self.assertSpoolSettled()
        # the hub holds exactly the result the node spooled for each task
        for t in tasks:
            with open(os.path.join(self.node.job_dir(t["id"]), "result.json")) as f:
                spooled = json.load(f)
            self.assertEqual((t["results"][0]["success"], t["results"][0]["result"]),
                             (spooled["success"], spooled["result"]), t["id"])
        # every job ends in done/ (the faults soak found the libcurl re-send bug this
        # way: see TestUploadFaults.test_answer_lost_on_a_reused_connection)
        not_done = {i: self.explain(i) for i in set(ids) - set(self.node.task_ids("done"))}
        self.assertEqual(not_done, {}, "jobs not in done/ (seed %d)" % seed)


if __name__ == "__main__":
    unittest.main()
