# SPDX-License-Identifier: Apache-2.0
"""test_pg_harness - the throwaway PostgreSQL, the OMOP fixture and the generator.

Starts a cluster with tests/omop/pg.py, loads cdm54.sql + fixture.sql, and checks:
the read-only role is made and confined as FLIP makes it (CONNECTION LIMIT 5,
statement_timeout 300s, no CREATE in omop or public, no writes, no pg_authid); the
login role gets in over TCP with its password and only so; the hand-written answers
of fixture_expected.py agree with the data (a plain Python reference of
docs/design/data-access.md's statistics over the raw rows, at thresholds 10 and 3);
tests/omop/gen is deterministic (two loads of N=1000 give the same md5 of each table)
and plausible; and stopping leaves no process behind. Under 60 s. With FLIP_OMOP_BIG=1
it also times gen with 1,000,000 persons.

Run alone with `python3 -m unittest -v tests/omop/test_pg_harness.py`; tests/run.py
runs it through tests/integration/test_omop_harness.py.
"""

import csv
import datetime
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import fixture_expected as fx  # noqa: E402
import pg as pgmod  # noqa: E402

__all__ = ["TestOmopHarness", "TestClusterLifecycle"]

GEN = os.path.join(HERE, "gen")
NULL = "\\N"          # psql's null display in our CSV reads (the fixture has no such text)


def _csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], [[None if v == NULL else v for v in r] for r in rows[1:]]


def _sql_list(values):
    """A SQL array literal of strings, for values we wrote ourselves."""
    return "ARRAY[%s]::text[]" % ",".join("'" + v.replace("'", "''") + "'" for v in values)


class Reference:
    """docs/design/data-access.md's statistics computed the plain way: every row into
    Python, the age and sex groups by SQL over omop.person. Used only to check
    fixture_expected."""

    def __init__(self, pg, db):
        self.pg, self.db = pg, db

    def rows(self, sql):
        # as the node runs it: the login role, one read-only snapshot; the reader has no
        # search_path into omop, so the unqualified tables are found by setting it here
        out = self.pg.psql("SET search_path = omop;\n"
                           "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
                           + sql + ";\nCOMMIT;\n", db=self.db, user=self.pg.user,
                           args=("-X", "-q", "--csv", "-P", "null=" + NULL))
        return _csv(out)

    def facts(self, sql):
        header, rows = self.rows(sql)
        first = {}
        for i, name in enumerate(header):
            first.setdefault(name, i)                       # duplicates: keep the first
        cols = []
        for name, i in first.items():
            nn = sum(1 for r in rows if r[i] is not None)
            cols.append((name, nn, len(rows) - nn))
        if rows:
            cols = [c for c in cols if c[1] > 0]            # all-null columns dropped
        persons = subjects = None
        if "person_id" in first:
            persons = sorted({int(r[first["person_id"]]) for r in rows
                              if r[first["person_id"]] is not None})
            subjects = len(persons)
        elif "accession_id" in first:
            accs = sorted({r[first["accession_id"]] for r in rows
                           if r[first["accession_id"]] is not None})
            subjects = int(self.pg.psql(
                "SELECT count(DISTINCT person_id) FROM omop.image_occurrence "
                "WHERE accession_id = ANY(%s)" % _sql_list(accs), db=self.db).strip()) if accs else 0
        return len(rows), cols, persons, subjects

    def groups(self, persons, threshold):
        ids = "ARRAY[%s]::int[]" % ",".join(str(p) for p in persons)
        age = self.pg.psql(
            "SELECT (floor(date_part('year', age(CURRENT_DATE, birth_datetime)) / 10) * 10)::int,"
            " count(*) FROM omop.person WHERE person_id = ANY(%s) GROUP BY 1 ORDER BY 1" % ids,
            db=self.db, args=("-X", "-q", "--csv", "-t", "-P", "null=" + NULL))
        sex = self.pg.psql(
            "SELECT gender_source_value, count(*) FROM omop.person"
            " WHERE person_id = ANY(%s) GROUP BY 1" % ids,
            db=self.db, args=("-X", "-q", "--csv", "-t", "-P", "null=" + NULL))
        age_pairs = [("%d-%d" % (int(b), int(b) + 9), int(c))
                     for b, c in csv.reader(io.StringIO(age))]
        sex_pairs = [(None if v == NULL else v, int(c)) for v, c in csv.reader(io.StringIO(sex))]
        return fx.roll_up(age_pairs, threshold), fx.roll_up(sex_pairs, threshold)

    def statistics(self, sql, threshold):
        n, cols, persons, subjects = self.facts(sql)
        if subjects is None or subjects < threshold:
            return dict(fx.SUPPRESSED)
        label = lambda c: c.replace("_", "\n")  # noqa: E731
        data = [{"name": "Counts", "results": [{"value": label(c), "count": a} for c, a, _ in cols]},
                {"name": "Nulls", "results": [{"value": label(c), "count": z} for c, _, z in cols]}]
        if persons is not None:
            age, sex = self.groups(persons, threshold)
            data += [{"name": "Age Distribution", "results": age},
                     {"name": "Sex Distribution", "results": sex}]
        return {"record_count": n, "data": data, "suppressed": False}


@unittest.skipUnless(pgmod.available(), "PostgreSQL 15 server programs not installed")
class TestOmopHarness(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="flip-omop-")
        cls.pg = pgmod.Postgres(os.path.join(cls.tmp, "pg"))
        t0 = time.monotonic()
        try:
            cls.pg.start()
            t1 = time.monotonic()
            cls.pg.setup_omop(fixture_sql_path=pgmod.FIXTURE)
        except BaseException:
            cls.pg.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise
        t2 = time.monotonic()
        sys.stderr.write("omop harness: initdb+start %.2f s, schema+fixture+roles+checks %.2f s,"
                         " pgdata %.0f MiB\n" % (t1 - t0, t2 - t1, cls.pg.du() / 1048576))
        cls.ref = Reference(cls.pg, "omop")

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()
        left = cls.pg.leftover_processes()
        if os.environ.get("FLIP_KEEP_TMP"):
            sys.stderr.write("kept %s\n" % cls.tmp)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)
        if left:
            raise AssertionError("postgres processes left running: %r" % left)

    def sql(self, sql, **kw):
        return self.pg.psql(sql, db="omop", **kw).strip()

    # -- the roles -------------------------------------------------------------------

    def test_roles_as_flip_makes_them(self):
        self.assertEqual(self.sql(
            "SELECT rolcanlogin, rolconnlimit, rolsuper, rolcreatedb, rolcreaterole, "
            "array_to_string(rolconfig, ',') FROM pg_roles WHERE rolname = 'data_analyst_reader'"),
            "t|5|f|f|f|statement_timeout=300s")
        self.assertEqual(self.sql(
            "SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = 'omop_readonly_base'"),
            "f|-1")
        self.assertEqual(self.sql(
            "SELECT pg_has_role('data_analyst_reader', 'omop_readonly_base', 'MEMBER')"), "t")
        self.assertEqual(self.sql(
            "SELECT has_database_privilege('omop_readonly_base', 'omop', 'CONNECT'), "
            "has_database_privilege('omop_readonly_base', 'omop', 'CREATE'), "
            "has_schema_privilege('omop_readonly_base', 'omop', 'USAGE'), "
            "has_schema_privilege('omop_readonly_base', 'omop', 'CREATE'), "
            "has_schema_privilege('data_analyst_reader', 'public', 'CREATE')"), "t|f|t|f|f")
        # SELECT on every omop table, and nothing else on any of them
        self.assertEqual(self.sql(
            "SELECT count(*) FILTER (WHERE has_table_privilege('data_analyst_reader', c.oid, 'SELECT')),"
            " count(*) FILTER (WHERE has_table_privilege('data_analyst_reader', c.oid,"
            "   'INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')), count(*)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'omop' AND c.relkind = 'r'"), "13|0|13")
        self.assertIn("omop_readonly_base=r/", self.sql(
            "SELECT array_to_string(defaclacl, ',') FROM pg_default_acl d"
            " JOIN pg_namespace n ON n.oid = d.defaclnamespace"
            " WHERE n.nspname = 'omop' AND d.defaclobjtype = 'r'"))

    def test_reader_session(self):
        out = self.pg.psql("SHOW statement_timeout; SELECT current_user, session_user;"
                           " SELECT count(*) FROM omop.person", db="omop", user=self.pg.user)
        self.assertEqual(out.split(), ["5min", "data_analyst_reader|data_analyst_reader", "40"])

    def test_reader_is_confined(self):
        self.assertTrue(self.pg.verify_readonly("omop"))
        for sql, needle in (
                ("CREATE TABLE omop.t (i int)", "permission denied for schema omop"),
                ("CREATE TABLE public.t (i int)", "permission denied for schema public"),
                ("CREATE TABLE t (i int)", "permission denied for schema public"),
                ("INSERT INTO omop.person (person_id, gender_concept_id, year_of_birth,"
                 " race_concept_id, ethnicity_concept_id) VALUES (99, 0, 2000, 0, 0)",
                 "permission denied for table person"),
                ("UPDATE omop.person SET year_of_birth = 1900", "permission denied for table person"),
                ("DELETE FROM omop.image_occurrence", "permission denied for table image_occurrence"),
                ("TRUNCATE omop.concept", "permission denied for table concept"),
                ("SELECT * FROM pg_authid", "permission denied for table pg_authid"),
                ("SELECT pg_read_file('PG_VERSION')", "permission denied for function pg_read_file"),
                ("CREATE SCHEMA x", "permission denied for database omop")):
            p = self.pg.run_psql(sql, db="omop", user=self.pg.user)
            self.assertNotEqual(p.returncode, 0, sql)
            self.assertIn(needle, p.stderr, sql)
        self.assertEqual(self.sql("SELECT count(*) FROM omop.person"), "40")

    def test_login_needs_tcp_and_the_password(self):
        ok = self.pg.run_psql("SELECT 1", db="omop", user=self.pg.user)
        self.assertEqual((ok.returncode, ok.stdout.strip()), (0, "1"), ok.stderr)
        bad = self.pg.run_psql("SELECT 1", db="omop", user=self.pg.user, password="not-it")
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("password authentication failed", bad.stderr)
        none = self.pg.run_psql("SELECT 1", db="omop", user=self.pg.user, password="")
        self.assertNotEqual(none.returncode, 0)
        self.assertIn("no password supplied", none.stderr)
        # the reader through the socket, and the superuser over TCP: both refused
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith("PG"))
        for host, user in ((self.pg.socket_dir, self.pg.user), ("127.0.0.1", "postgres")):
            p = subprocess.run([os.path.join(pgmod.BINDIR, "psql"), "-w", "-X", "-h", host,
                                "-p", str(self.pg.port), "-U", user, "-d", "omop", "-c", "SELECT 1"],
                               capture_output=True, text=True, env=dict(env, PGPASSWORD=self.pg.password),
                               timeout=30)
            self.assertNotEqual(p.returncode, 0, (host, user))
            self.assertIn("pg_hba.conf rejects connection", p.stderr)
        # the kit keys name exactly this login
        e = self.pg.env()
        self.assertEqual(sorted(e), ["DATA_ACCESS_POSTGRES_PASSWORD", "DATA_ACCESS_POSTGRES_USER",
                                     "OMOP_DB_HOST", "OMOP_DB_PORT", "OMOP_POSTGRES_DB"])
        self.assertEqual((e["OMOP_DB_HOST"], e["OMOP_DB_PORT"], e["OMOP_POSTGRES_DB"],
                          e["DATA_ACCESS_POSTGRES_USER"]),
                         ("127.0.0.1", str(self.pg.port), "omop", "data_analyst_reader"))
        p = subprocess.run([os.path.join(pgmod.BINDIR, "psql"), "-w", "-X", "-At", "-c",
                            "SELECT current_user"], capture_output=True, text=True,
                           env=dict(env, **self.pg.reader_env()), timeout=30)
        self.assertEqual(p.stdout.strip(), "data_analyst_reader", p.stderr)

    def test_listens_on_loopback_only(self):
        self.assertEqual(self.sql("SHOW listen_addresses"), "127.0.0.1")
        self.assertEqual(self.sql("SHOW unix_socket_directories"), self.pg.socket_dir)
        self.assertEqual(self.sql("SHOW fsync") + self.sql("SHOW password_encryption"),
                         "offscram-sha-256")

    # -- the fixture and its expected answers ----------------------------------------

    def test_fixture_matches_persons_table(self):
        out = self.sql("SELECT person_id, birth_datetime::date, coalesce(gender_source_value, '<null>'),"
                       " year_of_birth = extract(year FROM birth_datetime)"
                       " FROM omop.person ORDER BY 1")
        got = {}
        for line in out.splitlines():
            pid, d, g, consistent = line.split("|")
            self.assertEqual(consistent, "t", line)
            got[int(pid)] = (d, None if g == "<null>" else g)
        self.assertEqual(got, fx.PERSONS)
        out = self.sql("SELECT accession_id, person_id FROM omop.image_occurrence"
                       " WHERE accession_id IS NOT NULL ORDER BY 1")
        self.assertEqual({a: int(p) for a, p in (l.split("|") for l in out.splitlines())},
                         fx.ACCESSIONS)
        self.assertEqual(self.sql("SELECT count(*) FROM omop.image_occurrence WHERE accession_id IS NULL"), "1")
        self.assertEqual(self.sql("SELECT count(*) > 0 FROM omop.concept_ancestor"), "t")

    def test_age_helper_agrees_with_postgres(self):
        out = self.sql("SELECT CURRENT_DATE, person_id,"
                       " (floor(date_part('year', age(CURRENT_DATE, birth_datetime)) / 10) * 10)::int"
                       " FROM omop.person ORDER BY 2")
        for line in out.splitlines():
            today, pid, b = line.split("|")
            self.assertEqual(fx.age_bucket(fx.PERSONS[int(pid)][0], datetime.date.fromisoformat(today)),
                             "%s-%d" % (b, int(b) + 9), pid)

    def test_hand_written_ages_hold_for_2026_to_2030(self):
        days = [datetime.date(y, m, d) for y in range(2026, 2031)
                for m, d in ((1, 1), (3, 1), (6, 15), (7, 31), (12, 31))]
        for name, table in fx.AGE_2026_2030.items():
            want = [{"value": v, "count": c} for v, c in table]
            for day in days:
                self.assertEqual(fx.age_distribution(fx.QUERIES[name].persons, day), want,
                                 "%s on %s" % (name, day))

    def test_hand_written_facts(self):
        for name, q in fx.QUERIES.items():
            n, cols, persons, subjects = self.ref.facts(q.sql)
            self.assertEqual(n, q.record_count, name)
            self.assertEqual(cols, q.columns, name)
            self.assertEqual(subjects, q.subjects, name)
            self.assertEqual(persons, q.persons, name)

    def test_expected_statistics(self):
        today = datetime.date.fromisoformat(self.sql("SELECT CURRENT_DATE"))
        seen_suppressed = seen_open = 0
        for threshold in (10, 3):
            for name, q in fx.QUERIES.items():
                want = fx.expected(name, today=today, threshold=threshold)
                got = self.ref.statistics(q.sql, threshold)
                self.assertTrue(fx.same_statistics(got, want),
                                "%s at %d:\n got %r\nwant %r" % (name, threshold, got, want))
                if threshold == 10:
                    seen_suppressed += want["suppressed"]
                    seen_open += not want["suppressed"]
        self.assertEqual((seen_open, seen_suppressed), (10, 6))
        self.assertEqual(fx.expected("Q_ZERO"), fx.expected("Q_ACC_10"))

    # -- the generator -----------------------------------------------------------------

    def test_gen_is_deterministic(self):
        self.pg.setup_omop(db="omop_gen")       # empty: DDL and grants only
        self.pg.dbname = "omop"
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith("PG"))
        env.update(self.pg.admin_env(), PGDATABASE="omop_gen")
        digest_sql = ";".join(
            "SELECT '%s', count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM omop.%s t" % (t, t)
            for t in ("person", "condition_occurrence", "image_occurrence", "concept_ancestor"))
        digests = []
        for _ in range(2):
            p = subprocess.run([GEN, "1000", "--load"], capture_output=True, text=True, env=env,
                               timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            digests.append(self.pg.psql(digest_sql, db="omop_gen"))
        self.assertEqual(digests[0], digests[1])
        counts = {l.split("|")[0]: int(l.split("|")[1]) for l in digests[0].split()}
        self.assertEqual(counts["person"], 1000)
        self.assertTrue(2500 <= counts["condition_occurrence"] <= 3500, counts)
        self.assertEqual(counts["image_occurrence"], 500)
        self.assertGreater(counts["concept_ancestor"], 0)
        # printed SQL is the loaded SQL
        p = subprocess.run([GEN, "1000"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout, pgmod._gen_module().generate_sql(1000))
        facts = self.pg.psql(
            "SELECT count(DISTINCT accession_id) = count(*), bool_and(accession_id ~ '^GEN[0-9]{8}$')"
            " FROM omop.image_occurrence;"
            "SELECT count(*) FILTER (WHERE gender_source_value = 'M') > 400,"
            " count(*) FILTER (WHERE gender_source_value = 'F') > 400,"
            " count(*) FILTER (WHERE gender_source_value IN ('U', 'X')) > 0,"
            " count(*) FILTER (WHERE year_of_birth = extract(year FROM birth_datetime)) = 1000,"
            " count(DISTINCT (floor(date_part('year', age(CURRENT_DATE, birth_datetime)) / 10))) >= 7"
            " FROM omop.person", db="omop_gen")
        self.assertEqual(facts.split(), ["t|t", "t|t|t|t|t"])
        # the login role still reads the truncated-and-refilled tables
        self.assertEqual(self.pg.psql("SELECT count(*) FROM omop.person", db="omop_gen",
                                      user=self.pg.user).strip(), "1000")

    @unittest.skipUnless(os.environ.get("FLIP_OMOP_BIG"), "set FLIP_OMOP_BIG=1 to time 1,000,000 persons")
    def test_gen_million(self):
        self.pg.setup_omop(db="omop_big")
        self.pg.dbname = "omop"
        t0 = time.monotonic()
        self.pg.load_generated(1_000_000, db="omop_big")
        dt = time.monotonic() - t0
        sys.stderr.write("gen 1000000: %.1f s, pgdata now %.0f MiB\n" % (dt, self.pg.du() / 1048576))
        self.assertLess(dt, 90)
        self.assertEqual(self.pg.psql("SELECT count(*) FROM omop.person", db="omop_big").strip(),
                         "1000000")


@unittest.skipUnless(pgmod.available(), "PostgreSQL 15 server programs not installed")
class TestClusterLifecycle(unittest.TestCase):

    def test_stop_leaves_nothing_running(self):
        tmp = tempfile.mkdtemp(prefix="flip-omop-")
        try:
            with pgmod.Postgres(tmp) as pg:
                pid = pg.postmaster_pid()
                self.assertIsNotNone(pid)
                running = pg.leftover_processes()
                self.assertIn(pid, running)
                self.assertGreater(len(running), 1, "postmaster and its children")
                self.assertTrue(os.path.exists(os.path.join(tmp, ".s.PGSQL.%d" % pg.port)))
            self.assertIsNone(pg.postmaster_pid())
            self.assertEqual(pg.leftover_processes(), [])
            self.assertFalse(os.path.exists(os.path.join(tmp, ".s.PGSQL.%d" % pg.port)))
            pg.stop()                                        # idempotent
            # files stay where they were, for the caller to remove
            self.assertTrue(os.path.exists(os.path.join(tmp, "pgdata", "PG_VERSION")))
            self.assertTrue(os.path.exists(os.path.join(tmp, "postgres.log")))
            # a second start of the same pgdata works (no second initdb)
            with pg:
                self.assertEqual(pg.psql("SELECT 1").strip(), "1")
            self.assertEqual(pg.leftover_processes(), [])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
