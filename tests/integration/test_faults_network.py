# SPDX-License-Identifier: Apache-2.0
"""test_faults_network - what a hospital network does between the node and the hub.

The hub emulator stands behind real components started here on loopback: Debian's
stunnel4 as the hub's TLS front (its certificate is rotated, expired, for another
host, from an unknown CA, TLS 1.0 only) and Debian's tinyproxy as the hospital's
outbound proxy (open, with Basic authentication, refusing CONNECT to the hub's
port, in front of a TLS-inspecting front). Hub faults (429 with and without
Retry-After, answers slower than the timeout, dropped and truncated answers, a hub
down for ten minutes) come from the emulator's fault rules; time is moved forward
with Debian's faketime instead of waited for.

Every test asserts the exact line the operator reads and that nothing was lost: a
refused call claims nothing on the hub, and once the fault is fixed every task ends
with exactly one accepted result (the emulator's record). docs/reliability.md
describes each fault and how to reproduce it.
"""

import email.utils
import os
import re
import time
import unittest

from faultenv import FAKETIME, STUNNEL, TINYPROXY, Certs, Front, Proxy
from nodeenv import NodeTestCase, wait_for

HAVE_TOOLS = all(os.path.exists(p) for p in (STUNNEL, TINYPROXY, FAKETIME))
NEED = "needs stunnel4, tinyproxy and faketime (packages.list, test-only)"

RATE = "Rate limit exceeded. Try again later."
UNTRUSTED = ("the hub's TLS certificate is signed by a CA this host does not trust: SSL "
             "certificate problem: unable to get local issuer certificate (behind a "
             "TLS-inspecting proxy, set FLIP_CA_BUNDLE to its CA file)")
EXPIRED = ("the hub's TLS certificate is expired: SSL certificate problem: certificate has "
           "expired (its operators must renew it, or this host's clock is wrong: flipctl "
           "doctor)")
WRONG_HOST = ("the hub's TLS certificate is not for the host in CENTRAL_HUB_API_URL: SSL: no "
              "alternative certificate subject name matches target host name '127.0.0.1'")
# OpenSSL's own text carries its version
OLD_TLS = re.compile(re.escape("no TLS version in common with the hub (flip-node needs TLS 1.2 "
                               "or later): OpenSSL/") + r"3\.[0-9.]+" +
                     re.escape(": error:0A00042E:SSL routines::tlsv1 alert protocol version"))
PROXY_403 = ("the proxy refused the tunnel to the hub (CONNECT answered 403): ask its "
             "administrators to allow HTTPS to the hub's host and port")
PROXY_AUTH = ("the proxy refused our credentials (CONNECT answered %d): put the proxy's user "
              "and password in HTTPS_PROXY (http://user:password@host:port)")


def poll_errors(why):
    """The two lines a flip-poll run prints when no call reaches the hub."""
    return ["flip-poll: error: heartbeat failed: " + why,
            "flip-poll: error: fetching tasks failed: " + why]


def matches(why, text):
    """why is the exact text, or a compiled pattern for it"""
    return why.fullmatch(text) is not None if isinstance(why, re.Pattern) else why == text


def refused(prefix, port):
    """libcurl's words for a closed port (with the milliseconds it took)"""
    return re.compile(re.escape(prefix) + r"Failed to connect to 127\.0\.0\.1 port %d after "
                      r"\d+ ms: Couldn't connect to server" % port)


def error_lines(p):
    return [x for x in p.stderr.splitlines() if ": error: " in x or ": warning: " in x]


class FrontedHub(NodeTestCase):
    """The emulator (plain HTTP) behind a stunnel4 TLS front whose certificate comes
    from a test CA; the node trusts that CA through FLIP_CA_BUNDLE."""

    def setUp(self):
        if not HAVE_TOOLS:
            self.skipTest(NEED)
        super().setUp()
        self.pki = os.path.join(self.tmp, "pki")
        self.certs = Certs(self.pki)
        self.good = self.certs.leaf("good")
        self.front = Front(self.pki, self.good, self.hub.port).start()
        self.proxy = None
        self.node.set_config(CENTRAL_HUB_API_URL=self.front.url,
                             FLIP_CA_BUNDLE=self.certs.ca_file)

    def tearDown(self):
        self.front.stop()
        if self.proxy:
            self.proxy.stop()
        super().tearDown()

    def start_proxy(self, **kw):
        if self.proxy:
            self.proxy.stop()
        self.proxy = Proxy(self.tmp, **kw).start()
        return self.proxy

    def assertNothingClaimed(self, ids):
        for i in ids:
            t = self.hub.task(i)
            self.assertEqual((t["status"], t["deliveries"]), ("PENDING", 0), t)

    def assertRefusedPoll(self, why, ids):
        """flip-poll exits 1 with exactly these lines, and the hub gave nothing away."""
        p = self.node.poll("--no-snapshot")
        self.assertRun(p, 1)
        lines = error_lines(p)
        self.assertEqual(len(lines), 2, p.stderr)
        for line, prefix in zip(lines, ("heartbeat failed: ", "fetching tasks failed: ")):
            self.assertTrue(line.startswith("flip-poll: error: " + prefix), line)
            self.assertTrue(matches(why, line[len("flip-poll: error: " + prefix):]), line)
        self.assertNothingClaimed(ids)

    def assertRefusedReport(self, why, tid):
        """flip-report exits 1, says why, and keeps the job in out/ for a retry."""
        self.node.make_due(tid)
        p = self.node.report()
        self.assertRun(p, 1)
        lines = error_lines(p)
        self.assertEqual(len(lines), 1, p.stderr)
        m = re.fullmatch(r"flip-report: warning: task %s: result upload failed \((.*)\); "
                         r"attempt \d+, next in \d+ s" % tid, lines[0])
        self.assertTrue(m and matches(why, m.group(1)), lines[0])
        self.assertEqual(self.node.task_ids("out"), [tid])
        self.assertTrue(matches(why, self.node.job_json(tid, "state.json")["result_detail"]))
        self.assertEqual(self.hub.task(tid)["results"], [])


@unittest.skipUnless(HAVE_TOOLS, NEED)
class TestProxy(FrontedHub):

    def test_round_trip_through_the_proxy_with_and_without_authentication(self):
        for auth in (None, ("flip", "Pr0xy-s3cret")):
            with self.subTest(auth=bool(auth)):
                proxy = self.start_proxy(connect_ports=[self.front.port], auth=auth)
                self.node.set_config(HTTPS_PROXY=proxy.url())
                beats = len(self.hub.heartbeats())
                ids = [self.add("cohort_query"), self.add("delete_imaging")]
                self.run_until_settled(ids)
                self.assertExactlyOnce(ids)
                self.assertGreater(len(self.hub.heartbeats()), beats)
                self.assertEqual(len(self.hub.cohort_results()["history"]), 1 + bool(auth))
                # poll's and report's calls each went through one CONNECT tunnel
                self.assertGreaterEqual(proxy.connects(), 2)
                self.assertSpoolSettled()
                # the proxy is the only way out: without it nothing reaches the hub
                proxy.stop()
                self.assertRefusedPoll(refused("cannot reach the proxy in HTTPS_PROXY: ",
                                               proxy.port), [])
        # the proxy's password is a secret: never in a log line, the audit trail or state
        for text in self.node.stderr_log:
            self.assertNotIn("Pr0xy-s3cret", text)
        for path in self.node.all_files():
            with open(path, "rb") as f:
                self.assertNotIn(b"Pr0xy-s3cret", f.read(), path)

    def test_proxy_that_refuses_connect_to_the_hub(self):
        proxy = self.start_proxy(connect_ports=[443])
        self.node.set_config(HTTPS_PROXY=proxy.url())
        tid = self.add("delete_imaging")
        self.assertRefusedPoll(PROXY_403, [tid])
        # the proxy's administrators allow the hub's port: the next run fetches it
        self.start_proxy(connect_ports=[self.front.port])
        self.node.set_config(HTTPS_PROXY=self.proxy.url())
        self.run_until_settled([tid])
        self.assertExactlyOnce([tid])

    def test_proxy_authentication_missing_or_wrong(self):
        proxy = self.start_proxy(connect_ports=[self.front.port], auth=("flip", "right-one"))
        tid = self.add("delete_imaging")
        self.node.set_config(HTTPS_PROXY=proxy.url(auth=False))
        self.assertRefusedPoll(PROXY_AUTH % 407, [tid])
        self.node.set_config(HTTPS_PROXY=proxy.url(auth=("flip", "wrong-one")))
        self.assertRefusedPoll(PROXY_AUTH % 401, [tid])
        for text in self.node.stderr_log:
            self.assertNotIn("wrong-one", text)
        self.node.set_config(HTTPS_PROXY=proxy.url())
        self.run_until_settled([tid])
        self.assertExactlyOnce([tid])

    def test_tls_inspecting_proxy_needs_its_ca_in_flip_ca_bundle(self):
        # The proxy tunnels to a TLS front that re-signs with the hospital's own
        # inspection CA, which the system store does not hold.
        inspection = Certs(os.path.join(self.tmp, "inspection"), "Hospital Inspection CA")
        self.front.start(cert=inspection.leaf("inspected"))
        proxy = self.start_proxy(connect_ports=[self.front.port])
        self.node.set_config(HTTPS_PROXY=proxy.url(), FLIP_CA_BUNDLE=None)
        tid = self.add("delete_imaging")
        self.assertRefusedPoll(UNTRUSTED, [tid])
        self.node.set_config(FLIP_CA_BUNDLE=inspection.ca_file)
        self.run_until_settled([tid])
        self.assertExactlyOnce([tid])


@unittest.skipUnless(HAVE_TOOLS, NEED)
class TestTLS(FrontedHub):

    def test_each_bad_endpoint_is_refused_then_recovers_at_once(self):
        other = Certs(os.path.join(self.tmp, "other"), "Unknown CA")
        cases = [
            ("expired", dict(cert=self.certs.leaf("expired", -30, -1)), EXPIRED),
            ("wrong host", dict(cert=self.certs.leaf("other-host", hosts=("hub.example.org",))),
             WRONG_HOST),
            ("unknown CA", dict(cert=other.leaf("stranger")), UNTRUSTED),
            ("TLS 1.0 only", dict(tls10_only=True), OLD_TLS),
        ]
        for name, change, why in cases:
            with self.subTest(name):
                # a result waits in out/, a new task waits on the hub
                done = self.add("delete_imaging")
                self.assertRun(self.node.poll("--no-snapshot"))
                self.assertRun(self.node.exec())
                waiting = self.add("delete_imaging")
                self.front.start(**change)
                self.assertRefusedPoll(why, [waiting])
                self.assertRefusedReport(why, done)
                # fixed: the very next runs deliver both, once each
                self.front.start(cert=self.good, tls10_only=False)
                self.run_until_settled([done, waiting])
                self.assertExactlyOnce([done, waiting])
                self.assertSpoolSettled()

    def test_certificate_rotated_while_the_node_runs(self):
        # One flip-poll --loop keeps its connection between cycles; the front is
        # restarted under it, first with an expired certificate, then with a new one
        # (new key, same CA). The same process recovers without a restart.
        self.node.set_config(POLL_INTERVAL_SECONDS=1)
        proc = self.node.popen("flip-poll", "--loop", "9", "--no-snapshot")
        try:
            self.assertTrue(wait_for(lambda: self.hub.heartbeats(), 5))
            self.front.start(cert=self.certs.leaf("expired", -30, -1))
            time.sleep(2.5)
            self.front.start(cert=self.certs.leaf("rotated"))
            beats = len(self.hub.heartbeats())
            tid = self.add("delete_imaging")
            _out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertIn("flip-poll: error: heartbeat failed: " + EXPIRED, err)
        self.assertGreater(len(self.hub.heartbeats()), beats, err)
        self.assertEqual(self.node.task_ids("new"), [tid])
        self.run_until_settled([tid])
        self.assertExactlyOnce([tid])


@unittest.skipUnless(HAVE_TOOLS, NEED)
class TestHubFaults(FrontedHub):

    def later(self, seconds):
        """Run under faketime, this many seconds in the future."""
        return (FAKETIME, "-f", "%+ds" % seconds)

    def ready(self, task_type="delete_imaging"):
        tid = self.add(task_type)
        self.assertRun(self.node.poll("--no-snapshot"))
        self.assertRun(self.node.exec())
        self.assertEqual(self.node.task_ids("out"), [tid])
        return tid

    def test_429_with_retry_after_is_honoured(self):
        tid = self.ready()
        self.hub.fault(path="/api/tasks/%s/result" % tid, kind="status", status=429,
                       headers={"Retry-After": "120"})
        t0 = time.time()
        p = self.node.report()
        self.assertRun(p, 1)
        self.assertEqual(error_lines(p), [
            "flip-report: warning: task %s: result upload failed (HTTP 429: %s); attempt 1, "
            "next in 120 s" % (tid, RATE)])
        st = self.node.job_json(tid, "state.json")
        self.assertAlmostEqual(st["next_attempt_at"] - t0, 120, delta=3)
        self.assertFalse(st["maybe_accepted"])
        # runs before then do not call the hub; one two minutes later delivers it
        n = len(self.result_requests(tid))
        self.assertRun(self.node.report(wrap=self.later(60)))
        self.assertEqual(len(self.result_requests(tid)), n)
        self.assertRun(self.node.report(wrap=self.later(125)))
        self.assertEqual(self.node.task_ids("done"), [tid])
        self.assertExactlyOnce([tid])

    def test_retry_after_forms_and_hostile_values(self):
        # an HTTP date, a huge number (capped at the 10 min backoff cap) and garbage
        # (ignored: the usual backoff)
        when = email.utils.formatdate(time.time() + 90, usegmt=True)
        for value, low, high in ((when, 85, 91), ("99999999999", 599, 601), ("soon", 0, 2.1)):
            with self.subTest(value=value):
                tid = self.ready()
                self.hub.fault(path="/api/tasks/%s/result" % tid, kind="status", status=503,
                               headers={"Retry-After": value})
                t0 = time.time()
                self.assertRun(self.node.report(), 1)
                st = self.node.job_json(tid, "state.json")
                self.assertGreaterEqual(st["next_attempt_at"] - t0, low)
                self.assertLessEqual(st["next_attempt_at"] - t0, high)
                self.assertRun(self.node.report(wrap=self.later(605)))
                self.assertExactlyOnce([tid])

    def test_429_without_retry_after_backs_off_as_usual(self):
        tid = self.ready()
        self.hub.fault(path="/api/tasks/%s/result" % tid, kind="status", status=429)
        p = self.node.report()
        self.assertRun(p, 1)
        self.assertRegex(error_lines(p)[0], r"^flip-report: warning: task %s: result upload "
                         r"failed \(HTTP 429: %s\); attempt 1, next in [12] s$"
                         % (tid, re.escape(RATE)))
        self.assertRun(self.node.report(wrap=self.later(3)))
        self.assertExactlyOnce([tid])
        # a rate-limited heartbeat does not stop the fetch
        self.hub.fault(path="/api/trust/heartbeat", kind="status", status=429,
                       headers={"Retry-After": "30"})
        second = self.add("delete_imaging")
        p = self.node.poll("--no-snapshot")
        self.assertRun(p, 1)
        self.assertEqual(error_lines(p), ["flip-poll: error: heartbeat failed: HTTP 429: " + RATE])
        self.assertEqual(self.node.task_ids("new"), [second])

    def test_answers_slower_than_the_timeout(self):
        fast = {"FLIP_HUB_TIMEOUT": "2"}      # test builds only: 30 s in production
        tid = self.add("delete_imaging")
        self.hub.fault(path="/api/trust/heartbeat", kind="slow", delay=4)
        p = self.node.poll("--no-snapshot", env=fast)
        self.assertRun(p, 1)
        lines = error_lines(p)
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertRegex(lines[0], r"^flip-poll: error: heartbeat failed: no answer from the "
                         r"hub in time: Operation timed out after 2\d\d\d milliseconds with 0 "
                         r"bytes received$")
        self.assertEqual(self.node.task_ids("new"), [tid])   # the fetch went on
        self.assertRun(self.node.exec())
        # the hub stores the result after the node gave up waiting: the next attempt's
        # 409 is that acceptance, not a refusal
        self.hub.fault(path="/api/tasks/%s/result" % tid, kind="slow", delay=4)
        p = self.node.report(env=fast)
        self.assertRun(p, 1)
        self.assertIn("result upload failed (no answer from the hub in time: ", p.stderr)
        self.assertTrue(wait_for(lambda: self.hub.task(tid)["results"], 10))
        self.assertRun(self.node.report(env=fast, wrap=self.later(5)))
        self.assertEqual(self.node.task_ids("done"), [tid])
        self.assertIn("409 after an earlier attempt", self.node.job_json(tid, "state.json")["note"])
        self.assertExactlyOnce([tid])

    def test_dropped_and_truncated_answers(self):
        tid = self.add("delete_imaging")
        self.hub.fault(path="/api/tasks/pending", kind="status", status=200,
                       body='{"trust_id": "%s", "trust_name": "Trust_1", "tasks": [{"id": "'
                       % self.hub.trust_id)
        p = self.node.poll("--no-snapshot")
        self.assertRun(p, 1)
        self.assertEqual(error_lines(p), ["flip-poll: error: the hub's task list is malformed "
                                          "(not JSON); tasks it claimed return after its "
                                          "requeue timeout"])
        self.hub.fault(path="/api/trust/heartbeat", kind="drop")
        p = self.node.poll("--no-snapshot")
        self.assertEqual(error_lines(p), ["flip-poll: error: heartbeat failed: Empty reply "
                                          "from server"])
        self.assertEqual(self.node.task_ids("new"), [tid])
        self.assertRun(self.node.exec())
        self.hub.fault(path="/api/tasks/%s/result" % tid, kind="truncate")
        p = self.node.report()
        self.assertRun(p, 1)
        self.assertRegex(error_lines(p)[0], r"result upload failed \(transfer closed with "
                         r"\d+ bytes remaining to read\); attempt 1")
        self.assertRun(self.node.report(wrap=self.later(3)))
        self.assertEqual(self.node.task_ids("done"), [tid])
        self.assertExactlyOnce([tid])

    def test_hub_down_for_ten_minutes(self):
        tid = self.ready()
        waiting = self.add("delete_imaging")
        self.front.stop()
        down = refused("", self.front.port)
        attempts = []
        for minute in range(0, 11):
            wrap = self.later(60 * minute)
            p = self.node.poll("--no-snapshot", wrap=wrap)
            self.assertRun(p, 1)
            lines = error_lines(p)
            self.assertEqual(len(lines), 2, p.stderr)
            for line, want in zip(lines, poll_errors("")):
                self.assertTrue(line.startswith(want) and matches(down, line[len(want):]), line)
            self.node.report(wrap=wrap)
            attempts.append(self.node.job_json(tid, "state.json")["attempts"])
        # backed off: fewer attempts than runs, and never a gap over the 10 min cap
        self.assertLess(attempts[-1], 11)
        st = self.node.job_json(tid, "state.json")
        self.assertLessEqual(st["next_attempt_at"] - st["last_attempt_at"], 600)
        self.assertNothingClaimed([waiting])
        # back after 11 minutes: the first poll heartbeats and fetches
        self.front.start()
        beats = len(self.hub.heartbeats())
        self.assertRun(self.node.poll("--no-snapshot", wrap=self.later(660)))
        self.assertEqual(len(self.hub.heartbeats()), beats + 1)
        self.assertEqual(self.node.task_ids("new"), [waiting])
        self.assertRun(self.node.exec())
        self.assertRun(self.node.report(wrap=self.later(660 + 600)))
        self.assertExactlyOnce([tid, waiting])
        self.assertSpoolSettled()


if __name__ == "__main__":
    unittest.main()
