#!/usr/bin/python3
"""run - run every flip-node test and print one summary line.

Unit tests are the cmocka programs in --units (one per module); integration tests
are the Python unittest files tests/integration/test_*.py and the hub emulator's
self-check, each run in its own interpreter with FLIP_BIN (the test build, crash
points compiled in) and FLIP_RELEASE_BIN (the release build) in its environment.
The last line is `N passed, N failed` (skips are shown after it when there are any);
the exit status is non-zero when anything failed or nothing ran.
"""
import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"


def run_unit(path):
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="stdout")
    try:
        p = subprocess.run([path], capture_output=True, text=True, env=env, timeout=300)
    except subprocess.TimeoutExpired:
        return 0, 1, 0, "timed out after 300 s"
    out = p.stdout + p.stderr
    passed = sum(int(m) for m in re.findall(r"\[  PASSED  \] (\d+) test", out))
    failed = sum(int(m) for m in re.findall(r"\[  FAILED  \] (\d+) test", out))
    skipped = sum(int(m) for m in re.findall(r"\[  SKIPPED \] (\d+) test", out))
    if p.returncode != 0 and failed == 0:
        failed = 1  # crashed or aborted before cmocka could count
    return passed, failed, skipped, out


def run_integration(path, env):
    try:
        p = subprocess.run([PY, "-m", "unittest", "-v", path], capture_output=True, text=True,
                           env=env, timeout=900, cwd=ROOT)
    except subprocess.TimeoutExpired as e:
        return 0, 1, 0, "timed out after 900 s\n" + (e.stderr or b"").decode(errors="replace")
    out = p.stderr + p.stdout
    m = re.search(r"^Ran (\d+) tests?", out, re.M)
    total = int(m.group(1)) if m else 0
    fails = sum(int(x) for x in re.findall(r"(?:failures|errors)=(\d+)", out.splitlines()[-1] if out else ""))
    skipped = sum(int(x) for x in re.findall(r"skipped=(\d+)", out.splitlines()[-1] if out else ""))
    if p.returncode != 0 and fails == 0:
        fails = 1
    return max(total - fails - skipped, 0), fails, skipped, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", default="build/test/unit")
    ap.add_argument("--bin", default="build/test/bin")
    ap.add_argument("--release-bin", default="build/bin")
    ap.add_argument("--only-units", action="store_true")
    ap.add_argument("-k", dest="pattern", help="run only test files whose name contains this")
    args = ap.parse_args()

    results = []
    units = sorted(os.path.join(args.units, f) for f in os.listdir(args.units)
                   if f.startswith("test_")) if os.path.isdir(args.units) else []
    files = []
    if not args.only_units:
        idir = os.path.join(HERE, "integration")
        files = sorted(os.path.join(idir, f) for f in os.listdir(idir)
                       if f.startswith("test_") and f.endswith(".py")) if os.path.isdir(idir) else []
        files.append(os.path.join(HERE, "hub", "test_emulator_selfcheck.py"))
    if args.pattern:
        units = [u for u in units if args.pattern in os.path.basename(u)]
        files = [f for f in files if args.pattern in os.path.basename(f)]

    env = dict(os.environ,
               FLIP_BIN=os.path.abspath(args.bin),
               FLIP_RELEASE_BIN=os.path.abspath(args.release_bin),
               PYTHONPATH=os.pathsep.join([os.path.join(HERE, "hub"), os.path.join(HERE, "integration")]),
               PYTHONDONTWRITEBYTECODE="1")
    for kind, items, fn in (("unit", units, run_unit), ("integration", files, None)):
        for path in items:
            t0 = time.monotonic()
            p, f, s, out = run_unit(path) if kind == "unit" else run_integration(path, env)
            name = os.path.relpath(path, ROOT)
            print(f"{'ok  ' if f == 0 else 'FAIL'} {name}: {p} passed, {f} failed"
                  f"{f', {s} skipped' if s else ''} ({time.monotonic() - t0:.1f} s)", flush=True)
            if f:
                print("\n".join("    " + line for line in out.rstrip().splitlines()[-80:]), flush=True)
            results.append((p, f, s))
    passed = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    skipped = sum(r[2] for r in results)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
