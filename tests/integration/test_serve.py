# SPDX-License-Identifier: Apache-2.0
"""test_serve - flip-serve, the FL client's data endpoints, end to end.

One class holds the expensive parts once: a throwaway PostgreSQL (tests/omop/pg.py)
loaded with tests/omop/gen's data set of N persons, a hub emulator, a node whose
kit has an internal key, two snapshots frozen the real way (persist_cohort tasks
through flip-poll, flip-exec and flip-report), and one `flip-serve --listen
127.0.0.1:<port>` started from FLIP_BIN. Requests are made with urllib the way
FLIP's `flip` library makes them: POST, a JSON body, the key header. Socket
activation is exercised by handing flip-serve an accepted socket on fd 0 (and a
socketpair end on fd 3 with LISTEN_FDS=1). The memory check serves the 200,000-row
snapshot under /usr/bin/time and reads the peak RSS.

Tests that change the kit (threshold, policy) put it back before they end; the
server reads the kit afresh for every connection, which is what they rely on.
"""
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import uuid
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "omop"))

import payloads  # noqa: E402
from nodeenv import FLIP_BIN, Node, base_env, wait_for  # noqa: E402
from hubclient import Hub  # noqa: E402
from pg import Postgres, free_port  # noqa: E402

N = 200_000                      # generated persons: the big snapshot has one row each
KEY = "internal-" + secrets.token_hex(16)
KEY_HEADER = "X-Trust-Internal-Service-Key"
TOO_SMALL = "Cohort is too small for row-level data to be released."
NO_SNAPSHOT = "No approved cohort snapshot exists for this project."
MARKER = "flip-serve-marker-5b2d"
RSS_LIMIT_KB = 20 * 1024

# person rows repeated per condition, joined to their images (NULL when none) so
# that accession ids repeat and are sometimes null; month_of_birth is NULL for ~2%
SMALL_SQL = ("SELECT p.person_id, p.year_of_birth, p.month_of_birth, p.gender_source_value, "
             "p.birth_datetime, c.condition_start_date, i.accession_id "
             "FROM omop.person p JOIN omop.condition_occurrence c ON c.person_id = p.person_id "
             "LEFT JOIN omop.image_occurrence i ON i.person_id = p.person_id "
             "WHERE p.person_id <= 300 "
             "ORDER BY p.person_id, c.condition_occurrence_id, i.image_occurrence_id")
BIG_SQL = ("SELECT person_id, year_of_birth, gender_source_value, birth_datetime "
           "FROM omop.person ORDER BY person_id")
NO_ACCESSION_SQL = "SELECT person_id, year_of_birth FROM omop.person WHERE person_id <= 50"
# a cohort whose member 123 a national data opt-out removes from OMOP during a test
OPTOUT_SQL = ("SELECT person_id, year_of_birth FROM omop.person "
              "WHERE person_id BETWEEN 101 AND 160 OR person_id > %d ORDER BY person_id" % N)


def fingerprint(project):
    return hashlib.sha256(project.encode()).hexdigest()[:12]


def pg_text(v):
    """A served JSON value as psql prints it (null as \\N)."""
    if v is None:
        return "\\N"
    if v is True or v is False:
        return "t" if v else "f"
    return str(v)


class TestServe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="flip-serve-")
        cls.pgdir = tempfile.mkdtemp(prefix="flip-pg-")
        cls.pg = Postgres(os.path.join(cls.pgdir, "pg"))
        cls.hub = None
        cls.server = None
        try:
            cls._set_up()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _set_up(cls):
        cls.pg.start()
        cls.pg.setup_omop()
        cls.pg.load_generated(N)
        cls.hub = Hub().start(os.path.join(cls.tmp, "hub"))
        cls.images = os.path.join(cls.tmp, "images")
        cls.node = Node(os.path.join(cls.tmp, "node"), cls.hub,
                        TRUST_INTERNAL_SERVICE_KEY=KEY, BASE_IMAGES_DOWNLOAD_DIR=cls.images,
                        **cls.pg.env())
        cls.small = cls._persist(SMALL_SQL)
        cls.big = cls._persist(BIG_SQL)
        cls.noacc = cls._persist(NO_ACCESSION_SQL)
        cls.optout = cls._persist(OPTOUT_SQL)
        for p in (cls.node.poll(), cls.node.exec(), cls.node.report()):
            assert p.returncode == 0, p.stderr
        for tid, _ in (cls.small, cls.big, cls.noacc, cls.optout):
            res = cls.hub.task(tid)["results"]
            assert len(res) == 1 and res[0]["success"], res
        cls.port = free_port()
        cls.url = "http://127.0.0.1:%d" % cls.port
        cls.server_log = os.path.join(cls.tmp, "flip-serve.log")
        cls.server_err = open(cls.server_log, "w")
        cls.server = subprocess.Popen(
            [os.path.join(FLIP_BIN, "flip-serve"), "-c", cls.node.kit, "--listen",
             "127.0.0.1:%d" % cls.port], env=base_env(), stdout=subprocess.DEVNULL,
            stderr=cls.server_err, cwd=cls.node.root)
        if not wait_for(lambda: cls._health_ok(), timeout=10):
            raise AssertionError("flip-serve did not answer /health")

    @classmethod
    def _persist(cls, sql):
        p = payloads.make("persist_cohort", trust_id=cls.hub.trust_id)
        p["query"] = sql
        return cls.hub.add_task("persist_cohort", p), p["project_id"].lower()

    @classmethod
    def _health_ok(cls):
        try:
            with urllib.request.urlopen(cls.url + "/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.send_signal(signal.SIGTERM)
            try:
                cls.server.wait(15)
            except subprocess.TimeoutExpired:
                cls.server.kill()
                cls.server.wait()
            cls.server_err.close()
        if cls.hub is not None:
            cls.hub.stop()
        cls.pg.stop()
        if os.environ.get("FLIP_KEEP_TMP"):
            print("\nkept %s and %s" % (cls.tmp, cls.pgdir), file=sys.stderr)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            shutil.rmtree(cls.pgdir, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------

    def call(self, path, body=None, key=KEY, method="POST", raw=None, content_type=None):
        """(status, body bytes) of one request as FLIP's flip library makes it."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type or "application/json")
        if key is not None:
            req.add_header(KEY_HEADER, key)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def raw_path(self, method, path):
        """(status, body) for a path sent byte for byte (no client normalisation)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            conn.putheader(KEY_HEADER, KEY)
            conn.putheader("Content-Type", "application/json")
            body = b'{"encrypted_central_hub_project_id": "x", "accession_id": "A1"}'
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def sealed(self, project):
        return self.hub.seal(project, "project_id")

    def ask(self, path, project, query="SELECT 1", key=KEY):
        return self.call(path, {"encrypted_project_id": self.sealed(project), "query": query},
                         key=key)

    def assertDetail(self, got, status, detail):
        self.assertEqual(got[0], status, got[1][:300])
        self.assertEqual(json.loads(got[1]), {"detail": detail})

    def psql_rows(self, sql):
        out = self.pg.psql(sql, args=("-X", "-q", "-A", "-t", "-F", "\x1f", "-P", "null=\\N"))
        return [line.split("\x1f") for line in out.rstrip("\n").split("\n")]

    def meta(self, project):
        with open(os.path.join(self.node.state, "cohorts", project, "meta.json")) as f:
            return json.load(f)

    def serve_fd(self, request, lead=None, extra_env=None, fd3=False):
        """Run flip-serve in socket-activation mode on one connection carrying request;
        returns (HTTPResponse status, body, exit code, stderr, peak RSS in kB or None)."""
        argv = [os.path.join(FLIP_BIN, "flip-serve"), "-c", self.node.kit]
        if fd3:
            # systemd's way without StandardInput=socket: the connection on fd 3,
            # LISTEN_FDS=1 and LISTEN_PID the server's own pid (sh execs into it)
            argv = ["/bin/sh", "-c", 'exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 '
                    'exec "$0" "$@"'] + argv
        if lead:
            argv = lead + argv
        env = base_env()
        env.update(extra_env or {})
        if fd3:
            client, conn = socket.socketpair()
        else:
            lsock = socket.socket()
            lsock.bind(("127.0.0.1", 0))
            lsock.listen(1)
            client = socket.create_connection(lsock.getsockname())
            conn, _ = lsock.accept()
            lsock.close()
        with client:
            with conn:
                p = subprocess.Popen(argv, stdin=conn, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env, cwd=self.node.root)
            client.sendall(request)
            resp = http.client.HTTPResponse(client)
            resp.begin()
            body = resp.read()
            status = resp.status
        _, err = p.communicate(timeout=60)
        err = err.decode(errors="replace")
        rss = None
        if lead:
            rss = int(err.strip().splitlines()[-1])
        return status, body, p.returncode, err, rss

    @staticmethod
    def http_request(path, body, key=KEY):
        data = json.dumps(body).encode()
        return (b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"%s: %s\r\nContent-Length: %d\r\n\r\n"
                % (path.encode(), KEY_HEADER.encode(), key.encode(), len(data))) + data

    # -- the tests ----------------------------------------------------------------

    def test_health_needs_no_key(self):
        status, body = self.call("/health", method="GET", key=None)
        self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}))

    def test_missing_or_wrong_key_is_401_and_the_right_key_works(self):
        project = self.small[1]
        for key in (None, "", "wrong", KEY + "x", KEY[:-1]):
            with self.subTest(key=key):
                got = self.ask("/cohort/dataframe", project, key=key)
                self.assertDetail(got, 401, "Invalid or missing internal service key")
        self.assertDetail(self.call("/upload/images/net-1", {}, key="wrong", method="PUT"), 401,
                          "Invalid or missing internal service key")
        status, _ = self.ask("/cohort/dataframe", project)
        self.assertEqual(status, 200)

    def test_bad_envelopes_are_400(self):
        other = self.hub.seal(self.small[1], "task:cohort_query")
        got = self.call("/cohort/dataframe", {"encrypted_project_id": other, "query": ""})
        self.assertDetail(got, 400, "encrypted_project_id failed authentication")
        for garbage in ("", "not-an-envelope", "eyJ2IjogMX0="):
            got = self.call("/cohort/accession-ids",
                            {"encrypted_project_id": garbage, "query": ""})
            self.assertDetail(got, 400, "Invalid encrypted_project_id")

    def test_project_id_must_be_a_uuid(self):
        for bad in ("not-a-uuid", self.small[1] + " ", "../" + self.small[1]):
            self.assertDetail(self.ask("/cohort/dataframe", bad), 400,
                              "Invalid encrypted_project_id")

    def test_no_snapshot_is_403(self):
        for path in ("/cohort/dataframe", "/cohort/accession-ids"):
            self.assertDetail(self.ask(path, str(uuid.uuid4())), 403, NO_SNAPSHOT)

    def test_policy_deny_and_invalid_policy(self):
        pol = os.path.join(self.tmp, "policy.toml")
        with open(pol, "w") as f:
            f.write('[[access.rule]]\nid = "no-rows"\naction = "cohort.dataframe"\n'
                    'effect = "deny"\nprojects = ["%s"]\n' % self.small[1].upper())
        os.chmod(pol, 0o600)
        try:
            self.node.set_config(ACCESS_POLICY_FILE=pol)
            self.assertDetail(self.ask("/cohort/dataframe", self.small[1]), 403, TOO_SMALL)
            self.assertEqual(self.ask("/cohort/accession-ids", self.small[1])[0], 200)
            # a rule for the action exists and none permits the other project: denied too
            self.assertDetail(self.ask("/cohort/dataframe", self.noacc[1]), 403, TOO_SMALL)
            with open(pol, "w") as f:
                f.write("[disclosure]\nmin_cohort_size = true\n")
            for path in ("/cohort/dataframe", "/cohort/accession-ids"):
                self.assertDetail(self.ask(path, self.small[1]), 500, "access_policy_invalid")
        finally:
            self.node.set_config(ACCESS_POLICY_FILE=None)
        self.assertEqual(self.ask("/cohort/dataframe", self.small[1])[0], 200)

    def test_threshold_raised_in_the_kit_applies_at_once(self):
        subjects = self.meta(self.small[1])["subject_count"]
        try:
            self.node.set_config(COHORT_QUERY_THRESHOLD=subjects + 1)
            for path in ("/cohort/dataframe", "/cohort/accession-ids"):
                self.assertDetail(self.ask(path, self.small[1]), 403, TOO_SMALL)
            self.node.set_config(COHORT_QUERY_THRESHOLD=subjects)
            self.assertEqual(self.ask("/cohort/dataframe", self.small[1])[0], 200)
        finally:
            self.node.set_config(COHORT_QUERY_THRESHOLD=None)

    def test_dataframe_is_the_query_of_record_on_live_omop(self):
        project = self.small[1]
        # an upper-case project id is the same project; the caller's SQL is ignored
        status, body = self.ask("/cohort/dataframe", project.upper(),
                                query="SELECT 1 /* %s */" % MARKER)
        self.assertEqual(status, 200, body[:300])
        got = json.loads(body, parse_float=Decimal)
        meta = self.meta(project)
        self.assertEqual(list(got), meta["columns"])
        # ordered by person_id, then as the query orders its rows: here the query's order
        rows = self.psql_rows(SMALL_SQL)
        self.assertEqual(len(rows), meta["row_count"])
        self.assertGreater(len(rows), 300)
        for i, col in enumerate(meta["columns"]):
            with self.subTest(column=col):
                self.assertEqual([pg_text(v) for v in got[col]], [r[i] for r in rows])
        self.assertIn(None, got["month_of_birth"])
        self.assertIn(None, got["accession_id"])

    def test_snapshot_holds_membership_not_values(self):
        d = os.path.join(self.node.state, "cohorts", self.small[1])
        self.assertEqual(sorted(os.listdir(d)),
                         ["accessions.txt", "meta.json", "persons.txt", "query.sql"])
        with open(os.path.join(d, "query.sql")) as f:
            self.assertEqual(f.read(), SMALL_SQL)
        with open(os.path.join(d, "persons.txt")) as f:
            persons = f.read().split()
        self.assertEqual(persons, [r[0] for r in self.psql_rows(
            "SELECT DISTINCT person_id FROM (%s) q ORDER BY 1" % SMALL_SQL)])
        # no value of any other column is on disk: a birth year is not in any file
        for name in os.listdir(d):
            with open(os.path.join(d, name)) as f:
                self.assertNotIn("1950-", f.read(), name)

    def test_a_person_removed_from_omop_is_absent_from_the_next_fetch(self):
        project = self.optout[1]
        status, body = self.ask("/cohort/dataframe", project)
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(json.loads(body)["person_id"], list(range(101, 161)))
        self.pg.psql("CREATE TABLE public.optout AS SELECT * FROM omop.person "
                     "WHERE person_id IN (123, 150); DELETE FROM omop.person WHERE person_id = 123;")
        try:
            status, body = self.ask("/cohort/dataframe", project)
            self.assertEqual(status, 200, body[:300])
            got = json.loads(body)
            self.assertEqual(got["person_id"], [p for p in range(101, 161) if p != 123])
            self.assertEqual(len(got["year_of_birth"]), 59)
            # a person added to OMOP who matches the query is not a member: not served
            self.pg.psql("INSERT INTO omop.person (person_id, gender_concept_id, year_of_birth, "
                         "race_concept_id, ethnicity_concept_id) VALUES (%d, 0, 1970, 0, 0);"
                         % (N + 5))
            status, body = self.ask("/cohort/dataframe", project)
            got = json.loads(body)["person_id"]
            self.assertEqual(got, [p for p in range(101, 161) if p != 123])
            self.assertEqual(self.meta(project)["row_count"], 60, "the snapshot is untouched")
        finally:
            self.pg.psql("DELETE FROM omop.person WHERE person_id IN (123, 150, %d);"
                         "INSERT INTO omop.person SELECT * FROM public.optout;"
                         "DROP TABLE public.optout;" % (N + 5))

    def test_threshold_is_rechecked_on_the_live_cohort(self):
        # 60 frozen members; a floor of 60 serves them, until one opts out
        project = self.optout[1]
        try:
            self.node.set_config(COHORT_QUERY_THRESHOLD=60)
            self.assertEqual(self.ask("/cohort/dataframe", project)[0], 200)
            self.pg.psql("CREATE TABLE public.optout2 AS SELECT * FROM omop.person "
                         "WHERE person_id = 124; DELETE FROM omop.person WHERE person_id = 124;")
            try:
                for path in ("/cohort/dataframe", "/cohort/accession-ids"):
                    self.assertDetail(self.ask(path, project), 403, TOO_SMALL)
            finally:
                self.pg.psql("INSERT INTO omop.person SELECT * FROM public.optout2;"
                             "DROP TABLE public.optout2;")
        finally:
            self.node.set_config(COHORT_QUERY_THRESHOLD=None)

    def test_format1_snapshot_converts_on_first_use_with_its_query(self):
        """A node upgraded from value snapshots: the FL client's first call with the
        approved query converts the snapshot; any other query gets 503 meanwhile."""
        project = str(uuid.uuid4())
        d = os.path.join(self.node.state, "cohorts", project)
        os.makedirs(d)
        rows = [(i, 1950 + i % 40) for i in range(1, 51)]
        meta = {"format_version": 1, "row_count": 50, "columns": ["person_id", "year_of_birth"],
                "kinds": ["number", "number"], "subject_count": 50, "has_accessions": False,
                "query_hash": hashlib.sha256(" ".join(NO_ACCESSION_SQL.lower().split())
                                             .encode()).hexdigest(),
                "created_at": "2026-01-02T03:04:05Z"}
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f)
        for i in range(2):
            with open(os.path.join(d, "c%04d.jsonl" % i), "w") as f:
                f.write("".join("%d\n" % r[i] for r in rows))
        self.assertDetail(self.ask("/cohort/dataframe", project, query="SELECT 1"), 503,
                          "Cohort snapshot awaits conversion to membership")
        self.assertIn("c0000.jsonl", os.listdir(d))
        status, body = self.ask("/cohort/dataframe", project, query=NO_ACCESSION_SQL)
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(json.loads(body)["person_id"], list(range(1, 51)))
        self.assertEqual(sorted(os.listdir(d)), ["meta.json", "persons.txt", "query.sql"])
        self.assertEqual(self.meta(project)["format_version"], 2)

    def test_accession_ids_are_the_frozen_ones_still_present_sorted(self):
        status, body = self.ask("/cohort/accession-ids", self.small[1])
        self.assertEqual(status, 200)
        want = sorted({acc for (acc,) in self.psql_rows("SELECT accession_id FROM (%s) q"
                                                          % SMALL_SQL) if acc != "\\N"},
                      key=lambda a: a.encode())
        self.assertGreater(len(want), 10)
        self.assertEqual(json.loads(body), {"accession_ids": want})
        status, body = self.ask("/cohort/accession-ids", self.noacc[1])
        self.assertEqual((status, json.loads(body)), (200, {"accession_ids": []}))
        # an image removed from image_occurrence leaves the list
        gone = want[3]
        self.pg.psql("CREATE TABLE public.gone AS SELECT * FROM omop.image_occurrence "
                     "WHERE accession_id = '%s'; DELETE FROM omop.image_occurrence "
                     "WHERE accession_id = '%s';" % (gone, gone))
        try:
            status, body = self.ask("/cohort/accession-ids", self.small[1])
            self.assertEqual(json.loads(body), {"accession_ids": [a for a in want if a != gone]})
        finally:
            self.pg.psql("INSERT INTO omop.image_occurrence SELECT * FROM public.gone;"
                         "DROP TABLE public.gone;")

    def test_create_imaging_live_query_streams_every_accession(self):
        """create_imaging with no snapshot runs its query live, through a cursor of
        5,000-row batches: about 12,000 rows (each accession repeated once per
        condition) must give exactly psql's distinct accessions, in first-seen order,
        across the batch boundaries"""
        sql = ("SELECT p.person_id, i.accession_id FROM omop.person p "
               "JOIN omop.condition_occurrence c ON c.person_id = p.person_id "
               "JOIN omop.image_occurrence i ON i.person_id = p.person_id "
               "WHERE i.image_occurrence_id <= 4000 "
               "ORDER BY i.image_occurrence_id, c.condition_occurrence_id")
        rows = [acc for (acc,) in self.psql_rows("SELECT accession_id FROM (%s) q" % sql)]
        want = list(dict.fromkeys(rows))
        self.assertGreater(len(rows), 10000)
        p = payloads.make("create_imaging", trust_id=self.hub.trust_id)
        p.update(query=sql, project_name="Live")
        tid = self.hub.add_task("create_imaging", p)
        for run in (self.node.poll(), self.node.exec(), self.node.report()):
            self.assertEqual(run.returncode, 0, run.stderr)
        res = self.hub.task(tid)["results"]
        self.assertTrue(len(res) == 1 and res[0]["success"], res)
        accdir = os.path.join(self.node.state, "imaging", json.loads(res[0]["result"])["ID"],
                              "accessions")
        got = []
        for name in sorted(os.listdir(accdir)):
            with open(os.path.join(accdir, name)) as f:
                got.append(json.load(f)["accession"])
        self.assertEqual(got, want)

    def test_body_over_1mib_is_413(self):
        body = {"encrypted_project_id": "x" * (1024 * 1024), "query": ""}
        self.assertDetail(self.call("/cohort/dataframe", body), 413,
                          "Request body too large (limit 1 MiB)")
        # just under the cap is read and judged on its content
        raw = json.dumps({"encrypted_project_id": "x" * (1024 * 1024 - 64), "query": ""})
        self.assertLessEqual(len(raw), 1024 * 1024)
        self.assertDetail(self.call("/cohort/dataframe", raw=raw.encode()), 400,
                          "Invalid encrypted_project_id")

    def test_malformed_or_misshapen_json_is_422(self):
        sealed = self.sealed(self.small[1])
        cases = [
            b'{"encrypted_project_id": ',
            b'{"encrypted_project_id": "%s", "encrypted_project_id": "%s", "query": ""}'
            % (sealed.encode(), sealed.encode()),
            b'[]', b'"x"', b'', b'{"query": ""}',
            b'{"encrypted_project_id": 1, "query": ""}',
            b'{"encrypted_project_id": "%s", "query": null}' % sealed.encode(),
            b'{"encrypted_project_id": "%s", "query": "\\u0000"}' % sealed.encode(),
            b'\xff\xfe',
        ]
        for raw in cases:
            with self.subTest(raw=raw[:60]):
                status, body = self.call("/cohort/dataframe", raw=raw)
                self.assertEqual(status, 422, body)
                self.assertIn("detail", json.loads(body))
        ok = json.dumps({"encrypted_project_id": sealed, "query": ""}).encode()
        status, _ = self.call("/cohort/dataframe", raw=ok, content_type="text/plain")
        self.assertEqual(status, 422)
        status, _ = self.call("/cohort/dataframe", raw=ok,
                              content_type="application/json; charset=utf-8")
        self.assertEqual(status, 200)

    def test_unknown_paths_404_and_wrong_methods_405(self):
        self.assertDetail(self.call("/nope", method="GET"), 404, "Not Found")
        self.assertDetail(self.call("/cohort/dataframe/", {}), 404, "Not Found")
        self.assertDetail(self.call("/download/images/", {}), 404, "Not Found")
        for method, path in (("GET", "/cohort/dataframe"), ("PUT", "/cohort/accession-ids"),
                             ("POST", "/health"), ("PUT", "/download/images/net-1"),
                             ("POST", "/upload/images/net-1"), ("DELETE", "/health")):
            with self.subTest(method=method, path=path):
                got = self.call(path, {} if method in ("POST", "PUT") else None, method=method)
                self.assertDetail(got, 405, "Method Not Allowed")

    def test_traversal_looking_net_ids_never_reach_the_file_system(self):
        for path in ("/download/images/..", "/download/images/net-1/../x",
                     "/download/images/%2e%2e", "/download/images/net-1%2f..%2f..%2fetc",
                     "/download/images/net-1/", "/download/images/net-", "/download/images/./net-1",
                     "/download/images/net-1234567", "/download/images/NET-1"):
            with self.subTest(path=path):
                status, body = self.raw_path("POST", path)
                self.assertIn(status, (400, 404), body)
        status, _ = self.raw_path("PUT", "/upload/images/..%2f..%2ftmp")
        self.assertIn(status, (404, 422))
        self.assertFalse(os.path.exists(self.images))

    def test_image_endpoints_without_an_imaging_project(self):
        # retrieval and hand-off end to end are in test_imaging_retrieval.py
        body = {"encrypted_central_hub_project_id": self.sealed(self.small[1]),
                "accession_id": "GEN00000001"}
        self.assertDetail(self.call("/download/images/net-1?assessor_type=scan", body), 404,
                          "Project not found")
        self.assertDetail(self.call("/upload/images/net-12", dict(body, files=["a.nii.gz"],
                                                                 scan_id="1", resource_id="SEG"),
                                    method="PUT"), 404, "Project not found")
        # traversal anywhere in a download is 400 "Invalid download request", before any
        # file is touched; resource_type is free-form but one safe path segment
        bad = "Invalid download request"
        self.assertDetail(self.call("/download/images/net-1", dict(body, accession_id="../x")),
                          400, bad)
        for rt in ("..", "a/b", "..%2f..%2fetc", "%2e%2e", ""):
            with self.subTest(resource_type=rt):
                self.assertDetail(self.call("/download/images/net-1?resource_type=" + rt, body),
                                  400, bad)
        self.assertDetail(self.call("/download/images/net-1?assessor_type=../x", body), 400, bad)
        # a name the store may hold (RTSTRUCT) passes the check: here no project, so 404
        self.assertDetail(self.call("/download/images/net-1?resource_type=RTSTRUCT", body), 404,
                          "Project not found")
        self.assertDetail(self.call("/upload/images/net-1", dict(body, accession_id="../x",
                                                                 files=[], scan_id="1",
                                                                 resource_id="SEG"),
                                    method="PUT"), 422, "Invalid accession_id")
        self.assertFalse(os.path.exists(os.path.join(self.images, "net-1", "x")))

    def test_concurrent_requests_are_all_answered(self):
        results = []

        def one(path, project):
            results.append(self.ask(path, project)[0])
        threads = [threading.Thread(target=one, args=(p, self.small[1]))
                   for p in ("/cohort/dataframe", "/cohort/accession-ids") * 12]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(results, [200] * 24)

    def test_socket_activation_on_fd0_and_fd3(self):
        status, body, rc, err, _ = self.serve_fd(
            b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertEqual((status, json.loads(body), rc), (200, {"status": "ok"}, 0), err)
        req = self.http_request("/cohort/accession-ids",
                                {"encrypted_project_id": self.sealed(self.small[1]),
                                 "query": ""})
        status, body, rc, err, _ = self.serve_fd(req, fd3=True)
        self.assertEqual((status, rc), (200, 0), err)
        self.assertGreater(len(json.loads(body)["accession_ids"]), 10)

    def test_socket_activation_refuses_a_terminal_or_a_listening_socket(self):
        p = subprocess.run([os.path.join(FLIP_BIN, "flip-serve"), "-c", self.node.kit],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=base_env(), timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a stream socket", p.stderr)
        with socket.socket() as lsock:
            lsock.bind(("127.0.0.1", 0))
            lsock.listen(1)
            p = subprocess.run([os.path.join(FLIP_BIN, "flip-serve"), "-c", self.node.kit],
                               stdin=lsock, capture_output=True, text=True, env=base_env(),
                               timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("Accept=yes", p.stderr)

    def test_no_internal_key_configured_is_503(self):
        kit = Node(os.path.join(self.tmp, "nokey"), self.hub, TRUST_INTERNAL_SERVICE_KEY=None,
                   FLIP_STATE_DIR=self.node.state)
        saved = self.node.kit
        try:
            self.node.kit = kit.kit
            req = self.http_request("/cohort/dataframe",
                                    {"encrypted_project_id": self.sealed(self.small[1]),
                                     "query": ""})
            status, body, rc, err, _ = self.serve_fd(req)
            self.assertEqual((status, json.loads(body)),
                             (503, {"detail": "internal service key not configured"}))
            self.assertEqual(rc, 0)
            self.assertEqual(err.count("TRUST_INTERNAL_SERVICE_KEY is not set"), 1, err)
            status, body, rc, err, _ = self.serve_fd(
                b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(status, 200)
        finally:
            self.node.kit = saved

    def test_listen_on_a_unix_socket_and_stop_on_sigterm(self):
        path = os.path.join(self.tmp, "serve.sock")
        p = subprocess.Popen([os.path.join(FLIP_BIN, "flip-serve"), "-c", self.node.kit,
                              "--listen", path], env=base_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        try:
            self.assertTrue(wait_for(lambda: os.path.exists(path), timeout=10))

            class UnixConnection(http.client.HTTPConnection):
                def connect(self):
                    self.sock = socket.socket(socket.AF_UNIX)
                    self.sock.connect(path)
            c = UnixConnection("localhost", timeout=30)
            c.request("GET", "/health")
            r = c.getresponse()
            self.assertEqual((r.status, json.loads(r.read())), (200, {"status": "ok"}))
            c.close()
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=20)
            self.assertEqual(p.returncode, 0, err)
            self.assertFalse(os.path.exists(path))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

    def test_200k_rows_stream_in_flat_memory(self):
        project = self.big[1]
        req = self.http_request("/cohort/dataframe",
                                {"encrypted_project_id": self.sealed(project), "query": ""})
        t0 = time.monotonic()
        status, body, rc, err, rss = self.serve_fd(req, lead=["/usr/bin/time", "-f", "%M"])
        elapsed = time.monotonic() - t0
        self.assertEqual((status, rc), (200, 0), err)
        got = json.loads(body)
        self.assertEqual(list(got), self.meta(project)["columns"])
        for col, values in got.items():
            self.assertEqual(len(values), N, col)
        self.assertEqual(got["person_id"][:3], [1, 2, 3])
        if os.environ.get("FLIP_SAN") != "1":   # ASan's shadow memory is not ours
            self.assertLess(rss, RSS_LIMIT_KB, "peak RSS %d kB" % rss)
        if os.environ.get("FLIP_SERVE_VERBOSE"):
            print("\n200k rows: %d bytes, peak RSS %d kB, %.2f s" % (len(body), rss, elapsed),
                  file=sys.stderr)

    def test_audit_and_logs_hold_counts_never_values(self):
        project = self.small[1]
        status, body = self.ask("/cohort/dataframe", project, query="SELECT /* %s */ 1" % MARKER)
        self.assertEqual(status, 200)
        ids_status, ids_body = self.ask("/cohort/accession-ids", project)
        self.assertEqual(ids_status, 200)
        ids = json.loads(ids_body)["accession_ids"]
        self.assertDetail(self.ask("/cohort/dataframe", project, key="wrong"), 401,
                          "Invalid or missing internal service key")
        rows = self.meta(project)["row_count"]
        want = [{"endpoint": "/cohort/dataframe", "method": "POST", "status": 200,
                 "rows": rows, "project": fingerprint(project), "complete": True},
                {"endpoint": "/cohort/accession-ids", "method": "POST", "status": 200,
                 "ids": len(ids), "project": fingerprint(project), "complete": True},
                {"endpoint": "/cohort/dataframe", "method": "POST", "status": 401,
                 "reason": "key", "complete": True}]

        def details():
            return [e["detail"] for e in self.node.audit_events() if e["event"] == "serve.request"]
        # each child records its request once the answer has gone out: wait for the last
        wait_for(lambda: all(w in details() for w in want), timeout=10)
        for w in want:
            self.assertIn(w, details())
        # flip-serve's own lines (flip-exec's persist_cohort records the project id)
        audit = "\n".join(line for line in self.node.audit_lines()
                          if json.loads(line)["prog"] == "flip-serve")
        with open(self.server_log) as f:
            log = f.read()
        self.assertIn("serving the query of record", log)
        for text in (audit, log):
            for secret in [MARKER, KEY, project, project.upper(), "GEN0"] + ids[:20]:
                self.assertNotIn(secret, text)


if __name__ == "__main__":
    unittest.main()
