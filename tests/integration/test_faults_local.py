# SPDX-License-Identifier: Apache-2.0
"""test_faults_local - faults of the node's own host: a full disk and a wrong clock.

Disk: the node's spool, state and log directories live on a 4 MiB tmpfs this test
mounts (root only; skipped otherwise) and unmounts; a filler file takes the space
away in the middle of a batch and gives it back. Clock: Debian's faketime runs the
programs 2 minutes ahead of (and behind) the hub, whose Date header doctor compares.

Each test asserts the exact line the operator reads and that nothing was lost: every
task ends with exactly one accepted result on the hub emulator, no job is half
written, the audit chain still verifies. docs/reliability.md describes each fault.
"""

import json
import os
import re
import subprocess
import unittest

from faultenv import FAKETIME
from nodeenv import Node, NodeTestCase, verify_audit_chain

TMPFS_BYTES = 4 * 1024 * 1024


class TestDiskFull(NodeTestCase):

    def setUp(self):
        super().setUp()
        self.mnt = os.path.join(self.tmp, "small")
        os.mkdir(self.mnt)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0700" % TMPFS_BYTES,
                            "tmpfs", self.mnt], capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest("cannot mount a tmpfs here: %s" % p.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt], capture_output=True)
        self.node = Node(os.path.join(self.mnt, "node"), self.hub)
        self.assertRun(self.node.flipctl("init"))
        self.filler = os.path.join(self.mnt, "filler")

    def fill(self, leave):
        """Take all but `leave` bytes of the tmpfs."""
        st = os.statvfs(self.mnt)
        free = st.f_bavail * st.f_frsize
        with open(self.filler, "ab") as f:
            f.write(b"\0" * max(free - leave, 0))

    def free_space(self):
        os.unlink(self.filler)

    def test_disk_fills_mid_batch_then_every_task_completes(self):
        first = [self.add("delete_imaging") for _ in range(12)]
        self.assertRun(self.node.poll("--no-snapshot"))
        self.assertEqual(len(self.node.jobs("new")), 12)
        # room for a few results only: flip-exec stops at the first it cannot write
        self.fill(48 * 1024)
        p = self.node.exec()
        self.assertRun(p, 1)
        stopped = [x for x in p.stderr.splitlines() if "cannot write its result" in x]
        self.assertEqual(len(stopped), 1, p.stderr)
        self.assertRegex(stopped[0], r"^flip-exec: error: job [0-9]{16}-[0-9a-f-]{36}: cannot "
                         r"write its result: the disk holding %s is full; it stays in cur/ "
                         r"and runs again once space is freed$" % re.escape(self.node.spool))
        written = len(self.node.jobs("out"))
        self.assertGreater(written, 0, "the disk filled before the first job: not mid-batch")
        self.assertLess(written, 12)
        self.assertEqual(len(self.node.jobs("cur")), 1)
        self.assertEqual(written + 1 + len(self.node.jobs("new")), 12)
        # the poller does not take tasks it could not keep: they stay on the hub
        later = [self.add("delete_imaging") for _ in range(3)]
        p = self.node.poll("--no-snapshot")
        self.assertRun(p, 1)
        self.assertRegex(p.stderr, r"(?m)^flip-poll: error: not fetching tasks: the disk "
                         r"holding %s has \d+ KiB free \(under 1024 KiB\) and every task the "
                         r"hub hands over must be kept; free space there$"
                         % re.escape(self.node.spool))
        for tid in later:
            self.assertEqual((self.hub.task(tid)["status"], self.hub.task(tid)["deliveries"]),
                             ("PENDING", 0))
        # the operator sees it on one screen
        p = self.node.flipctl("status")
        self.assertRun(p)
        self.assertRegex(p.stdout, r"(?m)^disk       spool %s: \d+ KiB free of 4096 KiB: FULL, "
                         r"results cannot be written; free space there \(jobs wait and resume "
                         r"by themselves\)$" % re.escape(self.node.spool))
        # no half-written job anywhere: every result.json that exists is whole
        for st in ("new", "cur", "out"):
            for name in self.node.jobs(st):
                files = self.node.job_files(name)
                self.assertFalse([f for f in files if "tmp" in f], (st, name, files))
                if "result.json" in files:
                    json.loads(open(os.path.join(self.node.job_dir(name), "result.json")).read())
        self.assertEqual(self.node.jobs("tmp"), [])
        # space returns: the next runs finish everything, once each
        self.free_space()
        self.run_until_settled(first + later)
        self.assertExactlyOnce(first + later)
        self.assertSpoolSettled()
        self.assertNotIn("FULL", self.node.flipctl("status").stdout)
        p = self.node.flipctl("audit", "verify")
        self.assertRun(p)
        self.assertIsNone(verify_audit_chain(self.node.audit_lines()))


@unittest.skipUnless(os.path.exists(FAKETIME), "needs faketime (packages.list, test-only)")
class TestClockSkew(NodeTestCase):

    def setUp(self):
        super().setUp()
        self.assertRun(self.node.flipctl("init"))

    def clock_line(self, p):
        lines = [x for x in p.stdout.splitlines() if x.split()[1:2] == ["clock"]]
        self.assertEqual(len(lines), 1, p.stdout)
        return lines[0]

    def test_doctor_says_the_clock_is_off_and_nothing_else_breaks(self):
        for offset in (120, -120):
            with self.subTest(offset=offset):
                wrap = (FAKETIME, "-f", "%+ds" % offset)
                p = self.node.flipctl("doctor", wrap=wrap)
                self.assertEqual(p.returncode, 1, p.stdout)
                self.assertRegex(self.clock_line(p), r"^FAIL\s+clock\s+%s1[12]\d s against the "
                                 r"hub \(fix NTP: certificates and audit times depend on it\)$"
                                 % ("\\+" if offset > 0 else "-"))
                # every other check still passes
                failed = [x for x in p.stdout.splitlines()
                          if x.startswith("FAIL") and x.split()[1] != "clock"]
                self.assertEqual(failed, [], p.stdout)
                # and the node works on: a task goes round under the same clock
                tid = self.add("delete_imaging")
                self.assertRun(self.node.poll("--no-snapshot", wrap=wrap))
                self.assertRun(self.node.exec(wrap=wrap))
                self.assertRun(self.node.report(wrap=wrap))
                self.assertExactlyOnce([tid])
        p = self.node.flipctl("doctor")
        self.assertRegex(self.clock_line(p), r"^ok\s+clock\s+[+-][0-2] s against the hub$")


if __name__ == "__main__":
    unittest.main()
