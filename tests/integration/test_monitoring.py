# SPDX-License-Identifier: Apache-2.0
"""test_monitoring - the node's metrics as a real node_exporter reads them; alert rules; dashboard.

A round of every task type goes through the hub emulator against a throwaway
PostgreSQL (the OMOP fixture) and a throwaway Orthanc: cohort queries (one answered,
one refused by the SQL guard), persist_cohort and create_imaging (a project whose
studies flip-exec imaging retrieves), get_imaging_status, reimport_studies,
update_user_profile, delete_imaging of an unknown project; the FL client is started
from a test kit, killed and restarted; `flipctl audit verify` checks the trail.
Then Debian's prometheus-node-exporter, started here on a free loopback port as a
throwaway user who is only a member of the metrics group, with the textfile collector
on the node's metrics directory and every other collector off, is scraped:

- the textfile collector read every file (no scrape error);
- every flip_ series parses, has HELP and TYPE, carries prog and the labels its
  family needs, and says what the round did (tasks by type and outcome, refusals by
  category, studies per project and state, bytes retrieved, heartbeat class, the FL
  client's restart and last exit, the audit chain); a second round moves the
  counters by exactly what it did;
- `promtool check metrics` finds nothing to say about the scrape;
- the group member reads the metrics and nothing else of the node (every other
  file and directory under the spool, state and log directories is refused), a
  user outside the group reads nothing, and `flipctl init` run again keeps it so;
- every alert rule passes `promtool check rules` and its unit tests
  (tests/monitoring/flip-node.rules.test.yml), and names only exported series;
- the dashboard is valid JSON, every panel has a query, and every query names only
  exported series (a typo is caught).
"""
import glob
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "omop"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pacs"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fl"))

import makekit  # noqa: E402
import payloads  # noqa: E402
from fixture_expected import ACCESSIONS  # noqa: E402
from nodeenv import NodeTestCase, wait_for  # noqa: E402
from orthanc import Orthanc, load_fixture  # noqa: E402
from pg import FixtureDatabase  # noqa: E402

EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
RULES = os.path.join(ROOT, "docs", "monitoring", "flip-node.rules.yml")
RULE_TESTS = os.path.join(ROOT, "tests", "monitoring", "flip-node.rules.test.yml")
DASHBOARD = os.path.join(ROOT, "docs", "monitoring", "flip-node.dashboard.json")
FAKECLIENT = os.path.join(os.path.dirname(HERE), "fl", "fakeclient.sh")
SLOT = "Trust_2"
ACC_SQL = "SELECT p.person_id, io.accession_id FROM person p JOIN image_occurrence io USING (person_id)"

# labels each family carries besides prog
FAMILY_LABELS = {
    "flip_heartbeat_answer": {"class"}, "flip_heartbeats_total": {"class"},
    "flip_poll_tasks_total": {"outcome"}, "flip_spool_jobs": {"state"},
    "flip_spool_oldest_age_seconds": {"state"}, "flip_filesystem_avail_bytes": {"dir"},
    "flip_filesystem_size_bytes": {"dir"}, "flip_exec_jobs": {"outcome"},
    "flip_tasks_total": {"task_type", "outcome"},
    "flip_cohort_queries_refused_total": {"reason"}, "flip_report_results": {"outcome"},
    "flip_report_results_total": {"outcome"}, "flip_imaging_studies": {"project", "state"},
    "flip_imaging_unretrieved_studies": {"project", "state", "reason"},
}

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset",
                "bool", "and", "or", "unless", "e", "inf", "nan"}


def parse_exposition(text):
    """{name: {"help", "type", "samples": [(labels dict, value)]}}; raises on a bad line."""
    fams = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            _, kind, name, rest = line.split(" ", 3)
            fams.setdefault(name, {"samples": []})[kind.lower()] = rest
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise ValueError("unparsable line: %r" % line)
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        ls = dict(LABEL_RE.findall(labels))
        if labels and ",".join('%s="%s"' % kv for kv in ls.items()) != labels.rstrip(","):
            raise ValueError("unparsable labels: %r" % line)
        base = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in fams:
                base = name[:-len(suffix)]
        fams.setdefault(base, {"samples": []})["samples"].append((ls, value))
    return fams


def value(fams, name, **labels):
    """The one sample of name whose labels include labels."""
    hits = [v for ls, v in fams.get(name, {}).get("samples", [])
            if all(ls.get(k) == str(x) for k, x in labels.items())]
    if len(hits) != 1:
        raise AssertionError("%s%r: %d samples, expected 1 (have %r)"
                             % (name, labels, len(hits), fams.get(name, {}).get("samples")))
    return hits[0]


def promql_series(expr):
    """The series names an expression (or a label_values() query) uses."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)        # strings
    e = re.sub(r"\{[^}]*\}", "", e)                       # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                      # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    e = re.sub(r"\$\{?\w+\}?", "", e)                     # Grafana variables
    e = re.sub(r"\blabel_values\s*\(([^,()]+),[^)]*\)", r"\1", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        tok = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or tok.lower() in PROMQL_WORDS:
            continue                                     # a function or a keyword
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue                                     # an exponent, as in 1e6
        names.add(tok)
    return names


def dashboard_queries(dash):
    out = []
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            out.append((p.get("title"), t.get("expr")))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            out.append(("variable " + v["name"], q.get("query") if isinstance(q, dict) else q))
    return out


def unknown_series(queries, exported):
    """[(where, name)] for every series a query names that is not exported."""
    bad = []
    for where, expr in queries:
        if not expr or not promql_series(expr):
            bad.append((where, expr))
        for n in sorted(promql_series(expr or "")):
            if n not in exported:
                bad.append((where, n))
    return bad


def rule_exprs(path):
    """(alert, expr) of each rule of a rules file, without a YAML parser: the rules
    file keeps every expr either on its line or as a `|` block."""
    with open(path) as f:
        lines = f.read().splitlines()
    out, alert = [], None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("- alert:"):
            alert = s.split(":", 1)[1].strip()
        elif s.startswith("expr:"):
            rest = s.split(":", 1)[1].strip()
            if rest != "|":
                out.append((alert, rest))
                continue
            indent = len(lines[i + 1]) - len(lines[i + 1].lstrip())
            block = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) < indent:
                    break
                block.append(nxt.strip())
            out.append((alert, " ".join(block)))
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def have_tools():
    return os.path.exists(EXPORTER) and os.path.exists(PROMTOOL)


@unittest.skipUnless(have_tools(), "prometheus-node-exporter and prometheus (promtool) are "
                     "test packages (packages.list)")
class TestRulesAndDashboard(unittest.TestCase):
    """What needs no node: the rules' own unit tests and the dashboard's shape."""

    def test_rules_check_and_unit_tests(self):
        p = subprocess.run([PROMTOOL, "check", "rules", RULES], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = subprocess.run([PROMTOOL, "test", "rules", RULE_TESTS], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS", p.stdout)
        # every alert has a unit test in which it fires and one in which it is quiet
        with open(RULE_TESTS) as f:
            tests = f.read()
        for alert, _ in rule_exprs(RULES):
            blocks = re.findall(r"alertname: %s\n\s+exp_alerts:(.*?)(?=\n\s+- eval_time|\n\s*- interval|\Z)"
                                % alert, tests, re.S)
            self.assertTrue(any(b.strip() == "[]" or b.strip().startswith("[]") for b in blocks),
                            "%s: no test where it stays quiet" % alert)
            self.assertTrue(any("exp_labels" in b for b in blocks),
                            "%s: no test where it fires" % alert)

    def test_a_broken_rule_fails_its_unit_test(self):
        """the unit tests judge the rules: a threshold moved the wrong way fails them"""
        tmp = tempfile.mkdtemp(prefix="flip-rules-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.makedirs(os.path.join(tmp, "docs", "monitoring"))
        os.makedirs(os.path.join(tmp, "tests", "monitoring"))
        with open(RULES) as f:
            rules = f.read().replace("> 900", "> 90000")
        with open(os.path.join(tmp, "docs", "monitoring", "flip-node.rules.yml"), "w") as f:
            f.write(rules)
        shutil.copy(RULE_TESTS, os.path.join(tmp, "tests", "monitoring"))
        p = subprocess.run([PROMTOOL, "test", "rules",
                            os.path.join(tmp, "tests", "monitoring", "flip-node.rules.test.yml")],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("FlipResultsNotReachingHub", p.stdout + p.stderr)

    def test_dashboard_shape_and_typo_detection(self):
        with open(DASHBOARD) as f:
            dash = json.load(f)
        self.assertEqual(dash["uid"], "flip-node")
        titles = [p["title"] for p in dash["panels"]]
        for want in ("Spool depth by state", "Task outcomes by type", "Heartbeat age",
                     "Oldest job waiting", "Imaging progress per project", "FL client restarts"):
            self.assertIn(want, titles)
        ids = [p["id"] for p in dash["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        queries = dashboard_queries(dash)
        self.assertTrue(all(expr for _, expr in queries))
        # the checker sees a misspelt series, a missing query, and a right one
        exported = {"flip_spool_jobs", "flip_tasks_total"}
        self.assertEqual(unknown_series([("p", 'max by (state) (flip_spool_jobs{prog="x"})')],
                                        exported), [])
        self.assertEqual(unknown_series([("p", 'max by (state) (flip_spool_job{prog="x"})')],
                                        exported), [("p", "flip_spool_job")])
        self.assertEqual(unknown_series([("p", "sum(increase(flip_tasks_totl[1h])) / 1e6")],
                                        exported), [("p", "flip_tasks_totl")])
        self.assertEqual(unknown_series([("p", "")], exported), [("p", "")])


@unittest.skipUnless(have_tools(), "prometheus-node-exporter and prometheus (promtool) are "
                     "test packages (packages.list)")
class TestScrape(FixtureDatabase, NodeTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.svc = tempfile.mkdtemp(prefix="flip-mon-")
        cls.pacs = Orthanc(os.path.join(cls.svc, "orthanc"))
        cls.pacs.start()
        cls.expected = load_fixture(cls.pacs, os.path.join(cls.svc, "orthanc"))
        kit = makekit.make_kit(SLOT, client_cmd=FAKECLIENT)
        cls.kit_tar = makekit.write_tar(kit, os.path.join(cls.svc, "kit.tgz"))
        # a real group and two real users: one in the group, one not
        tag = uuid.uuid4().hex[:8]
        cls.group, cls.member, cls.outsider = "flipmg" + tag, "flipmm" + tag, "flipmo" + tag
        subprocess.run(["groupadd", "--system", cls.group], check=True)
        for u in (cls.member, cls.outsider):
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", u], check=True)
        subprocess.run(["usermod", "-a", "-G", cls.group, cls.member], check=True)

    @classmethod
    def tearDownClass(cls):
        for u in (cls.member, cls.outsider):
            subprocess.run(["userdel", u], capture_output=True)
        subprocess.run(["groupdel", cls.group], capture_output=True)
        cls.pacs.stop()
        shutil.rmtree(cls.svc, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.kitdir = os.path.join(self.node.root, "fl-kit")
        self.images = os.path.join(self.node.root, "images")
        self.node.set_config(**self.pg.env(), **self.pacs.env(), FL_KIT_DIR=self.kitdir,
                             FL_KIT_SLOT=SLOT, BASE_IMAGES_DOWNLOAD_DIR=self.images)
        self.assertRun(self.node.flipctl("init", "--metrics-group", self.group))
        # the test's directories are root's 0700: let others pass, as /var/lib is
        for d in (self.tmp, self.node.root):
            os.chmod(d, 0o711)
        self.env = {"FLIP_FL_BACKOFF_BASE": "0.2"}
        self.exporter = None
        self.addCleanup(self.stop_fl)

    def stop_fl(self):
        if os.path.exists(os.path.join(self.node.state, "fl", "client.json")):
            self.node.run("flip-fl", "stop", "--grace", "1", env=self.env)

    def tearDown(self):
        if self.exporter:
            self.exporter.terminate()
            self.exporter.wait(10)
        super().tearDown()

    # -- helpers -----------------------------------------------------------------

    def as_user(self, user, paths):
        """[path readable by user] of paths: files opened, directories listed"""
        script = ("import os,sys,json\nok=[]\nfor p in json.load(sys.stdin):\n"
                  "    try:\n        os.listdir(p) if os.path.isdir(p) else open(p,'rb').read(1)\n"
                  "        ok.append(p)\n    except OSError:\n        pass\nprint(json.dumps(ok))\n")
        pw = pwd.getpwnam(user)
        groups = [g.gr_gid for g in grp.getgrall() if user in g.gr_mem]
        p = subprocess.run([sys.executable, "-c", script], input=json.dumps(paths),
                           capture_output=True, text=True, user=pw.pw_uid, group=pw.pw_gid,
                           extra_groups=groups, env={"PATH": "/usr/bin:/bin"}, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def start_exporter(self):
        pw = pwd.getpwnam(self.member)
        self.port = free_port()
        self.exporter = subprocess.Popen(
            [EXPORTER, "--web.listen-address=127.0.0.1:%d" % self.port,
             "--collector.disable-defaults", "--collector.textfile",
             "--collector.textfile.directory=" + os.path.join(self.node.state, "metrics")],
            user=pw.pw_uid, group=pw.pw_gid, extra_groups=[grp.getgrnam(self.group).gr_gid],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/",
            env={"PATH": "/usr/bin:/bin"})

        def up():
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=2)
                return True
            except OSError:
                return False
        self.assertTrue(wait_for(up, 20), "node_exporter did not answer")

    def scrape(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=10) as r:
            return r.read().decode()

    def round_of_every_type(self):
        """every task type once (two cohort queries), the imaging worker, FL, audit verify"""
        project = str(uuid.uuid4())
        p = payloads.make("persist_cohort", trust_id=self.hub.trust_id)
        p.update(project_id=project, query=ACC_SQL)
        self.add("persist_cohort", p)
        p = payloads.make("create_imaging", trust_id=self.hub.trust_id)
        p.update(project_id=project, query=None, project_name="Monitoring")
        create = self.add("create_imaging", p)
        self.add("cohort_query", payloads.make("cohort_query", self.hub.trust_id))
        bad = payloads.make("cohort_query", self.hub.trust_id)
        bad["query"] = "DELETE FROM omop.person"
        self.add("cohort_query", bad)
        self.add("update_user_profile")
        self.add("delete_imaging")          # an unknown project: a failure
        self.run_all()
        results = self.hub.task(create)["results"]
        self.assertTrue(results and results[0]["success"], results)
        imaging_id = json.loads(results[0]["result"])["ID"]
        self.assertRun(self.node.run("flip-exec", "imaging", timeout=600))
        for t in ("get_imaging_status", "reimport_studies"):
            p = payloads.make(t, trust_id=self.hub.trust_id)
            p["imaging_project_id"] = imaging_id
            self.add(t, p)
        self.run_all()
        # the FL client: started, killed, restarted after its backoff
        fl = lambda *a: self.node.run("flip-fl", *a, env=self.env)  # noqa: E731
        self.assertRun(fl("install-kit", self.kit_tar))
        os.makedirs(os.path.join(self.images, "net-1"), exist_ok=True)
        self.assertRun(fl("run"))
        with open(os.path.join(self.node.state, "fl", "client.json")) as f:
            pid = json.load(f)["pid"]
        os.kill(pid, signal.SIGKILL)
        self.assertRun(fl("run"))            # records the exit; waits out the backoff
        time.sleep(0.5)
        self.assertRun(fl("run"))            # restarts
        self.assertRun(self.node.flipctl("audit", "verify"))
        return project

    # -- the test ----------------------------------------------------------------

    def test_round_scraped_by_node_exporter(self):
        project = self.round_of_every_type()
        self.start_exporter()
        text = self.scrape()
        fams = parse_exposition(text)

        # the collector read every file the node wrote
        proms = sorted(os.path.basename(p) for p in
                       glob.glob(os.path.join(self.node.state, "metrics", "*.prom")))
        self.assertEqual(proms, ["flip-exec-imaging.prom", "flip-exec.prom", "flip-fl.prom",
                                 "flip-poll.prom", "flip-report.prom", "flipctl-audit.prom"])
        self.assertEqual(value(fams, "node_textfile_scrape_error"), 0, text[:2000])
        for f in proms:
            value(fams, "node_textfile_mtime_seconds", file=os.path.join(
                self.node.state, "metrics", f))
        # every other collector is off
        self.assertEqual([n for n in fams if n.startswith("node_") and not n.startswith(
            ("node_textfile_", "node_scrape_collector_", "node_exporter_"))], [])

        flip = {n: f for n, f in fams.items() if n.startswith("flip_")}
        self.assertGreater(len(flip), 30)
        for name, f in flip.items():
            self.assertTrue(f.get("help"), name)
            self.assertIn(f.get("type"), ("gauge", "counter"), name)
            self.assertEqual(f["type"] == "counter", name.endswith("_total"), name)
            self.assertTrue(f["samples"], name)
            for ls, _ in f["samples"]:
                self.assertIn("prog", ls, name)
                self.assertTrue(FAMILY_LABELS.get(name, set()) <= set(ls), (name, ls))

        # what the round did
        now = time.time()
        self.assertEqual(value(flip, "flip_heartbeat_answer", **{"class": "ok"}), 1)
        self.assertEqual(value(flip, "flip_heartbeat_answer", **{"class": "unreachable"}), 0)
        self.assertLess(now - value(flip, "flip_heartbeat_last_success_timestamp_seconds"), 600)
        tasks = lambda t, o: value(flip, "flip_tasks_total", task_type=t, outcome=o)  # noqa: E731
        self.assertEqual(tasks("cohort_query", "success"), 1)
        self.assertEqual(tasks("cohort_query", "failure"), 1)
        self.assertEqual(tasks("persist_cohort", "success"), 1)
        self.assertEqual(tasks("create_imaging", "success"), 1)
        self.assertEqual(tasks("get_imaging_status", "success"), 1)
        self.assertEqual(tasks("reimport_studies", "success"), 1)
        self.assertEqual(tasks("update_user_profile", "success"), 1)
        self.assertEqual(tasks("delete_imaging", "failure"), 1)
        self.assertEqual(value(flip, "flip_cohort_queries_refused_total", reason="sql_guard"), 1)
        self.assertEqual(value(flip, "flip_cohort_queries_refused_total", reason="policy_denied"), 0)
        self.assertEqual(value(flip, "flip_report_results_total", outcome="accepted"), 8)
        self.assertEqual(value(flip, "flip_poll_tasks_total", outcome="spooled"), 8)
        n = len(self.expected)
        self.assertGreater(n, 0)
        self.assertEqual(value(flip, "flip_imaging_studies", project=project, state="successful"), n)
        # the fixture's accessions without a study in the PACS are queue_failed, not_found
        missing = len(ACCESSIONS) - n
        self.assertGreater(missing, 0)
        self.assertEqual(value(flip, "flip_imaging_studies", project=project,
                               state="queue_failed"), missing)
        self.assertEqual(value(flip, "flip_imaging_unretrieved_studies", project=project,
                               state="queue_failed", reason="not_found"), missing)
        for st in ("queued", "processing", "failed"):
            self.assertEqual(value(flip, "flip_imaging_studies", project=project, state=st), 0)
        self.assertEqual(value(flip, "flip_imaging_unretrieved_studies", project=project,
                               state="queue_failed", reason="burned_in_annotation"), 0)
        self.assertEqual(value(flip, "flip_imaging_studies_retrieved_total"), n)
        stored = sum(os.path.getsize(p) for p in glob.glob(
            os.path.join(self.node.state, "imaging", "*", "data", "*", "*", "scans", "**", "*"),
            recursive=True) if os.path.isfile(p) and p.endswith(".dcm"))
        self.assertGreater(stored, 0)
        self.assertEqual(value(flip, "flip_imaging_retrieved_bytes_total"), stored)
        self.assertEqual(value(flip, "flip_fl_client_restarts_total"), 1)
        self.assertEqual(value(flip, "flip_fl_client_running"), 1)
        self.assertEqual(value(flip, "flip_fl_client_last_exit_signal"), 9)
        self.assertEqual(value(flip, "flip_fl_client_last_exit_code"), -1)
        self.assertEqual(value(flip, "flip_audit_chain_intact"), 1)
        self.assertGreater(value(flip, "flip_audit_chain_lines"), 10)
        self.assertLess(now - value(flip, "flip_audit_chain_last_verified_timestamp_seconds"), 600)
        self.assertEqual(value(flip, "flip_spool_jobs", prog="flip-report", state="done"), 8)
        self.assertEqual(value(flip, "flip_spool_oldest_age_seconds", prog="flip-report",
                               state="out"), 0)
        self.assertGreater(value(flip, "flip_filesystem_avail_bytes", prog="flip-poll", dir="spool"), 0)

        # promtool has nothing to say about the whole scrape
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True)
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

        # the rules and the dashboard name only series that exist
        exported = set(fams)
        self.assertEqual(unknown_series(rule_exprs(RULES), exported), [])
        with open(DASHBOARD) as f:
            self.assertEqual(unknown_series(dashboard_queries(json.load(f)), exported), [])

        # a second round moves the counters by what it did, no more
        self.add("cohort_query", payloads.make("cohort_query", self.hub.trust_id))
        self.run_all()
        fams2 = parse_exposition(self.scrape())
        self.assertEqual(value(fams2, "flip_tasks_total", task_type="cohort_query",
                               outcome="success"), 2)
        self.assertEqual(value(fams2, "flip_tasks_total", task_type="delete_imaging",
                               outcome="failure"), 1)
        self.assertEqual(value(fams2, "flip_report_results_total", outcome="accepted"), 9)
        self.assertEqual(value(fams2, "flip_cohort_queries_refused_total", reason="sql_guard"), 1)
        self.assertEqual(value(fams2, "flip_heartbeats_total", **{"class": "ok"}),
                         value(flip, "flip_heartbeats_total", **{"class": "ok"}) + 1)
        self.assertEqual(value(fams2, "flip_imaging_studies_retrieved_total"), n)

    def test_metrics_group_reads_metrics_and_nothing_else(self):
        self.round_of_every_type()
        for again in (False, True):
            if again:   # init run again keeps it (it used to clear operators' ACLs)
                self.assertRun(self.node.flipctl("init", "--metrics-group", self.group))
            everything = []
            for top in (self.node.spool, self.node.state, self.node.logdir, self.kitdir,
                        self.node.kit):
                everything.append(top)
                for d, dirs, files in os.walk(top):
                    everything += [os.path.join(d, x) for x in dirs + files]
            metrics = os.path.join(self.node.state, "metrics")
            proms = sorted(glob.glob(os.path.join(metrics, "*.prom")))
            self.assertEqual(len(proms), 6)
            readable = self.as_user(self.member, everything)
            self.assertEqual(sorted(readable), sorted([metrics] + proms))
            self.assertEqual(self.as_user(self.outsider, everything), [])
            st = os.stat(metrics)
            self.assertEqual((oct(st.st_mode & 0o7777), st.st_gid),
                             (oct(0o2750), grp.getgrnam(self.group).gr_gid))
            self.assertEqual(oct(os.stat(self.node.state).st_mode & 0o777), oct(0o710))
            for p in proms:
                self.assertEqual(oct(os.stat(p).st_mode & 0o777), oct(0o640))
            # a file written after init belongs to the group too (setgid directory)
            self.assertRun(self.node.poll())
            self.assertEqual(os.stat(os.path.join(metrics, "flip-poll.prom")).st_gid,
                             grp.getgrnam(self.group).gr_gid)


if __name__ == "__main__":
    unittest.main()
