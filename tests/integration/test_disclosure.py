# SPDX-License-Identifier: Apache-2.0
"""test_disclosure - disclosure control against a hostile researcher, end to end.

Everything here goes the real way: hub emulator -> flip-poll -> flip-exec (guard,
libpq against a throwaway PostgreSQL holding the fixture, statistics) -> flip-report
-> the hub's record. Covers docs/design/data-access.md "Validating the researcher's SQL" rule 6,
"Subjects: who counts towards the threshold", "Error channel" and "Logging hygiene":

- the attack corpus (tests/integration/attacks.json): every hostile query of every
  family gets exactly its expected refusal, category or suppressed zero;
- a bounded randomized run that mutates the error-channel attacks;
- persist_cohort refuses a cohort whose subjects are made up;
- after all of it, no fixture value (person_source_value, race, birth date) and no
  fragment of a PostgreSQL message is in what the hub received, the node's log
  files, the audit trail or the programs' output.
"""
import json
import os
import random
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "omop"))

from fixture_expected import QUERIES  # noqa: E402
from test_cohort import TOO_SMALL, CohortCase  # noqa: E402

ATTACKS = os.path.join(HERE, "attacks.json")

# values of the fixture no answer may carry, and words only PostgreSQL's messages use
FIXTURE_VALUE = re.compile(r"FIX00[0-9][0-9]|19[0-9][0-9]-[01][0-9]-[0-3][0-9]|White|Asian|Black")
SERVER_TEXT = re.compile(r"invalid input syntax|relation \"|does not exist:|malformed|"
                         r"out of range|DETAIL|HINT|ERROR:|pg_authid\"|rolname")

# the fixed messages of the error channel (lib/omop.h) and of the two guard stages
CATEGORY = re.compile(r"^(504: query_timeout|400: query_failed: [a-z_]+|500: query_failed"
                      r"|400: [A-Z][^\n]{0,200}\.)$")


def load_attacks():
    with open(ATTACKS, encoding="utf-8") as f:
        return json.load(f)["attacks"]


class DisclosureCase(CohortCase):
    def settle(self, ids):
        self.run_until_settled(ids, rounds=6)

    def outcome(self, tid, p):
        """("error", text) or ("cohort", the /cohort/results record without query_id)."""
        r = self.task_result(tid)
        if not r["success"]:
            return "error", json.loads(r["result"])["error"]
        c = dict(self.cohort_result(p["query_id"]))
        c.pop("query_id")
        return "cohort", c

    def assertNothingLeaked(self):
        """No fixture value and no server text in the hub's record, logs, audit, output."""
        seen = {"hub": json.dumps(self.hub.requests()),
                "stderr": "".join(self.node.stderr_log)}
        for path in self.node.all_files():
            if "/spool/" in path:
                continue        # the spool keeps the task itself (mode 0700), by design
            with open(path, "rb") as f:
                seen[path] = f.read().decode("utf-8", "replace")
        for where, text in seen.items():
            for rx in (FIXTURE_VALUE, SERVER_TEXT):
                m = rx.search(text)
                self.assertIsNone(m, "%s holds %r" % (where, m and text[max(0, m.start() - 80):m.end() + 80]))


class TestAttackCorpus(DisclosureCase):
    def test_every_attack_gets_its_exact_answer(self):
        attacks = load_attacks()
        self.assertGreaterEqual(len(attacks), 60)
        self.assertEqual({a["family"] for a in attacks},
                         {"error_channel", "attribute_notation", "casts", "sql_in_strings",
                          "fake_subjects", "catalog_reads", "timing"})
        self.node.set_config(COHORT_QUERY_TIMEOUT_SECONDS="2")
        zero_tid, zero = self.cohort_task(QUERIES["Q_ZERO"].sql)
        tasks = [(a, self.cohort_task(a["sql"])) for a in attacks]
        self.settle([zero_tid] + [t for _, (t, _) in tasks])
        kind, genuine_zero = self.outcome(zero_tid, zero)
        self.assertEqual((kind, genuine_zero["record_count"], genuine_zero["data"]), ("cohort", 0, []))
        for a, (tid, p) in tasks:
            with self.subTest(family=a["family"], sql=a["sql"]):
                kind, got = self.outcome(tid, p)
                if a["expect"] == "suppressed":
                    self.assertEqual(kind, "cohort", got)
                    self.assertEqual(got, genuine_zero)
                else:
                    self.assertEqual((kind, got), ("error", a["expect"]))
                    c = self.cohort_result(p["query_id"])
                    self.assertEqual((c["record_count"], c["data"], c["error"]), (0, [], a["expect"]))
        self.assertNothingLeaked()

    def test_mutated_error_channel_attacks_leak_nothing(self):
        """Bounded and seeded: value-reading expressions in random places and casts."""
        rnd = random.Random(int(os.environ.get("FLIP_ATTACK_SEED", "9")))
        columns = ["person_source_value", "race_source_value", "gender_source_value",
                   "birth_datetime::text", "person_source_value || race_source_value",
                   "(SELECT string_agg(person_source_value, ',') FROM person)"]
        casts = ["int", "numeric", "date", "timestamp", "uuid", "boolean", "interval",
                 "int[]", "float8", "time", "regclass", "json", "xml"]
        shapes = ["SELECT person_id FROM person WHERE ({v})::{t} IS NOT NULL",
                  "SELECT person_id, ({v})::{t} AS x FROM person",
                  "SELECT person_id FROM person GROUP BY person_id, {c} HAVING max(({v})::{t}) IS NULL",
                  "SELECT person_id FROM person ORDER BY ({v})::{t}",
                  "SELECT person_id FROM person WHERE CASE WHEN person_id = {n} THEN ({v})::{t} END IS NULL",
                  "SELECT p.person_id FROM person p JOIN death d ON ({v})::{t} IS NOT NULL"]
        sqls = []
        for _ in range(30):
            c = rnd.choice(columns[:3])
            sqls.append(rnd.choice(shapes).format(v=rnd.choice(columns), t=rnd.choice(casts),
                                                  c=c, n=rnd.randint(1, 40)))
        tasks = [(s, self.cohort_task(s)) for s in sqls]
        self.settle([t for _, (t, _) in tasks])
        for s, (tid, p) in tasks:
            with self.subTest(sql=s):
                kind, got = self.outcome(tid, p)
                if kind == "error":
                    self.assertRegex(got, CATEGORY)
        self.assertNothingLeaked()


class TestFakeSubjectsNeverFreeze(DisclosureCase):
    def test_persist_refuses_made_up_ids(self):
        from test_cohort import TestSnapshot
        for sql in ("SELECT g AS person_id FROM generate_series(1, 40) g",
                    "SELECT person_id FROM person UNION ALL SELECT g FROM generate_series(100, 140) g",
                    "SELECT p.person_id + 0 AS person_id FROM person p",
                    "SELECT 'ACC' || g AS accession_id FROM generate_series(1, 40) g"):
            with self.subTest(sql=sql):
                tid, p = TestSnapshot.persist(self, sql)
                self.run_all()
                r = self.task_result(tid)
                self.assertFalse(r["success"])
                self.assertEqual(json.loads(r["result"]),
                                 {"error": "403: " + TOO_SMALL, "status_code": 403})
                # nothing of it is kept: no membership, no query of record
                self.assertFalse(os.path.exists(
                    os.path.join(self.node.state, "cohorts", p["project_id"].lower())))
        self.assertNothingLeaked()

    def test_real_subjects_still_count(self):
        """The lineage rule keeps honest shapes countable: released with their counts."""
        cases = {
            "WITH cohort AS (SELECT person_id FROM person) SELECT c.person_id FROM cohort c": 40,
            "SELECT person_id FROM condition_occurrence UNION SELECT person_id FROM person": 40,
            "SELECT p.person_id, g FROM person p, generate_series(1, 2) g": 80,
            "SELECT person_id FROM person JOIN death USING (person_id) "
            "UNION ALL SELECT person_id FROM person": None,
        }
        tasks = {s: self.cohort_task(s) for s in cases}
        self.run_all()
        for s, rows in cases.items():
            with self.subTest(sql=s):
                kind, got = self.outcome(*tasks[s])
                self.assertEqual(kind, "cohort", got)
                self.assertFalse(got["suppressed"], got)
                if rows is not None:
                    self.assertEqual(got["record_count"], rows)


class TestRevokeScript(DisclosureCase):
    """docs/security-revoke.sql on a real cluster: flipctl doctor names the risky
    functions the login role can execute before, and none after (its own cluster:
    the REVOKE changes the database)."""

    def functions_line(self):
        p = self.node.flipctl("doctor")
        lines = [x for x in p.stdout.splitlines() if x.split()[1:2] == ["omop-functions"]]
        self.assertEqual(len(lines), 1, p.stdout + p.stderr)
        self.assertNotIn(self.pg.password, p.stdout + p.stderr)
        return lines[0]

    def test_doctor_names_them_until_the_script_runs(self):
        before = self.functions_line()
        self.assertRegex(before, r"^ok\s+omop-functions\s+\d+ risky functions still executable")
        for name in ("pg_sleep", "current_setting", "set_config", "ts_stat", "query_to_xml"):
            self.assertIn(name, before)
        self.pg.psql_file(os.path.join(HERE, "..", "..", "docs", "security-revoke.sql"))
        after = self.functions_line()
        self.assertRegex(after, r"^ok\s+omop-functions\s+none of the risky functions is "
                         r"executable by ")
        # the role still does its job: a cohort runs and is released
        tid, p = self.cohort_task(QUERIES["Q_ALL"].sql)
        self.run_all()
        kind, got = self.outcome(tid, p)
        self.assertEqual((kind, got["suppressed"]), ("cohort", False))


if __name__ == "__main__":
    unittest.main()
