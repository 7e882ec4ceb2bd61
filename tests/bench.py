#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench - flip-node's benchmarks, each a ratio against a reference run in the same
invocation on the same data (docs/design/quality.md). Prints a table and writes it, with the
machine it ran on, to --out (docs/benchmarks.md). Never fails the build.

Rows so far:
  poll   one flip-poll cycle (heartbeat + fetch of 50 tasks + decrypt + spool, fsync
         on) against two curl calls making the same HTTP requests (the heartbeat
         POST with the same body, the GET of /tasks/pending); wall time, CPU time
         and flip-poll's peak RSS. Median of --runs runs, each on a freshly
         filled hub queue; the order of the two alternates to spread machine noise.
  ct600  one CT study of --ct-slices (600) synthetic 512x512 16-bit slices made with
         pydicom, retrieved by flip-exec imaging (C-FIND + C-GET + de-identify + store,
         made durable before it is published) against dcmtk's getscu with
         TCP_NODELAY=1 fetching the same study into a folder (no fsync); throughput
         ratio and flip-exec's peak RSS.

--rows (or BENCH_ROWS) runs some rows only, e.g. `--rows ct600`; the default runs all.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "hub"))
sys.path.insert(0, os.path.join(HERE, "omop"))
sys.path.insert(0, os.path.join(HERE, "pacs"))
from hubclient import Hub  # noqa: E402
from orthanc import Orthanc, load_fixture  # noqa: E402
from pg import Postgres  # noqa: E402

import glob  # noqa: E402
import socket  # noqa: E402
import urllib.request  # noqa: E402

# the benchmark cohort: persons born 1940-1990 with their conditions (rows >> persons)
COHORT_SQL = ("SELECT p.person_id, p.gender_source_value, co.condition_concept_id "
              "FROM person p JOIN condition_occurrence co ON co.person_id = p.person_id "
              "WHERE p.year_of_birth BETWEEN 1940 AND 1990")
# the reference: the same statistics by hand in one statement, cohort materialised once
REFERENCE_SQL = """
WITH cohort AS MATERIALIZED (
  SELECT p.person_id, p.gender_source_value, co.condition_concept_id
  FROM omop.person p JOIN omop.condition_occurrence co ON co.person_id = p.person_id
  WHERE p.year_of_birth BETWEEN 1940 AND 1990),
persons AS (SELECT DISTINCT person_id FROM cohort WHERE person_id IS NOT NULL),
demo AS (SELECT floor(date_part('year', age(CURRENT_DATE, p.birth_datetime)) / 10) * 10 AS bucket,
                p.gender_source_value AS sex
         FROM persons JOIN omop.person p USING (person_id))
SELECT (SELECT count(*) || ',' || count(person_id) || ',' || count(gender_source_value) || ','
               || count(condition_concept_id) FROM cohort),
       (SELECT count(*) FROM persons),
       (SELECT json_agg(a ORDER BY bucket) FROM (SELECT bucket, count(*) FROM demo GROUP BY bucket) a),
       (SELECT json_agg(b) FROM (SELECT sex, count(*) FROM demo GROUP BY sex) b);
"""


def timed(argv, env=None):
    """Run argv; return (wall seconds, CPU seconds, exit status)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    return wall, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status)


def peak_rss_kib(argv, env=None):
    """Peak RSS of argv as GNU time reports it. (ru_maxrss seen from Python includes
    the interpreter's own pages: Linux carries the high-water mark across exec.)"""
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, env=env)
    return int(p.stderr.strip().splitlines()[-1])


def cohort_payload(tid):
    return {"query_name": "bench", "query": "SELECT person_id FROM person WHERE year_of_birth > 1950",
            "encrypted_project_id": "x", "query_id": str(uuid.uuid4()), "trust_id": tid}


def bench_poll(bindir, runs, tmp):
    hub = Hub()
    hub.start(tmp)
    try:
        kit = os.path.join(tmp, "flip.env")
        with open(kit, "w") as f:
            for k, v in hub.env().items():
                f.write(f"{k}={v}\n")
            f.write(f"FLIP_STATE_DIR={tmp}/state\nFLIP_LOG_DIR={tmp}/log\n")
        os.chmod(kit, 0o600)
        # the heartbeat body flip-poll sends, so curl sends the same bytes
        body = json.dumps({"services": {"flip-node": {"status": "healthy", "version": "0.1.0",
                                                       "response_ms": None},
                                         "spool": {"status": "healthy", "version": None,
                                                   "response_ms": 0}},
                           "collected_at": "2026-01-01T00:00:00Z"}, separators=(",", ":"))
        hdr = f"{hub.env()['TRUST_API_KEY_HEADER']}: {hub.api_key}"
        curl1 = ["curl", "-sS", "-o", "/dev/null", "-X", "POST", "-H", hdr, "-H",
                 "Content-Type: application/json", "--data-binary", body, hub.url + "/trust/heartbeat"]
        curl2 = ["curl", "-sS", "-o", "/dev/null", "-H", hdr, hub.url + "/tasks/pending"]
        node, ref = [], []
        for i in range(runs + 1):
            for who in (("node", "curl") if i % 2 == 0 else ("curl", "node")):
                hub.add_tasks([{"task_type": "cohort_query", "payload": cohort_payload(hub.trust_id)}
                               for _ in range(50)])
                if who == "node":
                    spool = os.path.join(tmp, "spool")
                    shutil.rmtree(spool, ignore_errors=True)
                    env = dict(os.environ, FLIP_SPOOL_DIR=spool)
                    w, c, rc = timed([os.path.join(bindir, "flip-poll"), "-c", kit], env)
                    if rc != 0:
                        raise SystemExit(f"flip-poll exited {rc} during the benchmark")
                    if len(os.listdir(os.path.join(spool, "new"))) != 50:
                        raise SystemExit("flip-poll did not spool 50 tasks")
                    if i:
                        node.append((w, c))
                else:
                    w1, c1, r1 = timed(curl1)
                    w2, c2, r2 = timed(curl2)
                    if r1 or r2:
                        raise SystemExit("curl failed during the benchmark")
                    if i:
                        ref.append((w1 + w2, c1 + c2))
        # peak RSS of a full cycle, and of curl for scale (both load libcurl and OpenSSL)
        hub.add_tasks([{"task_type": "cohort_query", "payload": cohort_payload(hub.trust_id)}
                       for _ in range(50)])
        shutil.rmtree(os.path.join(tmp, "spool"), ignore_errors=True)
        rss = peak_rss_kib([os.path.join(bindir, "flip-poll"), "-c", kit],
                           dict(os.environ, FLIP_SPOOL_DIR=os.path.join(tmp, "spool")))
        curl_rss = peak_rss_kib(curl2)
        med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
        return {
            "wall_ratio": med(node, 0) / med(ref, 0),
            "cpu_ratio": med(node, 1) / med(ref, 1),
            "node_wall_ms": med(node, 0) * 1000, "curl_wall_ms": med(ref, 0) * 1000,
            "rss_mb": rss / 1024.0, "curl_rss_mb": curl_rss / 1024.0,
        }
    finally:
        hub.stop()


def pipeline_run(bindir, tmp, hub, n):
    """N tasks through flip-poll, flip-exec and flip-report as the timers would run them,
    until the hub holds a result for every one; returns wall seconds."""
    kit = os.path.join(tmp, "flip.env")
    spool = os.path.join(tmp, "spool")
    shutil.rmtree(spool, ignore_errors=True)
    hub.reset()
    for i in range(0, n, 500):
        hub.add_tasks([{"task_type": "delete_imaging", "payload": {"imaging_project_id": str(uuid.uuid4())}}
                       for _ in range(min(500, n - i))])
    env = dict(os.environ, FLIP_SPOOL_DIR=spool)
    progs = [[os.path.join(bindir, p), "-c", kit] for p in ("flip-poll", "flip-exec", "flip-report")]
    t0 = time.perf_counter()
    while True:
        for argv in progs:
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if len(os.listdir(os.path.join(spool, "done"))) >= n:
            break
        if time.perf_counter() - t0 > 1800:
            raise SystemExit("spool throughput: not finished after 30 minutes")
    wall = time.perf_counter() - t0
    if sum(1 for t in hub.tasks() if t["results"]) != n:
        raise SystemExit("spool throughput: the hub did not get every result")
    return wall


def shell_cycles(tmp, n):
    """The reference: n write-fsync-rename cycles by a shell loop."""
    d = os.path.join(tmp, "shell")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    script = ('i=0; while [ $i -lt %d ]; do printf x | dd of=t.$i conv=fsync status=none && '
              'mv t.$i f.$i; i=$((i+1)); done' % n)
    t0 = time.perf_counter()
    subprocess.run(["sh", "-c", script], cwd=d, check=True)
    return time.perf_counter() - t0


def bench_spool(bindir, tmp, n):
    hub = Hub()
    hub.start(tmp)
    try:
        with open(os.path.join(tmp, "flip.env"), "w") as f:
            for k, v in hub.env().items():
                f.write(f"{k}={v}\n")
            f.write(f"FLIP_STATE_DIR={tmp}/state\nFLIP_LOG_DIR={tmp}/log\n")
        os.chmod(os.path.join(tmp, "flip.env"), 0o600)
        small = pipeline_run(bindir, tmp, hub, n // 10)
        large = pipeline_run(bindir, tmp, hub, n)
        ref = shell_cycles(tmp, n)
        return {"n": n, "small": small, "large": large, "ref": ref}
    finally:
        hub.stop()


def bench_cohort(bindir, tmp, big, runs):
    """cohort_query statistics by flip-exec against REFERENCE_SQL by psql, same data;
    flip-exec's peak RSS at 10,000 persons and at `big` persons."""
    pg = Postgres(os.path.join(tmp, "pg"))
    hub = Hub()
    out = {}
    try:
        pg.start()
        pg.setup_omop()
        hub.start(os.path.join(tmp, "hubc"))
        kit = os.path.join(tmp, "cohort.env")
        with open(kit, "w") as f:
            for k, v in list(hub.env().items()) + list(pg.env().items()):
                f.write(f"{k}={v}\n")
            for d in ("spool", "state", "log"):
                f.write(f"FLIP_{d.upper()}_DIR={tmp}/c-{d}\n")
        os.chmod(kit, 0o600)

        def node_run():
            hub.add_task("cohort_query", {"query_name": "bench", "query": COHORT_SQL,
                                          "encrypted_project_id": "x", "query_id": str(uuid.uuid4()),
                                          "trust_id": hub.trust_id})
            subprocess.run([os.path.join(bindir, "flip-poll"), "-c", kit], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            w, c, rc = timed([os.path.join(bindir, "flip-exec"), "-c", kit])
            if rc != 0:
                raise SystemExit("flip-exec failed during the cohort benchmark")
            return w

        def rss_run():
            hub.add_task("cohort_query", {"query_name": "bench", "query": COHORT_SQL,
                                          "encrypted_project_id": "x", "query_id": str(uuid.uuid4()),
                                          "trust_id": hub.trust_id})
            subprocess.run([os.path.join(bindir, "flip-poll"), "-c", kit], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return peak_rss_kib([os.path.join(bindir, "flip-exec"), "-c", kit])

        pg.load_generated(10000)
        pg.psql("ANALYZE", user=pg.superuser)
        out["rss_small"] = rss_run() / 1024.0
        pg.load_generated(big)
        pg.psql("ANALYZE", user=pg.superuser)
        out["rss_big"] = rss_run() / 1024.0
        node, ref = [], []
        for i in range(runs):
            for who in (("node", "ref") if i % 2 == 0 else ("ref", "node")):
                if who == "node":
                    node.append(node_run())
                else:
                    t0 = time.perf_counter()
                    ref_out = pg.psql(REFERENCE_SQL)
                    ref.append(time.perf_counter() - t0)
        # the node's answer must be the reference's: compare the record count
        outdir = os.path.join(tmp, "c-spool", "out")
        last = sorted(os.listdir(outdir))[-1]
        with open(os.path.join(outdir, last, "cohort.json")) as f:
            got = json.load(f)
        want_rows = int(ref_out.split("|")[0].split(",")[0])
        if got["record_count"] != want_rows:
            raise SystemExit(f"cohort benchmark: node counted {got['record_count']}, reference {want_rows}")
        out.update(n=big, rows=want_rows, ratio=statistics.median(node) / statistics.median(ref),
                   node_s=statistics.median(node), ref_s=statistics.median(ref))
        return out
    finally:
        hub.stop()
        pg.stop()


def node_kit(tmp, name, hub, *extra):
    kit = os.path.join(tmp, name + ".env")
    with open(kit, "w") as f:
        for env in (hub.env(),) + extra:
            for k, v in env.items():
                f.write(f"{k}={v}\n")
        for d in ("spool", "state", "log"):
            f.write(f"FLIP_{d.upper()}_DIR={tmp}/{name}-{d}\n")
        f.write(f"FL_KIT_DIR={tmp}/{name}-fl-kit\n")   # flipctl init makes it
        f.write("TRUST_INTERNAL_SERVICE_KEY=bench-key\n")
    os.chmod(kit, 0o600)
    return kit


def node_round(bindir, kit):
    for prog in ("flip-poll", "flip-exec", "flip-report"):
        subprocess.run([os.path.join(bindir, prog), "-c", kit], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_dataframe(bindir, tmp, n, runs, freeze_runs):
    """The membership rows, on one database of n generated persons.

    /cohort/dataframe of an n-row cohort through flip-serve (socket-activated under GNU
    time, so its own peak RSS is measured; the query of record re-run on live OMOP and
    kept to the frozen membership) against psql's \\copy of the same query filtered to
    the same members (`person_id = ANY(<the n ids>)`) as CSV; flat memory is checked at
    n/100 rows too. Freezing: flip-exec running persist_cohort of the n-person cohort
    (membership written, fsynced, renamed) against psql's \\copy of the distinct,
    sorted person ids of the same query to a file."""
    pg = Postgres(os.path.join(tmp, "pgd"))
    hub = Hub()
    try:
        pg.start()
        pg.setup_omop()
        pg.load_generated(n)
        hub.start(os.path.join(tmp, "hubd"))
        kit = node_kit(tmp, "df", hub, pg.env())
        sql = "SELECT person_id, gender_source_value, year_of_birth, birth_datetime FROM person"
        qsql = sql.replace("FROM person", "FROM omop.person")
        projects = {}
        for rows, q in ((n, sql), (n // 100, sql + " WHERE person_id <= %d" % (n // 100))):
            project = str(uuid.uuid4())
            hub.add_task("persist_cohort", {"project_id": project, "trust_id": hub.trust_id,
                                            "encrypted_project_id": "x", "query": q,
                                            "query_id": str(uuid.uuid4())})
            node_round(bindir, kit)
            projects[rows] = (project, hub.seal(project, "project_id"))
        with open(os.path.join(tmp, "df-state", "cohorts", projects[n][0], "persons.txt")) as f:
            members = f.read().split()
        if len(members) != n:
            raise SystemExit("dataframe benchmark: %d members frozen, not %d" % (len(members), n))
        filtered = "SELECT * FROM (%s) c WHERE person_id = ANY('{%s}'::bigint[])" % (
            qsql, ",".join(members))
        del members

        def fetch_via_socket_activation(rows):
            project, sealed = projects[rows]
            body = json.dumps({"encrypted_project_id": sealed, "query": sql}).encode()
            with socket.socket() as ls:
                ls.bind(("127.0.0.1", 0))
                ls.listen(1)
                c = socket.create_connection(ls.getsockname())
                conn, _ = ls.accept()
                t0 = time.perf_counter()
                serve = subprocess.Popen(["/usr/bin/time", "-f", "%M", os.path.join(bindir, "flip-serve"),
                                          "-c", kit], stdin=conn, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
                conn.close()
                c.sendall(b"POST /cohort/dataframe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"X-Trust-Internal-Service-Key: bench-key\r\nConnection: close\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
                got = 0
                head = b""
                while True:
                    chunk = c.recv(1 << 20)
                    if not chunk:
                        break
                    if len(head) < 64:
                        head += chunk[:64]
                    got += len(chunk)
                c.close()
                _, err = serve.communicate(timeout=600)
                wall = time.perf_counter() - t0
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit("dataframe benchmark: flip-serve answered " + head[:40].decode(errors="replace"))
            rss = int(err.decode().strip().splitlines()[-1])
            return wall, rss, got

        node, ref, plain = [], [], []
        copy = "\\copy (%s) to stdout csv" % filtered
        for i in range(runs):
            for who in (("node", "ref", "plain") if i % 2 == 0 else ("plain", "ref", "node")):
                if who == "node":
                    w, rss_big, got = fetch_via_socket_activation(n)
                    node.append(w)
                elif who == "plain":
                    # for context: the query of record alone, no membership to apply
                    t0 = time.perf_counter()
                    p = pg.run_psql("\\copy (%s) to stdout csv" % qsql,
                                    args=("-X", "-q", "-o", "/dev/null"))
                    plain.append(time.perf_counter() - t0)
                    if p.returncode != 0:
                        raise SystemExit("dataframe benchmark: psql failed: " + p.stderr[:200])
                else:
                    if not ref:
                        # once: the reference must really produce the n rows
                        p = pg.run_psql(copy, args=("-X", "-q"))
                        if p.returncode != 0 or p.stdout.count("\n") != n:
                            raise SystemExit("dataframe benchmark: the psql reference failed: "
                                             + p.stderr[:200])
                    t0 = time.perf_counter()
                    p = pg.run_psql(copy, args=("-X", "-q", "-o", "/dev/null"))
                    ref.append(time.perf_counter() - t0)
                    if p.returncode != 0:
                        raise SystemExit("dataframe benchmark: the psql reference failed: " + p.stderr[:200])
        _, rss_small, _ = fetch_via_socket_activation(n // 100)
        out = {"n": n, "ratio": statistics.median(node) / statistics.median(ref),
               "plain_ratio": statistics.median(node) / statistics.median(plain),
               "rss_big": rss_big / 1024.0, "rss_small": rss_small / 1024.0, "bytes": got,
               "node_s": statistics.median(node), "ref_s": statistics.median(ref)}

        # freezing: persist_cohort of a fresh project each time (frozen once per project)
        fnode, fref = [], []
        ids_file = os.path.join(tmp, "ref-ids.txt")
        fcopy = ("\\copy (SELECT DISTINCT person_id FROM (%s) c WHERE person_id IS NOT NULL "
                 "ORDER BY 1) to '%s'" % (qsql, ids_file))
        for i in range(freeze_runs):
            for who in (("node", "ref") if i % 2 == 0 else ("ref", "node")):
                if who == "node":
                    hub.add_task("persist_cohort", {"project_id": str(uuid.uuid4()),
                                                    "trust_id": hub.trust_id,
                                                    "encrypted_project_id": "x", "query": sql,
                                                    "query_id": str(uuid.uuid4())})
                    subprocess.run([os.path.join(bindir, "flip-poll"), "-c", kit], check=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    w, _, rc = timed([os.path.join(bindir, "flip-exec"), "-c", kit])
                    if rc != 0:
                        raise SystemExit("freeze benchmark: flip-exec failed")
                    fnode.append(w)
                    subprocess.run([os.path.join(bindir, "flip-report"), "-c", kit], check=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                else:
                    t0 = time.perf_counter()
                    p = pg.run_psql(fcopy, args=("-X", "-q"))
                    if p.returncode != 0:
                        raise SystemExit("freeze benchmark: the psql reference failed: " + p.stderr[:200])
                    # the node's membership is fsynced: so is the reference's file
                    fd = os.open(ids_file, os.O_RDONLY)
                    os.fsync(fd)
                    os.close(fd)
                    fref.append(time.perf_counter() - t0)
        frozen = [t for t in hub.tasks() if t["task_type"] == "persist_cohort"]
        if not all(t["status"] == "COMPLETED" and t["hub_validated"] for t in frozen):
            raise SystemExit("freeze benchmark: a persist_cohort task did not complete")
        out.update(freeze_ratio=statistics.median(fnode) / statistics.median(fref),
                   freeze_node_s=statistics.median(fnode), freeze_ref_s=statistics.median(fref))
        return out
    finally:
        hub.stop()
        pg.stop()


def bench_imaging(bindir, tmp, runs):
    """flip-exec imaging (C-FIND + C-GET + de-identify + store) against dcmtk's getscu
    fetching the same studies into a folder, on the studies getscu can fetch as stored."""
    pg = Postgres(os.path.join(tmp, "pgi"))
    pacs = Orthanc(os.path.join(tmp, "orthanc"))
    hub = Hub()
    try:
        pg.start()
        pg.setup_omop(fixture_sql_path=os.path.join(HERE, "omop", "fixture.sql"))
        pacs.start()
        expected = load_fixture(pacs, os.path.join(tmp, "orthanc"))
        hub.start(os.path.join(tmp, "hubi"))
        kit = node_kit(tmp, "img", hub, pg.env(), pacs.env())
        subprocess.run([os.path.join(bindir, "flipctl"), "-c", kit, "init"], check=True,
                       stdout=subprocess.DEVNULL)
        project = str(uuid.uuid4())
        sql = "SELECT p.person_id, io.accession_id FROM person p JOIN image_occurrence io USING (person_id)"
        hub.add_task("persist_cohort", {"project_id": project, "trust_id": hub.trust_id,
                                        "encrypted_project_id": "x", "query": sql, "query_id": str(uuid.uuid4())})
        hub.add_task("create_imaging", {"project_id": project, "trust_id": hub.trust_id,
                                        "project_name": "bench", "query": None, "users": [],
                                        "dicom_to_nifti": False})
        node_round(bindir, kit)
        imaging = glob.glob(os.path.join(tmp, "img-state", "imaging", "*-*-*-*-*"))[0]

        def getscu(acc, out, env=None):
            return subprocess.run(["getscu", "-S", "-aet", "FLIPNODE", "-aec", pacs.aet, pacs.host,
                                   str(pacs.dicom_port), "-k", "0008,0052=STUDY",
                                   "-k", "0020,000D=" + pacs.studies[acc], "-od", out],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=env).returncode

        # getscu as Debian ships it leaves Nagle's algorithm on; dcmtk's own runtime
        # switch (TCP_NODELAY=1) turns it off, which is half of what the node does to
        # its sockets (lib/dicom.cc, TunedConnection): the second reference
        nodelay = dict(os.environ, TCP_NODELAY="1")

        # the studies getscu can fetch as Orthanc stored them (it proposes one transfer syntax)
        usable = []
        for acc in expected:
            out = os.path.join(tmp, "probe-" + acc)
            os.makedirs(out)
            if getscu(acc, out) == 0 and len(os.listdir(out)) == expected[acc]:
                usable.append(acc)
            shutil.rmtree(out)

        def reset():
            shutil.rmtree(os.path.join(imaging, "data"), ignore_errors=True)
            os.makedirs(os.path.join(imaging, "data"))
            for f in glob.glob(os.path.join(imaging, "accessions", "*.json")):
                with open(f) as fh:
                    st = json.load(fh)
                st["state"] = "queued" if st["accession"] in usable else "queue_failed"
                with open(f, "w") as fh:
                    json.dump(st, fh)

        node, ref, ref_nodelay = [], [], []
        for i in range(runs):
            for who in (("node", "ref", "nodelay") if i % 2 == 0 else ("nodelay", "ref", "node")):
                if who == "node":
                    reset()
                    w, _, rc = timed([os.path.join(bindir, "flip-exec"), "-c", kit, "imaging"])
                    if rc != 0:
                        raise SystemExit("flip-exec imaging failed during the benchmark")
                    node.append(w)
                else:
                    out = os.path.join(tmp, "getscu-out")
                    shutil.rmtree(out, ignore_errors=True)
                    os.makedirs(out)
                    t0 = time.perf_counter()
                    for acc in usable:
                        if getscu(acc, out, nodelay if who == "nodelay" else None) != 0:
                            raise SystemExit("getscu failed during the benchmark")
                    (ref if who == "ref" else ref_nodelay).append(time.perf_counter() - t0)
        instances = sum(expected[a] for a in usable)
        return {"studies": len(usable), "instances": instances,
                "ratio": statistics.median(ref) / statistics.median(node),
                "ratio_nodelay": statistics.median(ref_nodelay) / statistics.median(node)}
    finally:
        hub.stop()
        pacs.stop()
        pg.stop()


def ct_slices(out, n, acc):
    """n synthetic CT slices of 512x512 16-bit, one study and series, explicit VR LE"""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    root = "1.2.826.0.1.3680043.9.7778."
    base = bytearray(os.urandom(512 * 512 * 2))
    for i in range(n):
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SOPInstanceUID = root + "3.%d" % i
        ds.StudyInstanceUID = root + "1"
        ds.SeriesInstanceUID = root + "2"
        ds.FrameOfReferenceUID = root + "4"
        ds.AccessionNumber = acc
        ds.PatientID = "BENCH-PATIENT"
        ds.PatientName = "Bench^Patient"
        ds.PatientBirthDate = "19600102"
        ds.StudyDate = ds.ContentDate = "20240101"
        ds.Modality = "CT"
        ds.BurnedInAnnotation = "NO"
        ds.SeriesNumber = 1
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [0, 0, float(i)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 1.0
        ds.Rows = ds.Columns = 512
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        base[i % len(base)] = i % 256
        ds.PixelData = bytes(base)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
        ds.file_meta = meta
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.preamble = b"\0" * 128
        pydicom.dcmwrite(os.path.join(out, "%04d.dcm" % i), ds, write_like_original=False)
    return root + "1"


def bench_ct600(bindir, tmp, runs, slices):
    """flip-exec imaging of one CT study of `slices` 512x512 slices against getscu with
    TCP_NODELAY=1 fetching it; median throughput ratio and flip-exec's peak RSS."""
    acc = "ACC0026"
    pg = Postgres(os.path.join(tmp, "pgc"))
    pacs = Orthanc(os.path.join(tmp, "orthanc-ct"))
    hub = Hub()
    try:
        pg.start()
        pg.setup_omop(fixture_sql_path=os.path.join(HERE, "omop", "fixture.sql"))
        pacs.start()
        src = os.path.join(tmp, "ct-src")
        os.makedirs(src)
        study = ct_slices(src, slices, acc)
        nbytes = 0
        for f in sorted(os.listdir(src)):
            with open(os.path.join(src, f), "rb") as fh:
                body = fh.read()
            nbytes += len(body)
            pacs.rest("POST", "/instances", body, "application/dicom", timeout=120)
        shutil.rmtree(src)
        hub.start(os.path.join(tmp, "hubc"))
        kit = node_kit(tmp, "ct", hub, pg.env(), pacs.env())
        subprocess.run([os.path.join(bindir, "flipctl"), "-c", kit, "init"], check=True,
                       stdout=subprocess.DEVNULL)
        project = str(uuid.uuid4())
        sql = "SELECT p.person_id, io.accession_id FROM person p JOIN image_occurrence io USING (person_id)"
        hub.add_task("persist_cohort", {"project_id": project, "trust_id": hub.trust_id,
                                        "encrypted_project_id": "x", "query": sql, "query_id": str(uuid.uuid4())})
        hub.add_task("create_imaging", {"project_id": project, "trust_id": hub.trust_id,
                                        "project_name": "bench", "query": None, "users": [],
                                        "dicom_to_nifti": False})
        node_round(bindir, kit)
        imaging = glob.glob(os.path.join(tmp, "ct-state", "imaging", "*-*-*-*-*"))[0]

        def reset():
            shutil.rmtree(os.path.join(imaging, "data"), ignore_errors=True)
            os.makedirs(os.path.join(imaging, "data"))
            for f in glob.glob(os.path.join(imaging, "accessions", "*.json")):
                with open(f) as fh:
                    st = json.load(fh)
                st["state"] = "queued" if st["accession"] == acc else "queue_failed"
                with open(f, "w") as fh:
                    json.dump(st, fh)

        def stored():
            return len(glob.glob(os.path.join(imaging, "data", "*", acc, "scans", "*", "resources",
                                              "DICOM", "files", "*.dcm")))

        nodelay = dict(os.environ, TCP_NODELAY="1")
        node, ref = [], []
        out = os.path.join(tmp, "ct-getscu")
        for i in range(runs):
            for who in (("node", "ref") if i % 2 == 0 else ("ref", "node")):
                if who == "node":
                    reset()
                    w, _, rc = timed([os.path.join(bindir, "flip-exec"), "-c", kit, "imaging"])
                    if rc != 0 or stored() != slices:
                        raise SystemExit("flip-exec imaging failed during the benchmark")
                    node.append(w)
                else:
                    shutil.rmtree(out, ignore_errors=True)
                    os.makedirs(out)
                    w, _, rc = timed(["getscu", "-S", "-aet", "FLIPNODE", "-aec", pacs.aet, pacs.host,
                                      str(pacs.dicom_port), "-k", "0008,0052=STUDY",
                                      "-k", "0020,000D=" + study, "-od", out], env=nodelay)
                    if rc != 0 or len(os.listdir(out)) != slices:
                        raise SystemExit("getscu failed during the benchmark")
                    ref.append(w)
        shutil.rmtree(out, ignore_errors=True)
        reset()
        rss = peak_rss_kib([os.path.join(bindir, "flip-exec"), "-c", kit, "imaging"]) / 1024
        return {"slices": slices, "mb": nbytes / 1e6, "runs": runs,
                "node_s": statistics.median(node), "ref_s": statistics.median(ref),
                "ratio": statistics.median(ref) / statistics.median(node), "rss_mb": rss}
    finally:
        hub.stop()
        pacs.stop()
        pg.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--out", default=None)
    ap.add_argument("--spool-tasks", type=int, default=10000,
                    help="tasks for the spool throughput row (0 skips it)")
    ap.add_argument("--persons", type=int, default=1000000,
                    help="generated persons for the cohort statistics row (0 skips it)")
    ap.add_argument("--dataframe-rows", type=int, default=1000000,
                    help="snapshot rows for the /cohort/dataframe row (0 skips it)")
    ap.add_argument("--imaging", type=int, default=1, help="0 skips the imaging row")
    ap.add_argument("--ct-slices", type=int, default=600,
                    help="slices of the one-study CT retrieval row (0 skips it)")
    ap.add_argument("--rows", "--only", dest="rows", default=os.environ.get("BENCH_ROWS", "all"),
                    help="comma-separated rows to run: poll, spool, cohort, dataframe, "
                    "imaging, ct600; dataframe is the /cohort/dataframe and freezing rows "
                    "(default all; also BENCH_ROWS)")
    args = ap.parse_args()
    want = set(args.rows.split(","))
    if not want <= {"all", "poll", "spool", "cohort", "dataframe", "imaging", "ct600"}:
        ap.error("--rows: unknown row in %s" % args.rows)

    def row(name):
        return "all" in want or name in want
    bindir = os.path.abspath(args.bin)
    tmp = tempfile.mkdtemp(prefix="flip-bench-")
    try:
        poll = bench_poll(bindir, args.runs, tmp) if row("poll") else None
        spool = bench_spool(bindir, tmp, args.spool_tasks) if args.spool_tasks and row("spool") else None
        cohort = (bench_cohort(bindir, tmp, args.persons, max(3, args.runs // 3))
                  if args.persons and row("cohort") else None)
        frame = (bench_dataframe(bindir, tmp, args.dataframe_rows, max(3, args.runs // 3),
                                 max(3, args.runs // 5))
                 if args.dataframe_rows and row("dataframe") else None)
        imaging = (bench_imaging(bindir, tmp, max(3, args.runs // 3))
                   if args.imaging and row("imaging") else None)
        ct = (bench_ct600(bindir, tmp, max(3, args.runs // 5), args.ct_slices)
              if args.ct_slices and row("ct600") else None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    machine = f"{platform.node()}: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}"
    rows = []
    if poll:
        rows += [
            ("one flip-poll cycle, 50 tasks: wall", "two curl calls", f"{poll['wall_ratio']:.2f}x", "<= 1.5x"),
            ("one flip-poll cycle, 50 tasks: CPU", "two curl calls", f"{poll['cpu_ratio']:.2f}x", "<= 1.5x"),
            ("flip-poll peak RSS (50 tasks)", f"curl: {poll['curl_rss_mb']:.1f} MB",
             f"{poll['rss_mb']:.1f} MB", "< 10 MB"),
        ]
    if spool:
        rows += [
            (f"spool throughput: {spool['n']} no-op tasks through poll, exec, report (fsync on)",
             f"{spool['n']} write-fsync-rename cycles by a shell loop",
             f"{spool['large'] / spool['ref']:.2f}x", "report it"),
            (f"growth: {spool['n']} tasks against {spool['n'] // 10}", "10x the tasks",
             f"{spool['large'] / spool['small']:.1f}x the time", "<= 12x"),
        ]
    if cohort:
        rows += [
            (f"cohort_query statistics, {cohort['n']:,} persons ({cohort['rows']:,} cohort rows)",
             "one hand-written psql statement", f"{cohort['ratio']:.2f}x", "<= 1.3x"),
            ("flip-exec peak RSS, cohort statistics", "10,000 persons against "
             f"{cohort['n']:,}", f"{cohort['rss_small']:.1f} MB / {cohort['rss_big']:.1f} MB",
             "within 2 MB"),
        ]
    if frame:
        rows += [
            (f"/cohort/dataframe of a {frame['n']:,}-member cohort, live re-run "
             f"({frame['bytes'] / 1e6:.0f} MB of JSON)",
             "psql \\copy (same query, person_id = ANY(members)) to stdout csv",
             f"{frame['ratio']:.2f}x", "<= 1.5x"),
            ("/cohort/dataframe, the same", "psql \\copy (the query alone, no membership) to stdout csv",
             f"{frame['plain_ratio']:.2f}x", "report it"),
            ("flip-serve peak RSS, dataframe", f"{frame['n'] // 100:,} rows against {frame['n']:,}",
             f"{frame['rss_small']:.1f} MB / {frame['rss_big']:.1f} MB", "flat"),
            (f"persist_cohort: freezing {frame['n']:,} members (flip-exec)",
             "psql \\copy of the distinct sorted person ids to a file, fsynced",
             f"{frame['freeze_ratio']:.2f}x", "<= 1.5x"),
        ]
    if imaging:
        rows += [
            (f"imaging retrieval, {imaging['studies']} studies / {imaging['instances']} instances "
             "(C-FIND + C-GET + de-identify + store)", "getscu of the same studies",
             f"{imaging['ratio']:.2f}x throughput", ">= 0.8x"),
            ("imaging retrieval, the same", "getscu of the same studies, TCP_NODELAY=1",
             f"{imaging['ratio_nodelay']:.2f}x throughput", "report it"),
        ]
    if ct:
        rows += [
            (f"imaging retrieval, one CT study of {ct['slices']} slices 512x512 ({ct['mb']:.0f} MB; "
             "C-FIND + C-GET + de-identify + store, made durable)", "getscu of the same study, TCP_NODELAY=1",
             f"{ct['ratio']:.2f}x throughput ({ct['node_s']:.1f} s against {ct['ref_s']:.1f} s)", ">= 1.0x"),
            ("flip-exec peak RSS, that retrieval", "", f"{ct['rss_mb']:.1f} MB", "< 100 MB"),
        ]
    raw = []
    if poll:
        raw.append(f"flip-poll {poll['node_wall_ms']:.1f} ms, two curl calls {poll['curl_wall_ms']:.1f} ms")
    if frame:
        raw.append(f"dataframe {frame['node_s']:.2f} s, psql {frame['ref_s']:.2f} s; freezing "
                   f"{frame['freeze_node_s']:.2f} s, psql {frame['freeze_ref_s']:.2f} s")
    lines = [
        "# Benchmarks",
        "",
        f"`make bench` on {time.strftime('%Y-%m-%d', time.gmtime())}, {machine}.",
        f"Median of {args.runs} runs per side; ratios are flip-node / reference (lower is better).",
        "",
        "| benchmark | reference | ratio | goal |",
        "|---|---|---|---|",
    ] + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows] + [
        "",
        "Raw medians (for context only, machines differ): " + "; ".join(raw) + ".",
        "",
        "Ratios above 1 are slower than the reference, except the imaging row, which is a "
        "throughput ratio (above 1 is faster).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out and args.rows == "all":
        with open(args.out + ".tmp", "w") as f:
            f.write(text)
        os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
