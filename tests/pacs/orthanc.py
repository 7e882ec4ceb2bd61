# SPDX-License-Identifier: Apache-2.0
"""orthanc - a throwaway Orthanc PACS for one test, loaded with the DICOM fixture.

    from orthanc import Orthanc, load_fixture
    with Orthanc(tmpdir) as pacs:                   # config + start; stop on exit
        expected = load_fixture(pacs, tmpdir)       # {"ACC0001": 1, ..., "ACC0010": 7}
        kit.update(pacs.env())    # PACS_HOST, PACS_DICOM_PORT, PACS_AETITLE, FLIP_AETITLE
        pacs.rest("GET", "/studies")                # Orthanc's REST API, loopback

Orthanc is Debian's (/usr/sbin/Orthanc, no plugins: our configuration names none),
run with a JSON configuration written to tmpdir/orthanc.json: the storage and the
SQLite index in tmpdir/storage, the HTTP server on 127.0.0.1 and a free port
(RemoteAccessAllowed false, AuthenticationEnabled false: only loopback reaches it),
the DICOM server on a free port with AE title ORTHANC, and one known modality: the
node, AE FLIPNODE at 127.0.0.1 and the node port the test gives (the node never
listens for C-GET; the port only matters for C-MOVE). Orthanc 1.10 has no option
to bind its DICOM port to one address; it listens on every interface, but answers
only FLIPNODE from 127.0.0.1 (DicomCheckModalityHost), checks the called AE title
(DicomCheckCalledAet, so a wrong one is rejected), and nothing is allowed to an
unknown AE (every DicomAlwaysAllow* false). FLIPNODE may C-ECHO, C-FIND and C-GET,
not C-STORE or C-MOVE. Ports are found by binding port 0; a start that loses the
race for a port is retried (3 attempts), as tests/omop/pg.py does.

The DICOM fixture (load_fixture): real sample files of Debian's python3-pydicom
(/usr/lib/python3/dist-packages/pydicom/data/test_files), chosen to cover the
transfer syntaxes and object types a PACS holds: explicit and implicit little
endian, explicit big endian, JPEG baseline, JPEG 2000, RLE, multi-frame, CT, MR, CR,
US-free, RT Dose, RT Plan, Comprehensive SR, Segmentation, ECG waveform, and two
multi-instance studies (one with two series). Each study gets an accession number of
the OMOP fixture (tests/omop/fixture.sql: ACC0001..ACC0030): the files are copied
to tmpdir/fixture/ and relabelled there with dcmtk's
`dcmodify -nb -i "(0008,0050)=ACCnnnn" -i "(0028,0301)=NO"` (the originals are never
touched), then uploaded with POST /instances. BurnedInAnnotation NO is declared on
every copy because the samples are synthetic and carry no text in their pixels: the
node refuses a secondary capture that does not declare it (test_deid_standard
tests that refusal with instances of its own). Every upload must answer Status "Success": an
"AlreadyStored" would mean two fixture files share a SOP instance and the expected
counts would be wrong, so it raises.

Files of test_files left out, and why: the other MR_small* variants (RLE, JPEG-LS,
JPEG 2000, implicit, padded), JPEG-lossy.dcm, JPGExtended.dcm and the
JPEG2000*.dcm NM images share MR_small's Study, Series and SOP Instance UIDs (pydicom
derived them from one image): Orthanc would store them as the same instance. The
SC_rgb_* family shares one Study UID and mostly one SOP Instance UID: one of them
(SC_rgb_rle_2frame.dcm) is used. MR_truncated.dcm and rtplan_truncated.dcm are cut
short on purpose (the unit tests use them as bad input). ExplVR_*NoMeta.dcm,
no_meta*.dcm, meta_missing_tsyntax.dcm, nested_priv_SQ.dcm, priv_SQ.dcm,
UN_sequence.dcm and empty_charset_LEI.dcm lack a Part 10 header or the Patient/Study/
Series/SOP identifiers Orthanc requires. badVR.dcm has an invalid value on purpose.

API
    Orthanc(tmpdir, node_aet="FLIPNODE", node_port=None, aet="ORTHANC", binary=BINARY)
    .start()          write the configuration, start, wait until both the HTTP and the
                      DICOM port answer; self
    .stop()           SIGTERM, then SIGKILL after STOP_TIMEOUT; our process only;
                      idempotent
    .rest(method, path, body=None, content_type=None) -> parsed JSON (or bytes)
    .env()            the node's kit keys: PACS_HOST, PACS_DICOM_PORT, PACS_AETITLE,
                      FLIP_AETITLE
    .host .dicom_port .http_port .aet .node_aet .log_path .pid
    load_fixture(pacs, tmpdir) -> {accession: instance count} (and .studies on the
                      pacs object: {accession: StudyInstanceUID})
    fixture_files()   [(accession, [absolute source paths])] without loading anything
    available()       whether Orthanc, dcmodify and the pydicom samples are installed
    Constants BINARY, SAMPLES, FIXTURE.

Errors: OrthancError (with .log_tail) for a failed start or upload. Standard library
only, plus dcmtk's dcmodify.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

BINARY = os.environ.get("FLIP_ORTHANC", "/usr/sbin/Orthanc")
DCMODIFY = "/usr/bin/dcmodify"
SAMPLES = "/usr/lib/python3/dist-packages/pydicom/data/test_files"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

# (accession, files relative to SAMPLES): one study per accession
FIXTURE = [
    ("ACC0001", ["CT_small.dcm"]),                        # CT, explicit little endian
    ("ACC0002", ["MR_small_bigendian.dcm"]),              # MR, explicit big endian
    ("ACC0003", ["693_J2KI.dcm"]),                        # CT, JPEG 2000
    ("ACC0004", ["SC_rgb_rle_2frame.dcm"]),               # SC, RLE, 2 frames
    ("ACC0005", ["rtdose.dcm"]),                          # RT Dose, 15 frames, implicit LE
    ("ACC0006", ["rtplan.dcm"]),                          # RT Plan, no pixels
    ("ACC0007", ["test-SR.dcm"]),                         # Comprehensive SR, person names
    ("ACC0008", ["liver_1frame.dcm"]),                    # Segmentation, references
    ("ACC0009", ["SC_jpeg_no_color_transform.dcm"]),      # JPEG baseline
    ("ACC0010", ["dicomdirtests/98892001/CT2N/6293",      # CT, 7 instances, 2 series
                 "dicomdirtests/98892001/CT2N/6924",
                 "dicomdirtests/98892001/CT5N/2062",
                 "dicomdirtests/98892001/CT5N/2392",
                 "dicomdirtests/98892001/CT5N/2693",
                 "dicomdirtests/98892001/CT5N/3023",
                 "dicomdirtests/98892001/CT5N/3353"]),
    ("ACC0011", ["dicomdirtests/77654033/CR1/6154",       # CR, 3 series of 1
                 "dicomdirtests/77654033/CR2/6247",
                 "dicomdirtests/77654033/CR3/6278"]),
    ("ACC0012", ["dicomdirtests/77654033/CT2/17106",      # CT, 4 instances, 1 series
                 "dicomdirtests/77654033/CT2/17136",
                 "dicomdirtests/77654033/CT2/17166",
                 "dicomdirtests/77654033/CT2/17196"]),
    ("ACC0013", ["waveform_ecg.dcm"]),                    # 12-lead ECG waveform
]


class OrthancError(Exception):
    """Orthanc could not be started, or the fixture could not be loaded."""

    def __init__(self, msg, log_tail=""):
        super().__init__(msg + ("\n--- Orthanc log (tail) ---\n" + log_tail if log_tail else ""))
        self.log_tail = log_tail


def available(binary=BINARY):
    """available - Orthanc, dcmodify and the pydicom samples are installed (skipTest)."""
    return (os.access(binary, os.X_OK) and os.access(DCMODIFY, os.X_OK)
            and os.path.isdir(SAMPLES))


def free_port():
    """free_port - a loopback port nobody is bound to right now (bind 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pid_alive(pid):
    """_pid_alive - whether pid is a live (not zombie) process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


class Orthanc:
    def __init__(self, tmpdir, node_aet="FLIPNODE", node_port=None, aet="ORTHANC",
                 binary=BINARY):
        self.tmpdir = os.path.abspath(tmpdir)
        self.storage = os.path.join(self.tmpdir, "storage")
        self.config_path = os.path.join(self.tmpdir, "orthanc.json")
        self.log_path = os.path.join(self.tmpdir, "orthanc.log")
        self.binary = binary
        self.host = "127.0.0.1"
        self.aet = aet
        self.node_aet = node_aet
        self.node_port = node_port or free_port()
        self.dicom_port = None
        self.http_port = None
        self.studies = {}
        self._proc = None
        self._atexit = False

    @property
    def pid(self):
        return self._proc.pid if self._proc else None

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- lifecycle ---------------------------------------------------------------------

    def _write_config(self):
        conf = {
            "Name": "flip-node test PACS",
            "StorageDirectory": self.storage,
            "IndexDirectory": self.storage,
            "StorageCompression": False,
            "Plugins": [],
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,
            "DicomCheckModalityHost": True,
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowFindWorklist": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomModalities": {
                "flipnode": {
                    "AET": self.node_aet, "Host": "127.0.0.1", "Port": self.node_port,
                    "AllowEcho": True, "AllowFind": True, "AllowGet": True,
                    "AllowMove": False, "AllowStore": False,
                    "AllowStorageCommitment": False, "AllowFindWorklist": False,
                },
            },
            "DicomModalitiesInDatabase": False,
            "OrthancPeers": {},
            "SaveJobs": False,
            "OverwriteInstances": False,
            "StableAge": 1,
            "HttpThreadsCount": 8,
            "DicomThreadsCount": 2,
            "KeepAlive": False,
        }
        with open(self.config_path, "w") as f:
            json.dump(conf, f, indent=2)

    def start(self):
        """start - configure, start, wait until HTTP and DICOM answer."""
        if self._proc is not None and self._proc.poll() is None:
            raise OrthancError("Orthanc in %s is already running" % self.tmpdir)
        if not available(self.binary):
            raise OrthancError("Orthanc (%s), dcmodify or the pydicom samples are missing"
                               % self.binary)
        os.makedirs(self.storage, exist_ok=True)
        if not self._atexit:
            atexit.register(self._stop_at_exit)
            self._atexit = True
        for _attempt in range(3):
            self.http_port, self.dicom_port = free_port(), free_port()
            if self.http_port == self.dicom_port:
                continue
            self._write_config()
            log = open(self.log_path, "w")
            try:
                self._proc = subprocess.Popen([self.binary, self.config_path],
                                              stdin=subprocess.DEVNULL, stdout=log,
                                              stderr=subprocess.STDOUT, cwd=self.tmpdir,
                                              start_new_session=True)
            finally:
                log.close()
            if self._wait_ready():
                return self
            tail = self.log_tail()
            self._kill()
            if "Address already in use" in tail or "cannot bind" in tail.lower():
                continue            # lost the race for a port between bind(0) and start
            raise OrthancError("Orthanc did not start within %gs" % START_TIMEOUT, tail)
        raise OrthancError("Orthanc could not bind free ports in 3 attempts", self.log_tail())

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                self.rest("GET", "/system", timeout=2)
                if _port_open(self.host, self.dicom_port):
                    return True
            except (OSError, urllib.error.URLError, OrthancError):
                pass
            time.sleep(0.1)
        return False

    def _kill(self):
        """SIGTERM, then SIGKILL: our own Orthanc process only."""
        p = self._proc
        if p is None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
            if p.poll() is not None:
                break
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                break
            try:
                p.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
        self._proc = None

    def stop(self):
        """stop - end our Orthanc; removes nothing; idempotent."""
        self._kill()

    def _stop_at_exit(self):
        try:
            self.stop()
        except Exception:   # interpreter exit: best effort
            pass

    def __enter__(self):
        if self._proc is None or self._proc.poll() is not None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- REST --------------------------------------------------------------------------

    def rest(self, method, path, body=None, content_type=None, timeout=30):
        """rest - one request to Orthanc's REST API; parsed JSON when it is JSON."""
        if self.http_port is None:
            raise OrthancError("Orthanc not started")
        req = urllib.request.Request("http://%s:%d%s" % (self.host, self.http_port, path),
                                     data=body, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                data = r.read()
                ctype = r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raise OrthancError("%s %s: HTTP %d %s" % (method, path, e.code,
                                                       e.read()[:200].decode(errors="replace")))
        if "json" in ctype:
            return json.loads(data.decode())
        return data

    def env(self):
        """env - the node's kit-file keys for this PACS."""
        return {
            "PACS_HOST": self.host,
            "PACS_DICOM_PORT": str(self.dicom_port),
            "PACS_AETITLE": self.aet,
            "FLIP_AETITLE": self.node_aet,
        }


def fixture_files():
    """fixture_files - [(accession, [absolute source path, ...])] of the fixture."""
    return [(acc, [os.path.join(SAMPLES, f) for f in files]) for acc, files in FIXTURE]


def load_fixture(pacs, tmpdir):
    """load_fixture - relabel copies of the samples with the fixture's accessions and
    upload them; {accession: instance count}. pacs.studies gets {accession:
    StudyInstanceUID} as Orthanc stored it."""
    work = os.path.join(os.path.abspath(tmpdir), "fixture")
    os.makedirs(work, exist_ok=True)
    expected = {}
    for acc, files in fixture_files():
        copies = []
        for i, src in enumerate(files):
            dst = os.path.join(work, "%s-%02d.dcm" % (acc, i))
            shutil.copyfile(src, dst)
            copies.append(dst)
        p = subprocess.run([DCMODIFY, "-nb", "-i", "(0008,0050)=%s" % acc,
                            "-i", "(0028,0301)=NO"] + copies,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise OrthancError("dcmodify failed for %s (exit %d): %s"
                               % (acc, p.returncode, (p.stderr or p.stdout).strip()))
        study = None
        for path in copies:
            with open(path, "rb") as f:
                ans = pacs.rest("POST", "/instances", f.read(), "application/dicom")
            if ans.get("Status") != "Success":
                raise OrthancError("upload of %s (%s) answered %r: fixture files must be "
                                   "distinct instances" % (os.path.basename(path), acc,
                                                           ans.get("Status")),
                                   pacs.log_tail())
            parent = ans.get("ParentStudy")
            if study is not None and parent != study:
                raise OrthancError("%s: its files are not one study in Orthanc" % acc)
            study = parent
        tags = pacs.rest("GET", "/studies/%s" % study)["MainDicomTags"]
        if tags.get("AccessionNumber") != acc:
            raise OrthancError("%s: Orthanc stored AccessionNumber %r"
                               % (acc, tags.get("AccessionNumber")))
        pacs.studies[acc] = tags["StudyInstanceUID"]
        expected[acc] = len(copies)
    return expected


if __name__ == "__main__":
    # a manual check: start, load, print the mapping, stop
    import tempfile
    with tempfile.TemporaryDirectory(prefix="flip-orthanc-") as d:
        with Orthanc(d) as o:
            t0 = time.monotonic()
            print(json.dumps(load_fixture(o, d), indent=1))
            print(json.dumps(o.env()), "loaded in %.1fs" % (time.monotonic() - t0))
