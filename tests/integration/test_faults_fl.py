# SPDX-License-Identifier: Apache-2.0
"""test_faults_fl - an FL client that crash-loops, under flip-fl's supervision.

The vendor client (tests/fl/fakeclient.sh with FAKE_EXIT=3: it exits at once with
status 3, as a client with a broken GPU driver or a bad certificate does) is started
by flip-fl run, dies, is recorded, and is started again only after a backoff that
doubles with every quick death; each death is an audit event and `flip-fl status` /
`flipctl status` show it. A client that ignores SIGTERM is covered by
test_fl.TestSupervision.test_stop_kills_a_client_that_ignores_sigterm. Backoffs are
fractions of a second here (FLIP_FL_BACKOFF_BASE, test builds only).
"""
import json
import os
import time
import unittest

import test_fl
from nodeenv import verify_audit_chain, wait_for

BACKOFF = test_fl.BACKOFF


class TestCrashLoop(test_fl.FLTestCase):

    @staticmethod
    def exit_pid(path):
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f).get("pid")
        except (OSError, ValueError, AttributeError):
            return None

    def test_crash_looping_client_backs_off_and_is_shown(self):
        self.assertRun(self.fl("install-kit", self.good))
        env = {"FAKE_EXIT": "3"}
        exit_file = os.path.join(self.node.state, "fl", "exit.json")
        backoffs, lines = [], []
        for _ in range(3):
            self.assertRun(self.fl("run", env=env))          # starts it
            pid = self.state()["pid"]
            # the waiter has recorded this client's death (not an earlier one's): by pid,
            # not by mtime, whose coarse clock can lag time.time() on a loaded machine
            self.assertTrue(wait_for(lambda: self.exit_pid(exit_file) == pid, 10))
            p = self.fl("run", env=env)                       # records the death
            self.assertRun(p)
            lines.append(p.stderr.strip())
            backoffs.append(self.state()["backoff"])
            # the run that saw the death did not start it again: that waits the backoff
            self.assertEqual(len(self.events("fl.client.started")), len(backoffs))
            time.sleep(backoffs[-1] + 0.1)
        self.assertEqual(backoffs, [BACKOFF, 2 * BACKOFF, 4 * BACKOFF])
        for line in lines:
            self.assertRegex(line, r"^flip-fl: warning: the FL client \(pid \d+\) ended after \d+ "
                             r"s, exit status 3; next start in \d+ s \(log: %s\)$"
                             % os.path.join(self.node.logdir, "fl-client.log"))
        ev = self.events("fl.client.exited")
        self.assertEqual([(e["detail"]["status"], e["detail"]["code"]) for e in ev],
                         [("exit", 3)] * 3)
        self.assertIn("last exit:  exit 3", self.fl("status").stdout)
        p = self.node.flipctl("status")
        self.assertIn("fl-client  NOT RUNNING (flip-fl status for details)", p.stdout)
        self.assertIsNone(verify_audit_chain(self.node.audit_lines()))


if __name__ == "__main__":
    unittest.main()
