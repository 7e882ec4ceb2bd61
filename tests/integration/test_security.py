# SPDX-License-Identifier: Apache-2.0
"""test_security - what the node does with hostile or broken input, and with its secrets.

- Payloads that cannot be opened or validated (garbage, bad base64, unknown kid, a
  tag failure, a payload sealed for another task type, schema failures, an unknown
  task type) are spooled by flip-poll straight into out/ with their failure result
  and reported with the exact messages of docs/design/hub-protocol.md; they never reach flip-exec.
- Task ids that cannot name a job ("../../etc/passwd", "a/b", "", 200 characters, a
  non-string) are not spooled and create nothing outside the spool, while the good
  tasks of the same reply are; an id repeated within one reply is spooled once.
- Secrets (the API key, AES_KEY_BASE64 and the raw key bytes) appear in no file under
  the spool, state and log directories and in no output, even at debug level.
- HTTPS: the emulator's self-signed certificate works with FLIP_CA_BUNDLE and fails
  (exit 1, a TLS message) without it: verification is never off, for poll or report.
"""

import base64
import json
import os
import re
import unittest
import uuid

import payloads
from nodeenv import JOB_NAME_RE, NodeTestCase, failure_body


def b64(data):
    return base64.b64encode(data).decode("ascii")


class TestPayloadFailures(NodeTestCase):

    def queue_broken(self):
        """Queue one task per way a payload can be wrong; returns {id: message}."""
        hub, tid = self.hub, self.hub.trust_id
        good_env = hub.seal(json.dumps(payloads.make("delete_imaging")), "task:delete_imaging")
        want = {}

        def raw(task_type, raw_payload, msg):
            want[hub.add_raw_task(task_type, raw_payload)] = msg

        def sealed(task_type, payload, msg, **kw):
            want[hub.add_task(task_type, payload, **kw)] = msg

        raw("delete_imaging", b64(b"\x00\xffthis is garbage, not an envelope"),
            "Invalid payload: envelope is not valid JSON")
        raw("delete_imaging", "%%% not base64 at all %%%",
            "Invalid payload: envelope is not valid base64")
        raw("delete_imaging", good_env[:10] + "*" + good_env[10:],
            "Invalid payload: envelope is not valid base64")
        # wrong padding: one '=' missing or one too many
        raw("delete_imaging", good_env[:-1] if good_env.endswith("=") else good_env + "=",
            "Invalid payload: envelope is not valid base64")
        raw("delete_imaging", 12345, "Invalid payload: payload must be a string")
        raw("delete_imaging", b64(json.dumps({"v": 2, "kid": "shared", "iv": b64(bytes(12)),
                                              "ct": b64(bytes(32))}).encode()),
            "Invalid payload: Unsupported payload version")
        raw("delete_imaging", b64(json.dumps({"v": True, "kid": "shared",
                                              "iv": b64(bytes(12)),
                                              "ct": b64(bytes(32))}).encode()),
            "Invalid payload: field 'v' must be an integer")
        raw("delete_imaging", b64(json.dumps({"v": 1, "kid": "shared", "iv": b64(bytes(8)),
                                              "ct": b64(bytes(32))}).encode()),
            "Invalid payload: field 'iv' must be 12 bytes (got 8)")
        sealed("delete_imaging", payloads.make("delete_imaging"),
               "Invalid payload: No key registered for kid 'other'", kid="other")
        sealed("delete_imaging", payloads.make("delete_imaging"),
               "Invalid payload: failed authentication", key_b64=b64(os.urandom(32)))
        # a payload sealed for update_user_profile, replayed as a delete_imaging task
        sealed("delete_imaging", payloads.make("delete_imaging"),
               "Invalid payload: failed authentication", context="task:update_user_profile")
        missing = payloads.make("cohort_query", tid)
        del missing["query_id"]
        sealed("cohort_query", missing, "Invalid payload: field 'query_id' is missing")
        wrong = payloads.make("update_user_profile")
        wrong["enabled"] = "yes"
        sealed("update_user_profile", wrong, "Invalid payload: field 'enabled' must be a boolean")
        not_uuid = payloads.make("delete_imaging")
        not_uuid["imaging_project_id"] = "1 OR 1=1"
        sealed("delete_imaging", not_uuid,
               "Invalid payload: field 'imaging_project_id' must be a UUID")
        sealed("delete_imaging", ["not", "an", "object"],
               "Invalid payload: payload must be a JSON object")
        sealed("x", {"anything": 1}, "Unknown task type: x")
        want[hub.add_tasks([{"task_type": "delete_imaging", "plaintext": "{not json"}])[0]] = \
            "Invalid payload: decrypted payload is not valid JSON"
        return want

    def test_each_failure_is_reported_with_its_message_and_never_runs(self):
        want = self.queue_broken()
        good = self.add("delete_imaging")
        order = [t["id"] for t in self.hub.tasks()]
        p = self.node.poll()
        self.assertRun(p)

        # straight to out/ with the failure result; only the good task is in new/
        self.assertEqual(self.node.task_ids("new"), [good])
        self.assertEqual(self.node.task_ids("out"), [i for i in order if i in want])
        for i, msg in want.items():
            self.assertTrue({"task.json", "result.json"} <= set(self.node.job_files(i)))
            self.assertEqual(self.node.job_json(i, "result.json"), failure_body(msg, 400), i)
            self.assertEqual(self.node.job_json(i, "task.json")["refused"], msg)
            self.assertIsNone(self.node.job_json(i, "task.json")["payload"])
        self.assertIn("refused", p.stderr)

        # flip-exec runs the good task only; out/ jobs are untouched
        before = {i: self.node.job_json(i, "result.json") for i in want}
        self.assertRun(self.node.exec())
        started = [e["task_id"] for e in self.node.audit_events() if e["event"] == "task.started"]
        self.assertEqual(started, [good])
        self.assertEqual({i: self.node.job_json(i, "result.json") for i in want}, before)

        self.assertRun(self.node.report())
        for i, msg in want.items():
            t = self.hub.task(i)
            self.assertEqual(t["status"], "FAILED")
            self.assertEqual(len(t["results"]), 1)
            self.assertEqual(t["results"][0]["result"],
                             json.dumps({"error": msg, "status_code": 400}), i)
            self.assertIs(t["results"][0]["success"], False)
        self.assertExactlyOnce(list(want) + [good])
        # the cohort_query with a missing query_id cannot post a cohort result
        self.assertEqual(self.hub.cohort_results()["history"], [])
        self.assertSpoolSettled()

    def test_unknown_type_message_is_bounded_and_printable(self):
        long_type = "evil\x01type" + "z" * 300
        tid = self.hub.add_task(long_type, {"a": 1})
        self.assertRun(self.node.poll())
        res = self.node.job_json(tid, "result.json")
        err = json.loads(res["result"])["error"]
        self.assertTrue(err.startswith("Unknown task type: evil?type"), err)
        self.assertLess(len(err), 120)
        self.assertRun(self.node.report())
        self.assertExactlyOnce([tid])


class TestHostileIds(NodeTestCase):

    def tree(self):
        out = []
        for dirpath, dirs, files in os.walk(self.tmp):
            for n in dirs + files:
                out.append(os.path.relpath(os.path.join(dirpath, n), self.tmp))
        return out

    def assertOnlySpoolTree(self):
        allowed = re.compile(r"^(hub(/.*)?|node|node/flip\.env|node/(spool|state|log)(/.*)?)$")
        stray = [p for p in self.tree() if not allowed.match(p)]
        self.assertEqual(stray, [], "files created outside the node's directories")
        for p in self.tree():
            self.assertNotIn("passwd", p)
        for st in ("tmp", "new", "cur", "out", "done", "failed", "hold"):
            for n in self.node.jobs(st):
                self.assertRegex(n, JOB_NAME_RE)

    def test_bad_ids_from_the_hub_are_not_spooled(self):
        bad = ["../../etc/passwd", "a/b", "x" * 200, "x" * 65, "..", "-leading-dash",
               "sp ace", "semi;colon", "caf\u00e9", "new\nline"]
        ok = [self.add("delete_imaging"), self.add("update_user_profile", id="y" * 64),
              self.add("delete_imaging", id="plain_id-1")]
        for b in bad:
            self.add("delete_imaging", id=b)
        ok.append(self.add("delete_imaging"))
        p = self.node.poll()
        self.assertRun(p)
        self.assertEqual(sorted(self.node.task_ids("new")), sorted(ok))
        self.assertEqual(self.node.jobs("out"), [])
        self.assertIn("no usable id", p.stderr)
        self.assertOnlySpoolTree()
        # the node keeps working: the good ones are reported once
        self.assertRun(self.node.exec())
        self.assertRun(self.node.report())
        self.assertExactlyOnce(ok)
        for b in bad:
            self.assertEqual(self.hub.task(b)["results"], [])
        self.assertOnlySpoolTree()
        # re-delivered bad ids are refused again, still harmlessly
        self.hub.requeue_stale(older_than=0)
        self.assertRun(self.node.poll())
        self.assertOnlySpoolTree()
        self.assertEqual(len(self.node.jobs("done")), len(ok))

    def test_nul_in_one_id_does_not_lose_the_batch(self):
        # Regression (found by this test, fixed in bin/flip-poll/intake.c): the reply used to be
        # parsed without JSON_ALLOW_NUL, so one task whose id holds "\u0000" - valid
        # JSON - made the whole reply "not JSON" and every task claimed with it was
        # dropped, again at each re-delivery, until the hub's retry limit failed them
        # all. The NUL task alone must be refused; the others are spooled.
        good = [self.add("delete_imaging")]
        self.add("delete_imaging", id="nul\x00byte")
        good.append(self.add("delete_imaging"))
        p = self.node.poll()
        self.assertRun(p)
        self.assertEqual(sorted(self.node.task_ids("new")), sorted(good))
        self.assertEqual(self.node.task_ids("out"), [])
        self.assertOnlySpoolTree()

    def test_odd_replies_empty_nonstring_and_duplicate_ids(self):
        def entry(task_id, task_type="delete_imaging"):
            return {"id": task_id, "task_type": task_type,
                    "payload": self.hub.seal(json.dumps(payloads.make(task_type)),
                                             "task:" + task_type),
                    "created_at": "2024-05-01T10:00:00.000000"}
        tasks = [entry(""), entry(None), entry(42), "not an object", {"no": "id"},
                 entry("dup-1"), entry("good-1"), entry("dup-1", "update_user_profile"),
                 entry("../dup-1"), entry("good-2")]
        body = {"trust_id": self.hub.trust_id, "trust_name": "Trust_1", "tasks": tasks}
        self.hub.fault(path="/api/tasks/pending", kind="status", status=200, body=body)
        p = self.node.poll("--no-snapshot")
        self.assertRun(p)
        self.assertEqual(self.node.task_ids("new"), ["dup-1", "good-1", "good-2"])
        self.assertEqual(self.node.job_json("dup-1", "task.json")["task_type"], "delete_imaging")
        self.assertIn("twice", p.stderr)
        self.assertOnlySpoolTree()
        # the seq numbers are consecutive for what was spooled
        self.assertEqual([n[:16] for n in self.node.jobs("new")],
                         ["%016d" % k for k in (1, 2, 3)])

    def test_malformed_task_lists(self):
        for body in ('{"trust_id": "x", "tasks": {"id": "a"}}', "[]", "not json",
                     '{"tasks": [' + ",".join(['{"id": "t%d"}' % k for k in range(1001)]) + "]}"):
            with self.subTest(body=body[:40]):
                self.hub.fault(path="/api/tasks/pending", kind="status", status=200, body=body)
                p = self.node.poll("--no-snapshot")
                self.assertRun(p, 1)
                self.assertEqual(self.node.spool_snapshot()["new"], [])
        self.assertOnlySpoolTree()


class TestSecrets(NodeTestCase):

    # debug level, and a key only FLIP's containers use (it earns a debug line)
    NODE_CONFIG = {"FLIP_LOG_LEVEL": "debug", "IMAGING_API_URL": "http://imaging-api:8000"}

    def test_no_secret_in_any_file_or_output(self):
        ids = [self.add(t) for t in payloads.TASK_TYPES]
        ids.append(self.hub.add_task("delete_imaging", payloads.make("delete_imaging"),
                                     key_b64=b64(os.urandom(32))))
        self.hub.fault(path="/api/tasks/", method="POST", kind="status", status=500)
        self.assertRun(self.node.poll())
        self.assertRun(self.node.exec())
        self.assertRun(self.node.report(), 1)
        self.node.make_due()
        self.assertRun(self.node.report())
        self.hub.config(fingerprint="abcdef012345")
        self.assertRun(self.node.poll())
        self.assertExactlyOnce(ids)
        # a refused key and a wrong trust: more messages to check
        self.node.set_config(TRUST_API_KEY="x" + self.hub.api_key)
        self.assertRun(self.node.poll(), 1)
        self.node.set_config(TRUST_API_KEY=self.hub.api_key, EXPECTED_TRUST_ID=str(uuid.uuid4()))
        self.assertRun(self.node.poll(), 2)

        secrets = [self.hub.api_key.encode(), self.hub.aes_key_b64.encode(), self.hub.aes_key,
                   self.hub.aes_key.hex().encode()]
        files = self.node.all_files()
        self.assertGreater(len(files), 20)
        for path in files:
            with open(path, "rb") as f:
                data = f.read()
            for s in secrets:
                self.assertNotIn(s, data, "a secret in %s" % path)
        out = "".join(self.node.stderr_log).encode()
        self.assertIn(b"debug", out)
        for s in secrets:
            self.assertNotIn(s, out, "a secret in the programs' output")


class TestHttps(NodeTestCase):

    HUB_KWARGS = {"tls": True}

    def test_https_with_ca_bundle(self):
        self.assertTrue(self.hub.url.startswith("https://"))
        self.assertIn("FLIP_CA_BUNDLE", self.node.config)
        ids = [self.add("cohort_query"), self.add("delete_imaging")]
        for p in self.node.cycle(snapshot=True):
            self.assertRun(p)
        self.assertExactlyOnce(ids)
        self.assertEqual(len(self.hub.cohort_results()["history"]), 1)
        self.assertSpoolSettled()

    def test_without_ca_bundle_verification_fails(self):
        tid = self.add("delete_imaging")
        self.node.set_config(FLIP_CA_BUNDLE=None)
        p = self.node.poll()
        self.assertRun(p, 1)
        self.assertRegex(p.stderr, r"(?i)ssl|tls|certificate")
        self.assertEqual(self.hub.requests(), [])
        self.assertEqual(self.hub.task(tid)["deliveries"], 0)
        # report as well: a result waiting in out/ stays there
        self.node.set_config(FLIP_CA_BUNDLE=self.hub.ca_file)
        self.assertRun(self.node.poll())
        self.assertRun(self.node.exec())
        self.node.set_config(FLIP_CA_BUNDLE=None)
        p = self.node.report()
        self.assertRun(p, 1)
        self.assertRegex(p.stderr, r"(?i)ssl|tls|certificate")
        self.assertEqual(self.node.task_ids("out"), [tid])
        self.assertEqual(self.node.job_json(tid, "state.json")["attempts"], 1)
        self.assertEqual(self.hub.task(tid)["results"], [])
        self.node.set_config(FLIP_CA_BUNDLE=self.hub.ca_file)
        self.node.make_due()
        self.assertRun(self.node.report())
        self.assertExactlyOnce([tid])

    def test_plain_http_client_against_https_hub_fails(self):
        self.node.set_config(CENTRAL_HUB_API_URL=self.hub.url.replace("https://", "http://"))
        self.assertRun(self.node.poll(), 1)
        self.assertEqual(self.hub.requests(), [])


if __name__ == "__main__":
    unittest.main()
