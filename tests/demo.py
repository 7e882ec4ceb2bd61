#!/usr/bin/python3
"""demo - run flip-node's main job once against throwaway services and show the result.

`make demo` runs this with the release build. It starts the hub emulator on a free
loopback port, writes a kit file and a spool in a temporary folder, queues a
realistic sequence of tasks on the hub (what a researcher's actions produce), runs
the stages the way the timers would (flip-poll, flip-exec, flip-report), prints what
the hub received, shows `flipctl status` and `flipctl audit verify`, and removes
everything. A throwaway PostgreSQL holds the OMOP fixture (tests/omop), so cohort
statistics and the snapshot are real. Handlers that are not on this node yet answer
an honest 501, and the demo shows that rather than hiding it.
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
from hubclient import Hub  # noqa: E402
from pg import Postgres  # noqa: E402


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
    try:
        print("starting a throwaway PostgreSQL with the OMOP fixture ...")
        pg.start()
        pg.setup_omop(fixture_sql_path=os.path.join(HERE, "omop", "fixture.sql"))
        hub.start(tmp, trust_name="Trust_Demo")
        kit = os.path.join(tmp, "flip.env")
        with open(kit, "w") as f:
            for k, v in hub.env().items():
                f.write(f"{k}={v}\n")
            f.write(f"EXPECTED_TRUST_ID={hub.trust_id}\n")
            for k, v in pg.env().items():
                f.write(f"{k}={v}\n")
            for d in ("spool", "state", "log"):
                f.write(f"FLIP_{d.upper()}_DIR={os.path.join(tmp, d)}\n")
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
            ("imaging progress asked for", "get_imaging_status",
             {"imaging_project_id": str(uuid.uuid4()), "encoded_query": "U0VMRUNUIDE"}),
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
        hub.stop()
        pg.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
