#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""demo - run flip-node's main job once against throwaway services and show the result.

`make demo` runs this with the release build. It starts the hub emulator on a free
loopback port, writes a kit file and a spool in a temporary folder, queues a
realistic sequence of tasks on the hub (what a researcher's actions produce), runs
the stages the way the timers would (flip-poll, flip-exec, flip-report), prints what
the hub received, shows `flipctl status` and `flipctl audit verify`, and removes
everything. A throwaway PostgreSQL holds the OMOP fixture (tests/omop) and a throwaway
Orthanc the DICOM fixture (tests/pacs), so cohort statistics, the snapshot, the
imaging retrieval and the FL data fetch through flip-serve are all real.
"""
import argparse
import json
import os
import shutil
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

import socket  # noqa: E402
import urllib.request  # noqa: E402


def run(bindir, prog, *args, kit):
    p = subprocess.run([os.path.join(bindir, prog), "-c", kit, *args],
                       capture_output=True, text=True, timeout=120)
    for line in p.stderr.strip().splitlines():
        print(f"    {line}")
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    bindir = os.path.abspath(args.bin)
    tmp = tempfile.mkdtemp(prefix="flip-demo-")
    t0 = time.monotonic()
    hub = Hub()
    pg = Postgres(os.path.join(tmp, "pg"))
    pacs = Orthanc(os.path.join(tmp, "orthanc"))
    serve = None
    try:
        print("starting a throwaway PostgreSQL with the OMOP fixture and an Orthanc PACS ...")
        pg.start()
        pg.setup_omop(fixture_sql_path=os.path.join(HERE, "omop", "fixture.sql"))
        pacs.start()
        studies = load_fixture(pacs, os.path.join(tmp, "orthanc"))
        hub.start(tmp, trust_name="Trust_Demo")
        kit = os.path.join(tmp, "flip.env")
        with open(kit, "w") as f:
            for k, v in hub.env().items():
                f.write(f"{k}={v}\n")
            f.write(f"EXPECTED_TRUST_ID={hub.trust_id}\n")
            for k, v in list(pg.env().items()) + list(pacs.env().items()):
                f.write(f"{k}={v}\n")
            f.write("TRUST_INTERNAL_SERVICE_KEY=demo-internal-key\n")
            for d in ("spool", "state", "log"):
                f.write(f"FLIP_{d.upper()}_DIR={os.path.join(tmp, d)}\n")
            f.write(f"FL_KIT_DIR={os.path.join(tmp, 'fl-kit')}\n")   # flipctl init makes it
        os.chmod(kit, 0o600)
        print(f"hub emulator on {hub.url}, node files in {tmp}\n")

        tid, project, query_id = hub.trust_id, str(uuid.uuid4()), str(uuid.uuid4())
        sealed_project = hub.seal(project, "project_id")
        cohort_sql = ("SELECT p.person_id, p.gender_source_value, p.year_of_birth, io.accession_id "
                      "FROM person p LEFT JOIN image_occurrence io USING (person_id)")
        steps = [
            ("researcher runs a cohort query", "cohort_query",
             {"query_name": "over-55s with imaging", "query": cohort_sql,
              "encrypted_project_id": sealed_project, "query_id": query_id, "trust_id": tid}),
            ("a query too small to release", "cohort_query",
             {"query_name": "tiny", "query": "SELECT person_id FROM person WHERE person_id < 4",
              "encrypted_project_id": sealed_project, "query_id": str(uuid.uuid4()),
              "trust_id": tid}),
            ("a hostile query", "cohort_query",
             {"query_name": "probe", "query": "SELECT * FROM pg_catalog.pg_authid",
              "encrypted_project_id": sealed_project, "query_id": str(uuid.uuid4()),
              "trust_id": tid}),
            ("project approved: freeze the cohort", "persist_cohort",
             {"project_id": project, "trust_id": tid, "encrypted_project_id": sealed_project,
              "query": cohort_sql, "query_id": query_id}),
            ("imaging project created", "create_imaging",
             {"project_id": project, "trust_id": tid, "project_name": "Demo study",
              "query": None, "dicom_to_nifti": True,
              "users": [{"id": str(uuid.uuid4()), "email": "r@example.org", "name": "R. Searcher",
                         "organisation": "Example University", "is_disabled": False}]}),
        ]
        for label, ttype, payload in steps:
            hub.add_task(ttype, payload)
        # what an attacker or a broken hub could send: it must fail cleanly, never run
        hub.add_raw_task("cohort_query", "bm90IGFuIGVudmVsb3Bl")
        hub.add_task("create_imaging", steps[4][2], context="task:delete_imaging")
        print("queued on the hub:")
        for label, ttype, _ in steps:
            print(f"  {ttype:<20} {label}")
        print(f"  {'cohort_query':<20} a payload that is not an envelope at all")
        print(f"  {'create_imaging':<20} a payload sealed for another task type (replay)\n")

        print("flip-poll (heartbeat, fetch, decrypt, validate, spool):")
        run(bindir, "flip-poll", kit=kit)
        print("flip-exec (run the handlers in hub order):")
        run(bindir, "flip-exec", kit=kit)
        print("flip-report (upload results exactly once):")
        run(bindir, "flip-report", kit=kit)
        subprocess.run([os.path.join(bindir, "flipctl"), "-c", kit, "init"], capture_output=True)

        imaging_id = next(json.loads(r["result"])["ID"] for t in hub.tasks()
                          if t["task_type"] == "create_imaging" for r in t["results"] if r["success"])
        print(f"\nflip-exec imaging (C-FIND + C-GET from Orthanc, de-identify, store; "
              f"{len(studies)} of the cohort's studies are on the PACS):")
        run(bindir, "flip-exec", "imaging", kit=kit)
        hub.add_task("get_imaging_status", {"imaging_project_id": imaging_id,
                                            "encoded_query": "U0VMRUNUIDE"})
        print("then the hub asks for the imaging status (poll, exec, report):")
        for prog in ("flip-poll", "flip-exec", "flip-report"):
            run(bindir, prog, kit=kit)

        print("\nwhat the hub received:")
        for t in hub.tasks():
            for r in t["results"]:
                body = json.loads(r["result"]) if r["result"] else None
                shown = "null" if body is None else body.get("error", body)
                print(f"  {t['task_type']:<20} {t['status']:<10} {shown}")
        for c in hub.cohort_results()["history"]:
            groups = ", ".join(f"{g['name']}: " + " ".join(f"{r['value'].replace(chr(10), '_')}={r['count']}"
                                                           for r in g["results"]) for g in c["data"])
            print(f"  /cohort/results      query {c['query_id'][:8]}  record_count={c['record_count']}"
                  f"  suppressed={c.get('suppressed')}" + (f"  error={c['error']!r}" if "error" in c else ""))
            if groups:
                print(f"                       {groups}")
        beats = hub.heartbeats()
        if beats and beats[-1]["body"]:
            services = ", ".join(f"{k}={v['status']}" for k, v in beats[-1]["body"]["services"].items())
            print(f"  heartbeat            {services}")

        # the FL client's data call, through flip-serve, with the hub-sealed project id
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            port = sk.getsockname()[1]
        serve = subprocess.Popen([os.path.join(bindir, "flip-serve"), "-c", kit, "--listen",
                                  f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/cohort/dataframe",
            data=json.dumps({"encrypted_project_id": sealed_project, "query": cohort_sql}).encode(),
            headers={"Content-Type": "application/json",
                     "X-Trust-Internal-Service-Key": "demo-internal-key"})
        frame = json.loads(urllib.request.urlopen(req, timeout=30).read())
        print(f"\nFL data fetch: POST /cohort/dataframe through flip-serve -> "
              f"{len(next(iter(frame.values())))} rows of columns {list(frame)}")

        snaps = os.path.join(tmp, "state", "cohorts")
        for project_dir in sorted(os.listdir(snaps)) if os.path.isdir(snaps) else []:
            with open(os.path.join(snaps, project_dir, "meta.json")) as f:
                meta = json.load(f)
            print(f"\nfrozen snapshot for project {project_dir[:8]}: {meta['row_count']} rows, "
                  f"{meta['subject_count']} subjects, columns {meta['columns']}")

        print("\nflipctl status:")
        p = subprocess.run([os.path.join(bindir, "flipctl"), "-c", kit, "status"],
                           capture_output=True, text=True)
        print("\n".join("  " + line for line in p.stdout.splitlines()))
        p = subprocess.run([os.path.join(bindir, "flipctl"), "-c", kit, "audit", "verify"],
                           capture_output=True, text=True)
        print("flipctl audit verify:\n  " + p.stdout.strip().replace(tmp, "<tmp>"))
        print(f"\ndemo finished in {time.monotonic() - t0:.1f} s")
        return 0
    finally:
        if serve:
            serve.terminate()
            serve.wait(timeout=10)
        hub.stop()
        pacs.stop()
        pg.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
