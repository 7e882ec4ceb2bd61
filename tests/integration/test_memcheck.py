# SPDX-License-Identifier: Apache-2.0
"""test_memcheck - the programs' ordinary runs under valgrind's memcheck.

Each test runs one program the way the timers do, against the real services
(a hub emulator, PostgreSQL with the OMOP fixture), under valgrind with every
memory error and every definite or indirect leak made fatal (exit 99). A leak in a
program that exits soon after is harmless on its own, but each one found so far
was a real mistake (jansson's json_is_object() evaluating a json_loadb() twice in
flip-report), and a leak per task is a leak per task in `--loop` mode. Reachable
memory at exit (libraries' caches) is not counted.
"""
import os
import shutil
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "omop"))

import payloads  # noqa: E402
from nodeenv import NodeTestCase  # noqa: E402
from pg import FixtureDatabase  # noqa: E402

VALGRIND = shutil.which("valgrind")
MEMCHECK = [VALGRIND or "valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
            "--num-callers=30"]
SQL = "SELECT p.person_id, io.accession_id FROM person p JOIN image_occurrence io USING (person_id)"


@unittest.skipIf(VALGRIND is None, "valgrind is not installed")
@unittest.skipIf(os.environ.get("FLIP_SAN") == "1", "an ASan build cannot run under valgrind")
class TestMemcheck(FixtureDatabase, NodeTestCase):
    def setUp(self):
        super().setUp()
        self.node.set_config(**self.pg.env())
        self.assertRun(self.node.flipctl("init"))

    def memcheck(self, prog, *args):
        p = self.node.run(prog, *args, wrap=MEMCHECK, timeout=600)
        self.assertNotEqual(p.returncode, 99, "%s %s: memcheck found errors:\n%s"
                            % (prog, " ".join(args), p.stderr[-8000:]))
        return p

    def add_every_kind(self):
        """one task of each type a poll-exec-report round handles without a PACS"""
        project = payloads.make("persist_cohort", trust_id=self.hub.trust_id)
        project.update(query=SQL)
        imaging = payloads.make("create_imaging", trust_id=self.hub.trust_id)
        imaging.update(project_id=project["project_id"], query=None)
        return [self.add("cohort_query"), self.hub.add_task("persist_cohort", project),
                self.add("create_imaging", imaging), self.add("delete_imaging"),
                self.add("update_user_profile"), self.add("cohort_query", {"broken": 1})]

    def test_poll_exec_report_round(self):
        ids = self.add_every_kind()
        self.assertRun(self.memcheck("flip-poll"))
        self.assertRun(self.memcheck("flip-exec"))
        self.assertRun(self.memcheck("flip-report"))
        for tid in ids:
            self.assertEqual(len(self.hub.task(tid)["results"]), 1, tid)

    def test_operator_commands(self):
        self.add_every_kind()
        for p in self.node.cycle():
            self.assertRun(p)
        for args in (("status",), ("status", "--json"), ("ls",), ("ls", "done", "--json"),
                     ("audit", "verify"), ("doctor",), ("policy", "check"), ("key-hash",)):
            self.memcheck("flipctl", *args)


if __name__ == "__main__":
    unittest.main()
