# SPDX-License-Identifier: Apache-2.0
"""Self-check of the hub emulator: start it, drive every control call, check every
hub answer with urllib.  No C code is involved.

    /usr/bin/python3 -m unittest tests/hub/test_emulator_selfcheck.py -v
"""

import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import emulator  # noqa: E402
from hubclient import Hub, HubError, make_self_signed  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

KAT_ENVELOPE = ("eyJ2IjogMSwgImtpZCI6ICJzaGFyZWQiLCAiaXYiOiAiQUFFQ0F3UUZCZ2NJQ1FvTCIs"
                "ICJjdCI6ICJMR3k1Ykt2SW8zWCtOdkw1MFo3MFNwSTgzd1NLbGlyaUxJa25PQT09In0=")
KAT_KEY_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

SNAPSHOT = {"services": {"flip-node": {"status": "healthy", "version": "0.1.0",
                                       "response_ms": 3},
                         "omop": {"status": "degraded", "version": None,
                                  "response_ms": None}},
            "collected_at": "2026-11-26T03:44:28.123456Z"}


def call(url, method="GET", body=None, headers=None, timeout=10, context=None,
         raw=False):
    """urllib request; returns (status, decoded JSON or raw bytes)."""
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode("utf-8")
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=body, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            status, data = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, data = e.code, e.read()
    if raw:
        return status, data
    return status, (json.loads(data) if data else None)


class EmulatorSelfCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hub-selfcheck-")
        cls.hub = Hub().start(cls.tmp, trust_name="Trust_1", hub_version="1.2.3",
                              aes_key_b64=KAT_KEY_B64)

    @classmethod
    def tearDownClass(cls):
        rc = cls.hub.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "emulator exited with %r" % rc

    def setUp(self):
        self.hub.reset()

    # helpers -------------------------------------------------------------------

    def api(self, method, path, body=None, key=True, headers=None, **kw):
        hdrs = dict(headers or {})
        if key is True:
            hdrs["Authorization"] = self.hub.api_key
        elif key:
            hdrs["Authorization"] = key
        return call(self.hub.url + path, method, body, hdrs, **kw)

    def heartbeat(self, body=None, **kw):
        return self.api("POST", "/trust/heartbeat", body, **kw)

    def fetch(self):
        status, reply = self.api("GET", "/tasks/pending")
        self.assertEqual(status, 200, reply)
        return reply["tasks"]

    def post_result(self, task_id, body):
        return self.api("POST", "/tasks/%s/result" % task_id, body)

    # authentication --------------------------------------------------------------

    def test_auth(self):
        self.assertEqual(self.heartbeat(key=None),
                         (401, {"detail": "Not authenticated: API key is missing."}))
        self.assertEqual(self.heartbeat(key="wrong"),
                         (401, {"detail": "Invalid API Key."}))
        self.assertEqual(self.api("GET", "/tasks/pending", key="wrong")[0], 401)
        # the header name matches case-insensitively
        status, _ = self.heartbeat(key=None, headers={"aUTHORIZATION": self.hub.api_key})
        self.assertEqual(status, 200)
        self.assertEqual(self.api("GET", "/nowhere")[0], 404)
        self.assertEqual(self.api("POST", "/tasks/pending")[0], 405)

    # heartbeat -------------------------------------------------------------------

    def test_heartbeat(self):
        status, raw = self.api("POST", "/trust/heartbeat", raw=True)
        self.assertEqual(status, 200)
        reply = json.loads(raw)
        self.assertEqual(raw, json.dumps(reply).encode("ascii"))  # json.dumps format
        self.assertEqual(reply, {"trust_id": self.hub.trust_id, "trust_name": "Trust_1",
                                 "message": "Heartbeat recorded", "hub_version": "1.2.3",
                                 "aes_key_fingerprint": "630dcd2966c4"})
        self.assertEqual(self.heartbeat(SNAPSHOT)[0], 200)
        status, reply = self.heartbeat({})
        self.assertEqual(status, 422)
        self.assertIsInstance(reply["detail"], list)
        bad = [
            {"services": {}},
            {"services": {"s%d" % i: {"status": "up"} for i in range(17)}},
            {"services": {"Bad_Name": {"status": "healthy"}}},
            {"services": {"x" * 33: {"status": "healthy"}}},
            {"services": {"a": {"status": "fine"}}},
            {"services": {"a": {"status": "healthy", "version": "v" * 65}}},
            {"services": {"a": {"status": "healthy", "response_ms": True}}},
            {"services": {"a": {"status": "healthy", "response_ms": 1000001}}},
            {"services": {"a": {"status": "healthy", "response_ms": -1}}},
            {"services": {"a": {"status": "healthy", "response_ms": 1.5}}},
            {"services": {"a": {"status": "healthy"}}, "collected_at": 5},
            {"services": {"a": {"status": "healthy"}}, "collected_at": "yesterday"},
            {"services": {"a": {"status": "healthy"}}, "extra": 1},
            [],
        ]
        for body in bad:
            self.assertEqual(self.heartbeat(body)[0], 422, body)
        self.assertEqual(self.api("POST", "/trust/heartbeat", b"{not json",
                                  headers={"Content-Type": "application/json"})[0], 422)
        hbs = self.hub.heartbeats()
        self.assertEqual([h["body"] for h in hbs], [None, SNAPSHOT])
        # reject_snapshot: every non-empty heartbeat is 422, bodyless still works
        self.hub.config(reject_snapshot=True)
        self.assertEqual(self.heartbeat(SNAPSHOT)[0], 422)
        self.assertEqual(self.heartbeat()[0], 200)
        # identity and fingerprint overrides
        other = str(uuid.uuid4())
        self.hub.config(trust_id=other, fingerprint="abcdef012345")
        reply = self.heartbeat()[1]
        self.assertEqual((reply["trust_id"], reply["aes_key_fingerprint"]),
                         (other, "abcdef012345"))
        self.hub.config(fingerprint=None, hub_version=None)
        reply = self.heartbeat()[1]
        self.assertNotIn("aes_key_fingerprint", reply)
        self.assertNotIn("hub_version", reply)

    def test_rate_limits(self):
        for _ in range(40):
            self.assertEqual(self.heartbeat()[0], 200)  # off by default
        self.hub.config(rate_limits=True)
        for _ in range(30):
            self.assertEqual(self.heartbeat()[0], 200)
        self.assertEqual(self.heartbeat(),
                         (429, {"detail": "Rate limit exceeded. Try again later."}))
        self.assertEqual(self.api("GET", "/tasks/pending")[0], 200)  # separate bucket
        self.hub.config(rate_limits={"result": 1})
        tid = self.hub.add_task("t", {})
        self.fetch()
        self.assertEqual(self.post_result(tid, {"success": True, "result": None})[0], 200)
        self.assertEqual(self.api("POST", "/cohort/results", {})[0], 429)

    # fetching tasks ------------------------------------------------------------

    def test_fetch_claims_and_caps(self):
        specs = [{"task_type": "cohort_query", "payload": {"n": i},
                  "created_at": "2026-01-01T00:00:%02d.000000" % (59 - i)}
                 for i in range(60)]
        ids = self.hub.add_tasks(specs)
        foreign = self.hub.add_task("cohort_query", {}, trust_id=str(uuid.uuid4()))
        first = self.fetch()
        self.assertEqual(len(first), 50)
        self.assertEqual([t["id"] for t in first], list(reversed(ids))[:50])
        self.assertEqual(set(first[0]), {"id", "task_type", "payload", "created_at"})
        states = {t["id"]: t for t in self.hub.tasks()}
        for t in first:
            self.assertEqual(states[t["id"]]["status"], "IN_PROGRESS")
            self.assertEqual(states[t["id"]]["deliveries"], 1)
        self.assertEqual(len(self.fetch()), 10)
        self.assertEqual(self.fetch(), [])
        self.assertEqual(self.hub.task(foreign)["status"], "PENDING")
        # the payload is an envelope sealed for task:<task_type>
        env = json.loads(base64.b64decode(first[0]["payload"]))
        pt = AESGCM(self.hub.aes_key).decrypt(
            base64.b64decode(env["iv"]), base64.b64decode(env["ct"]),
            b"FLIP|v1|shared|task:cohort_query")
        self.assertEqual(json.loads(pt), {"n": 59})
        self.assertEqual(self.hub.open(first[0]["payload"], "task:cohort_query"),
                         '{"n": 59}')
        # raw payloads go out as given; a query string is refused
        self.hub.add_raw_task("weird", "not-an-envelope", id="raw-1",
                              created_at="2020-01-01T00:00:00")
        self.assertEqual(self.fetch()[0]["payload"], "not-an-envelope")
        self.assertEqual(self.api("GET", "/tasks/pending?limit=5")[0], 422)

    # results ---------------------------------------------------------------------

    def test_results(self):
        tid = self.hub.add_task("delete_imaging", {"imaging_project_id": "x"})
        foreign = self.hub.add_task("t", {}, trust_id=str(uuid.uuid4()))
        ok = {"success": True, "result": None}
        self.assertEqual(self.post_result(tid, ok),
                         (409, {"detail": "Task %s is not in progress" % tid}))
        self.fetch()
        for bad in ({"success": True}, {"success": 1, "result": None},
                    {"success": True, "result": 5}, {"success": True, "result": None,
                                                     "x": 1}, [], "text"):
            self.assertEqual(self.post_result(tid, bad)[0], 422, bad)
        self.assertEqual(self.api("POST", "/tasks/%s/result" % tid, b"nope")[0], 422)
        huge = {"success": True, "result": "x" * 10_000_001}
        self.assertEqual(self.post_result(tid, huge)[0], 422)
        self.assertEqual(self.post_result(str(uuid.uuid4()), ok)[0], 404)
        self.assertEqual(self.post_result(foreign, ok)[0], 403)
        status, reply = self.post_result(tid, {"success": False, "result": '{"error": "e"}'})
        self.assertEqual((status, reply), (200, {
            "trust_id": self.hub.trust_id, "trust_name": "Trust_1",
            "message": "Task %s result recorded" % tid}))
        self.assertEqual(self.post_result(tid, ok)[0], 409)
        t = self.hub.task(tid)
        self.assertEqual(t["status"], "FAILED")
        self.assertEqual([(r["success"], r["result"]) for r in t["results"]],
                         [(False, '{"error": "e"}')])
        big = self.hub.add_task("t", {})
        self.fetch()
        self.assertEqual(self.post_result(big, {"success": True,
                                                "result": "y" * 10_000_000})[0], 200)
        self.assertEqual(self.hub.task(big)["status"], "COMPLETED")

    def test_persist_result_validated_after_200(self):
        project = str(uuid.uuid4())
        payload = {"project_id": project, "trust_id": self.hub.trust_id,
                   "encrypted_project_id": "x", "query": "SELECT 1", "query_id": None}
        good = {"row_count": 3, "has_accessions": False, "query_hash": "ab" * 32,
                "snapshot_at": "2026-12-04T06:00:00Z", "subject_count": 3, "columns": []}
        bad = [dict(good, row_count=-1), dict(good, row_count=True),
               dict(good, has_accessions=0), dict(good, snapshot_at="yesterday"),
               dict(good, snapshot_at="2026-12-04T06:00:00"), dict(good, query_hash=None)]
        tids = [self.hub.add_task("persist_cohort", payload) for _ in range(len(bad) + 1)]
        self.fetch()
        for tid, res in zip(tids, [good] + bad):
            self.assertEqual(self.post_result(tid, {"success": True,
                                                    "result": json.dumps(res)})[0], 200)
        t = self.hub.task(tids[0])
        self.assertEqual((t["status"], t["hub_validated"]), ("COMPLETED", True))
        for tid, res in zip(tids[1:], bad):
            t = self.hub.task(tid)
            self.assertEqual((t["status"], t["hub_validated"]), ("FAILED", False), res)
            self.assertTrue(t["validation_error"])
        # the re-check of a frozen project: a new task with the same payload
        again = self.hub.requeue_persist(project)
        self.assertEqual(len(again), 1)
        self.assertNotIn(again[0], tids)
        got = self.fetch()
        self.assertEqual([t["id"] for t in got], again)
        self.assertEqual(self.hub.requeue_persist(str(uuid.uuid4())), [])

    def test_cancelled_tasks_are_never_delivered(self):
        pending = self.hub.add_task("delete_imaging", {"imaging_project_id": "x"})
        claimed = self.hub.add_task("delete_imaging", {"imaging_project_id": "y"})
        self.hub.cancel(pending)
        self.assertEqual([t["id"] for t in self.fetch()], [claimed])
        self.hub.cancel(claimed)
        self.assertEqual(self.hub.requeue_stale(older_than=-1), [])
        self.assertEqual(self.fetch(), [])
        self.assertEqual(self.post_result(claimed, {"success": True, "result": None})[0], 409)
        self.assertEqual(self.hub.task(claimed)["status"], "CANCELLED")

    def test_cohort_results(self):
        qid = str(uuid.uuid4())
        body = {"query_id": qid, "trust_id": self.hub.trust_id, "created": "2026-11-26",
                "record_count": 42, "suppressed": False,
                "data": [{"name": "gender", "results": [{"value": "F", "count": 20},
                                                        {"value": "M", "count": 22}]}]}
        self.assertEqual(self.api("POST", "/cohort/results", body),
                         (200, {"message": "Cohort results processed successfully"}))
        failed = {"query_id": qid, "trust_id": self.hub.trust_id, "created": "2026-11-26",
                  "record_count": 0, "data": [], "error": "403: Cohort is too small"}
        self.assertEqual(self.api("POST", "/cohort/results", failed)[0], 200)
        other = dict(body, trust_id=str(uuid.uuid4()))
        self.assertEqual(self.api("POST", "/cohort/results", other)[0], 403)
        bads = [dict(body, data=[{"name": "g", "results": [{"value": 1, "count": 2}]}]),
                dict(body, record_count="42"), dict(body, created="26/11/2026"),
                dict(body, query_id="nope"), dict(body, suppressed="no"),
                dict(body, error=None), dict(body, extra=1),
                {k: v for k, v in body.items() if k != "data"}]
        for bad in bads:
            self.assertEqual(self.api("POST", "/cohort/results", bad)[0], 422, bad)
        cr = self.hub.cohort_results()
        self.assertEqual(cr["current"], {qid: failed})
        self.assertEqual(cr["history"], [body, failed])

    # stale requeue -----------------------------------------------------------------

    def test_stale_requeue(self):
        tid = self.hub.add_task("t", {})
        for n in range(1, 4):
            self.assertEqual([t["id"] for t in self.fetch()], [tid])
            self.assertEqual(self.hub.requeue(tid)["retries"], n)
            self.assertEqual(self.hub.task(tid)["status"], "PENDING")
        with self.assertRaises(HubError) as cm:
            self.hub.requeue(tid)
        self.assertEqual(cm.exception.status, 409)
        self.fetch()
        self.assertEqual(self.hub.requeue_stale(), [])  # not stale yet at 1800 s
        self.hub.config(stale_seconds=0.2)
        time.sleep(0.3)
        self.hub.requeue_stale()
        t = self.hub.task(tid)
        self.assertEqual((t["status"], t["retries"], t["deliveries"]), ("FAILED", 3, 4))
        self.assertEqual(t["result"], '{"error": "Exceeded maximum retries (3)"}')
        self.assertEqual(self.fetch(), [])
        # the background check requeues without being asked
        t2 = self.hub.add_task("t", {})
        self.fetch()
        time.sleep(0.5)
        t = self.hub.task(t2)
        self.assertEqual((t["status"], t["retries"]), ("PENDING", 1))
        self.assertEqual(self.post_result(t2, {"success": True, "result": None})[0], 409)

    # faults ------------------------------------------------------------------------

    def test_fault_status(self):
        tid = self.hub.add_task("t", {})
        self.hub.fault(path="/api/tasks/pending", kind="status", status=503, count=2)
        self.assertEqual(self.api("GET", "/tasks/pending")[0], 503)
        self.assertEqual(self.api("GET", "/tasks/pending")[0], 503)
        self.assertEqual(self.hub.task(tid)["status"], "PENDING")  # not processed
        self.hub.fault(path="/api/", method="POST", kind="status", status=429)
        self.assertEqual(self.api("GET", "/tasks/pending")[0], 200)  # method differs
        self.assertEqual(self.heartbeat(), (429, {"detail":
                                                  "Rate limit exceeded. Try again later."}))
        self.hub.fault(path="/api/trust", kind="status", status=500, count=-1)
        for _ in range(3):
            self.assertEqual(self.heartbeat()[0], 500)
        self.assertEqual(len(self.hub.faults()), 1)
        self.hub.clear_faults()
        self.assertEqual(self.heartbeat()[0], 200)
        reqs = self.hub.requests()
        self.assertEqual([r["status"] for r in reqs], [503, 503, 200, 429, 500, 500, 500, 200])
        self.assertEqual(reqs[0]["fault"], "status")
        self.assertEqual(reqs[-1]["headers"]["authorization"], self.hub.api_key)
        self.hub.clear_requests()
        self.assertEqual(self.hub.requests(), [])

    def test_fault_after_status(self):
        tid = self.hub.add_task("t", {})
        self.fetch()
        self.hub.fault(path="/api/tasks/", method="POST", kind="after_status", status=502)
        self.assertEqual(self.post_result(tid, {"success": True, "result": "1"})[0], 502)
        t = self.hub.task(tid)
        self.assertEqual((t["status"], len(t["results"])), ("COMPLETED", 1))
        self.assertEqual(self.post_result(tid, {"success": True, "result": "1"})[0], 409)
        self.assertEqual(self.hub.requests()[0]["handled_status"], 200)

    def test_fault_slow(self):
        self.hub.fault(path="/api/trust/heartbeat", kind="slow", delay=0.3)
        t0 = time.monotonic()
        self.assertEqual(self.heartbeat()[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        # past the client's timeout: the client gives up, the hub still processes
        tid = self.hub.add_task("t", {})
        self.hub.fault(path="/api/tasks/pending", kind="slow", delay=0.6)
        with self.assertRaises((socket.timeout, urllib.error.URLError)):
            self.api("GET", "/tasks/pending", timeout=0.2)
        time.sleep(0.6)
        self.assertEqual(self.hub.task(tid)["status"], "IN_PROGRESS")

    def test_fault_drop(self):
        tid = self.hub.add_task("t", {})
        self.hub.fault(path="/api/tasks/pending", kind="drop")
        with self.assertRaises((http.client.RemoteDisconnected, urllib.error.URLError,
                                ConnectionError)):
            self.api("GET", "/tasks/pending")
        self.assertEqual(self.hub.task(tid)["status"], "PENDING")
        self.hub.fault(path="/api/tasks/pending", kind="drop_after")
        with self.assertRaises((http.client.RemoteDisconnected, urllib.error.URLError,
                                ConnectionError)):
            self.api("GET", "/tasks/pending")
        self.assertEqual(self.hub.task(tid)["status"], "IN_PROGRESS")
        self.hub.fault(path="/api/trust/heartbeat", kind="reset")
        with self.assertRaises((urllib.error.URLError, ConnectionError)):
            self.heartbeat()
        self.assertEqual([r["status"] for r in self.hub.requests()], [0, 0, 0])

    def test_fault_truncate(self):
        tid = self.hub.add_task("t", {})
        self.hub.fault(path="/api/tasks/pending", kind="truncate")
        with self.assertRaises(http.client.IncompleteRead):
            self.api("GET", "/tasks/pending")
        self.assertEqual(self.hub.task(tid)["status"], "IN_PROGRESS")
        self.assertEqual(self.api("GET", "/tasks/pending"), (200, {
            "trust_id": self.hub.trust_id, "trust_name": "Trust_1", "tasks": []}))

    def test_fault_rules_validated(self):
        for bad in ({"kind": "explode"}, {"kind": "status"}, {"kind": "slow", "delay": -1},
                    {"kind": "drop", "count": 0}):
            with self.assertRaises(HubError) as cm:
                self.hub.fault(**bad)
            self.assertEqual(cm.exception.status, 400)

    # envelope ------------------------------------------------------------------------

    def test_known_answer(self):
        key = bytes(range(32))
        env = emulator.seal(key, "known-answer", "kat", nonce=bytes(range(12)))
        self.assertEqual(env, KAT_ENVELOPE)
        inner = json.loads(base64.b64decode(env))
        self.assertEqual(base64.b64decode(inner["ct"]).hex(),
                         "2c6cb96cabc8a375fe36f2f9" "d19ef44a923cdf048a962ae22c892738")
        self.assertEqual(emulator.key_fingerprint(key), "630dcd2966c4")
        self.assertEqual(emulator.open_envelope({"shared": key}, env, "kat"),
                         b"known-answer")
        # the running hub holds the same key: its control helpers agree
        self.assertEqual(self.hub.open(KAT_ENVELOPE, "kat"), "known-answer")
        sealed = self.hub.seal("hello", "project_id")
        self.assertNotEqual(sealed, self.hub.seal("hello", "project_id"))  # fresh nonce
        self.assertEqual(self.hub.open(sealed, "project_id"), "hello")
        for env, ctx, msg in ((sealed, "xnat_setup_path", "failed authentication"),
                              ("!!", "kat", "not valid base64"),
                              (base64.b64encode(b"[1]").decode(), "kat", "not a JSON object"),
                              (base64.b64encode(b'{"v": true}').decode(), "kat",
                               "Unsupported payload version"),
                              (emulator.seal(key, "x", "kat", kid="other"), "kat",
                               "No key registered for kid 'other'")):
            with self.assertRaises(HubError) as cm:
                self.hub.open(env, ctx)
            self.assertEqual(cm.exception.status, 400)
            self.assertIn(msg, cm.exception.body["error"])

    # HTTPS ---------------------------------------------------------------------------

    def test_https(self):
        tmp = tempfile.mkdtemp(prefix="hub-tls-", dir=self.tmp)
        cert, key = make_self_signed(tmp)
        with Hub(tmp, tls=(cert, key), key_header="X-Trust-API-Key") as hub:
            self.assertTrue(hub.url.startswith("https://127.0.0.1:"))
            ctx = ssl.create_default_context(cafile=cert)
            status, reply = call(hub.url + "/trust/heartbeat", "POST",
                                 headers={"x-trust-api-key": hub.api_key}, context=ctx)
            self.assertEqual((status, reply["trust_id"]), (200, hub.trust_id))
            self.assertEqual(reply["aes_key_fingerprint"], hashlib.sha256(
                base64.b64decode(hub.aes_key_b64)).hexdigest()[:12])
            status, _ = call(hub.url + "/trust/heartbeat", "POST",
                             headers={"Authorization": hub.api_key}, context=ctx)
            self.assertEqual(status, 401)
            tid = hub.add_task("t", {"a": 1})
            self.assertEqual(hub.task(tid)["status"], "PENDING")
            with self.assertRaises(urllib.error.URLError):  # untrusted without the CA
                call(hub.url + "/tasks/pending", headers={"X-Trust-API-Key": hub.api_key})


if __name__ == "__main__":
    unittest.main()
