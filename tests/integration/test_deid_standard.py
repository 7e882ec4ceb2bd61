# SPDX-License-Identifier: Apache-2.0
"""test_deid_standard - every row of PS3.15 Table E.1-1, through a real Orthanc and back.

For every row of the standard's table (data/ps3.15-e1-1.json) an attribute with a
marked value is written, with pydicom, into synthetic instances: once at the top
level of one instance, once nested inside a sequence the node keeps (Referenced
Series Sequence, not in the table) of a second instance of the same study. The two
instances share Study, Series and Frame of Reference UIDs, and the second refers to
the first (Referenced Image Sequence). Sequence rows carry an item with a marked UID,
a marked name and, where the node drops the sequence's items, a marked text that is
in no row; the content tree (Content Sequence) and graphic annotations carry marked
text, names, dates and times at two levels; repeating groups (curves, overlays) and a
private group carry marks too. One such study is made in each of explicit VR little
endian, implicit VR little endian and explicit VR big endian, under three accessions
of the OMOP fixture, and stored in a throwaway Orthanc.

The node then does what it does in production: persist_cohort and create_imaging from
the hub emulator, flip-exec imaging (C-FIND, C-GET, de-identify, store). Every stored
file is scanned byte by byte for every mark, and parsed: no row's tag holds its marked
value at any depth, the whole overlay and curve groups and every private tag are gone,
every UID is the keyed 2.25 map of the original (computed here from the node's key),
the same in both instances and in the reference between them,
LongitudinalTemporalInformationModified is REMOVED (every date went), and the method
code sequence holds 113100 and the clean options.

Big endian: Orthanc 1.10 stores the instance as sent, and the node's C-GET proposes
explicit big endian among its uncompressed syntaxes, so the instance comes back big
endian and goes through the same checks (this test would fail if it were refused).

The burned-in rule, end to end: an Ultrasound instance without BurnedInAnnotation and
a Secondary Capture declaring YES, each in a study of its own with a clean CT, leave
their accessions queue_failed with error burned_in_annotation, counted in
get_imaging_status (queue_failed_reasons) and in flipctl status, and nothing of either
study is stored. With DEID_ALLOW_BURNED_IN=yes and reimport_studies they are stored,
and each such instance is an imaging.burned_in_stored audit event.
"""
import datetime
import glob
import hashlib
import hmac
import json
import os
import re
import sys
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "omop"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pacs"))

import payloads  # noqa: E402
from imagingenv import ACC_SQL, PacsNodeCase  # noqa: E402
from nodeenv import ROOT  # noqa: E402
from orthanc import available  # noqa: E402

try:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.datadict import dictionary_VR
    from pydicom.sequence import Sequence
    from pydicom.tag import Tag
except ImportError:  # pragma: no cover - packages.list installs it
    pydicom = None

SYNTAXES = {"ACC0021": ("1.2.840.10008.1.2.1", True, False),   # explicit VR little endian
            "ACC0022": ("1.2.840.10008.1.2", False, False),    # implicit VR little endian
            "ACC0023": ("1.2.840.10008.1.2.2", True, True)}    # explicit VR big endian
BURNED = {"ACC0024": "undeclared ultrasound", "ACC0025": "declared secondary capture"}
UID_ROOT = "1.2.826.0.1.3680043.9.7777."   # every original UID of the test starts so
CT = "1.2.840.10008.5.1.4.1.1.2"
NESTER = 0x00081115   # ReferencedSeriesSequence: in no row, so the node keeps it
# where a row cannot live inside an item: the file meta and command groups, and the
# two attributes that exist only at the end of the top-level dataset
TOP_ONLY = (0x0000, 0x0002, 0xFFFA, 0xFFFC)


def rows():
    with open(os.path.join(ROOT, "data", "ps3.15-e1-1.json")) as f:
        table = json.load(f)
    inc = open(os.path.join(ROOT, "lib", "deid_table.inc")).read()
    action = {int(m.group(1), 16): m.group(2) for m in re.finditer(
        r'\{0x([0-9A-F]{8}), 0xFFFFFFFF, "[^"]*", "[^"]*", "[^"]*", DEID_(\w+)', inc)}
    out = []
    for i, r in enumerate(table):
        if re.fullmatch(r"[0-9a-f]{8}", r["id"]):
            tag = int(r["id"], 16)
            out.append((i, tag, r["name"], action.get(tag, "")))
    return out


def vr_of(tag, name):
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = ("SQ" if name.endswith("Sequence") else "UI" if name.endswith("UID") else
              "DT" if "DateTime" in name else "DA" if name.split()[0] == "Date" or " Date" in name
              else "TM" if "Time" in name else "LO")
    return vr.split(" or ")[0].replace("xs", "US").replace("ox", "OB")


class Marks:
    """marked values, each recorded so that the stored bytes can be scanned for it"""

    def __init__(self):
        self.text = set()      # byte strings that must not survive
        self.values = {}       # tag -> set of marked values (parsed comparison)

    def value(self, i, tag, vr, name):
        day = datetime.date(1871, 1, 1) + datetime.timedelta(days=i)
        tm = "21%02d%02d.777777" % (i // 60, i % 60)
        s = {"DA": day.strftime("%Y%m%d"), "TM": tm, "DT": day.strftime("%Y%m%d") + tm,
             "AS": "077Y", "UI": UID_ROOT + "%d.1" % i, "IS": "777%04d" % i,
             "DS": "777%04d.5" % i, "PN": "ZQ%03d^MARK" % i, "UR": "http://zq%03d.example/mark" % i,
             "AE": "ZQ%03dAE" % i, "CS": "ZQ%03dCS" % i, "SH": "ZQ%03dSH" % i}.get(vr)
        if s is None and vr in ("LO", "LT", "ST", "UT", "UC"):
            s = "ZQ%03d %s MARK" % (i, name[:20])
        if s is not None:
            if vr not in ("AS",):
                self.text.add(s.encode())
            self.values.setdefault(tag, set()).add(s)
            return s
        if vr in ("OB", "OW", "UN", "OD", "OF", "OL", "OV"):
            b = b"ZQ%03dBINARYMARK" % i
            self.text.add(b)
            return b
        n = {"US": 0x5A51, "SS": 0x5A51, "UL": 0x77777777, "SL": 0x77777777, "UV": 0x77777777,
             "SV": 0x77777777, "FL": 7777.5, "FD": 7777.5, "AT": 0x77777777}[vr]
        self.values.setdefault(tag, set()).add(n)
        return n


def code_item(marks, i, drop):
    """a sequence row's item: a marked UID and a marked name; where the node drops the
    items, a marked text in no row as well (it goes with the item)"""
    it = Dataset()
    uid = UID_ROOT + "%d.2" % i
    it.add_new(0x00081155, "UI", uid)
    marks.values.setdefault(0x00081155, set()).add(uid)
    marks.text.add(uid.encode())
    it.add_new(0x00100010, "PN", "ZQ%03d^ITEM" % i)
    marks.text.add(b"ZQ%03d^ITEM" % i)
    if drop:
        it.add_new(0x00080104, "LO", "ZQ%03d DROPPED WITH ITS SEQUENCE" % i)
        marks.text.add(b"ZQ%03d DROPPED WITH ITS SEQUENCE" % i)
    return it


def content_tree(marks, depth=0):
    """a content item with marked text, name, date, time and date-time, and a child"""
    it = Dataset()
    it.add_new(0x0040A010, "CS", "CONTAINS")
    it.add_new(0x0040A040, "CS", "TEXT")
    k = 900 + depth * 10
    for tag, vr, v in ((0x0040A160, "UT", "Patient ZQ%d John Smith MRN12345 DOB 1960-01-02" % k),
                       (0x0040A123, "PN", "ZQ%d^Content" % k), (0x0040A121, "DA", "18990%d02" % (3 + depth)),
                       (0x0040A122, "TM", "215%d59" % depth), (0x0040A120, "DT", "18990%d02215959" % (3 + depth))):
        it.add_new(tag, vr, v)
        marks.text.add(v.encode())
    if depth == 0:
        it.add_new(0x0040A730, "SQ", Sequence([content_tree(marks, 1)]))
    return it


def graphic_annotation(marks):
    txt = Dataset()
    txt.add_new(0x00700006, "ST", "ZQ950 annotation John Smith")
    marks.text.add(b"ZQ950 annotation John Smith")
    ann = Dataset()
    ann.add_new(0x00700002, "CS", "LAYER")
    ann.add_new(0x00700008, "SQ", Sequence([txt]))
    return ann


def fill(ds, marks, table, nested):
    for i, tag, name, action in table:
        if nested and (tag >> 16) in TOP_ONLY:
            continue
        if tag in (0x00080050, 0x00080018, 0x0020000D, 0x0020000E, 0x00200052, 0x00020003,
                   0x00100020):
            continue   # the instance's identity (Orthanc keys a study on PatientID too)
        vr = vr_of(tag, name)
        if tag == 0x0040A730:
            ds.add_new(tag, "SQ", Sequence([content_tree(marks)]))
        elif tag == 0x00700001:
            ds.add_new(tag, "SQ", Sequence([graphic_annotation(marks)]))
        elif vr == "SQ":
            ds.add_new(tag, "SQ", Sequence([code_item(marks, i, action not in ("UID", "CLEAN"))]))
        else:
            ds.add_new(tag, vr, marks.value(i, tag, vr, name))
    # repeating groups and a private group, which no exact row names
    ds.add_new(0x50000010, "US", 0x5A51)
    ds.add_new(0x50003000, "OB", b"ZQ800CURVEDATA..")
    ds.add_new(0x60000010, "US", 0x5A51)
    ds.add_new(0x60000050, "SS", [7, 7])
    ds.add_new(0x60003000, "OW", b"ZQ801OVERLAYDATA")
    ds.add_new(0x60004000, "LT", "ZQ802 overlay comment")
    ds.add_new(0x00090010, "LO", "ZQ803 PRIVATE CREATOR")
    ds.add_new(0x00091001, "LO", "ZQ804 private value")
    for b in (b"ZQ800CURVEDATA", b"ZQ801OVERLAYDATA", b"ZQ802 overlay comment",
              b"ZQ803 PRIVATE CREATOR", b"ZQ804 private value"):
        marks.text.add(b)


def make_instance(path, acc, syntax, marks, table, n, nested, sop_class=CT, modality="CT",
                  burned=None, rows_too=True):
    ts, explicit, big = syntax
    study, series, frame = (UID_ROOT + "%s.%d" % (acc[3:], k) for k in (1, 2, 3))
    sop = UID_ROOT + "%s.%d.%d" % (acc[3:], 4, n)
    for u in (study, series, frame, sop):
        marks.text.add(u.encode())
    ds = Dataset()
    ds.add_new(0x00080016, "UI", sop_class)
    ds.add_new(0x00080018, "UI", sop)
    ds.add_new(0x00080050, "SH", acc)
    ds.add_new(0x00080060, "CS", modality)
    ds.add_new(0x0020000D, "UI", study)
    ds.add_new(0x0020000E, "UI", series)
    ds.add_new(0x00200052, "UI", frame)
    ds.add_new(0x00200013, "IS", str(n))
    ds.add_new(0x00100020, "LO", "ZQ990PATIENTID")
    ds.add_new(0x00100010, "PN", "ZQ991^PATIENT")
    marks.text.update((b"ZQ990PATIENTID", b"ZQ991^PATIENT"))
    if burned is not None:
        ds.add_new(0x00280301, "CS", burned)
    if rows_too:
        if nested:
            inner = Dataset()
            fill(inner, marks, table, True)
            ds.add_new(NESTER, "SQ", Sequence([inner]))
            ref = Dataset()
            ref.add_new(0x00081150, "UI", CT)
            ref.add_new(0x00081155, "UI", UID_ROOT + "%s.%d.%d" % (acc[3:], 4, 1))
            ds.add_new(0x00081140, "SQ", Sequence([ref]))
        else:
            fill(ds, marks, table, False)
            for tag in (0x00080018, 0x0020000D, 0x0020000E, 0x00200052):
                marks.values.setdefault(tag, set())
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ts
    ds.file_meta = meta
    ds.is_little_endian = not big
    ds.is_implicit_VR = not explicit
    ds.preamble = b"\0" * 128
    pydicom.dcmwrite(path, ds, write_like_original=False)
    return ds


def uid_map(key, uid):
    mac = hmac.new(key, uid.encode(), hashlib.sha256).digest()
    return "2.25." + str(int.from_bytes(mac[:16], "big"))


@unittest.skipIf(pydicom is None or not available(), "Orthanc or python3-pydicom not installed")
class TestDeidStandard(PacsNodeCase):
    @classmethod
    def load_pacs(cls):
        """instances made for the test: every row of the standard marked, in each syntax"""
        cls.table = rows()
        cls.marks = Marks()
        cls.originals = {}
        files = []
        for acc, syntax in SYNTAXES.items():
            for n, nested in ((1, False), (2, True)):
                path = os.path.join(cls.svc, "%s-%d.dcm" % (acc, n))
                cls.originals[(acc, n)] = make_instance(path, acc, syntax, cls.marks, cls.table,
                                                        n, nested)
                files.append(path)
        le = SYNTAXES["ACC0021"]
        for n, (sop, mod, burned) in enumerate(((CT, "CT", None),
                                                ("1.2.840.10008.5.1.4.1.1.6.1", "US", None)), 1):
            path = os.path.join(cls.svc, "ACC0024-%d.dcm" % n)
            make_instance(path, "ACC0024", le, Marks(), [], n, False, sop, mod, burned, False)
            files.append(path)
        for n, (sop, mod, burned) in enumerate(((CT, "CT", "NO"),
                                                ("1.2.840.10008.5.1.4.1.1.7", "OT", "YES")), 1):
            path = os.path.join(cls.svc, "ACC0025-%d.dcm" % n)
            make_instance(path, "ACC0025", le, Marks(), [], n, False, sop, mod, burned, False)
            files.append(path)
        for path in files:
            with open(path, "rb") as f:
                ans = cls.pacs.rest("POST", "/instances", f.read(), "application/dicom")
            if ans.get("Status") != "Success":
                raise AssertionError("Orthanc answered %r for %s" % (ans, path))

    def task(self, kind, **fields):
        p = payloads.make(kind, trust_id=self.hub.trust_id)
        p.update(fields)
        t = self.add(kind, p)
        self.run_all()
        r = self.result(t)
        self.assertTrue(r["success"], r)
        return json.loads(r["result"]) if r["result"] else None

    def states(self, imaging_id):
        d = os.path.join(self.node.state, "imaging", imaging_id, "accessions")
        out = {}
        for f in sorted(os.listdir(d)):
            with open(os.path.join(d, f)) as fh:
                s = json.load(fh)
            out[s["accession"]] = s
        return out

    def stored(self, imaging_id, s):
        return sorted(glob.glob(os.path.join(self.node.state, "imaging", imaging_id, "data", s["subject"],
                                             s["accession"], "scans", "*", "resources", "DICOM",
                                             "files", "*.dcm")))

    def test_every_row_of_the_standard_leaves_no_mark(self):
        project = str(uuid.uuid4())
        self.task("persist_cohort", project_id=project, query=ACC_SQL)
        imaging_id = self.task("create_imaging", project_id=project, query=None,
                               project_name="Deid")["ID"]
        self.assertRun(self.node.run("flip-exec", "imaging", timeout=600))
        with open(os.path.join(self.node.state, "deid.key"), "rb") as f:
            key = f.read()
        states = self.states(imaging_id)

        # the standard's rows: both instances of each study, in each transfer syntax
        for acc, (ts, _, _) in SYNTAXES.items():
            with self.subTest(accession=acc, syntax=ts):
                s = states[acc]
                self.assertEqual((s["state"], s["instances"]), ("successful", 2), s)
                files = self.stored(imaging_id, s)
                self.assertEqual(len(files), 2)
                ds = {}
                for path in files:
                    self.check_no_mark(path)
                    d = pydicom.dcmread(path)
                    self.assertEqual(d.file_meta.TransferSyntaxUID, ts, "stored as it came")
                    ds[int(d.InstanceNumber)] = d
                self.check_instance(ds[1], s)
                self.check_instance(ds[2], s)
                # UIDs: the keyed map of the originals, alike in both and in the reference
                o1, o2 = self.originals[(acc, 1)], self.originals[(acc, 2)]
                for kw in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
                    self.assertEqual(getattr(ds[1], kw), uid_map(key, getattr(o1, kw)), kw)
                    self.assertEqual(getattr(ds[2], kw), getattr(ds[1], kw), kw)
                for n, o in ((1, o1), (2, o2)):
                    self.assertEqual(ds[n].SOPInstanceUID, uid_map(key, o.SOPInstanceUID))
                    self.assertEqual(ds[n].file_meta.MediaStorageSOPInstanceUID, ds[n].SOPInstanceUID)
                self.assertEqual(ds[2].ReferencedImageSequence[0].ReferencedSOPInstanceUID,
                                 ds[1].SOPInstanceUID)
                self.assertEqual(ds[2].ReferencedImageSequence[0].ReferencedSOPClassUID, CT)
                # the rows inside the kept sequence were walked too: the sequence is there
                self.assertEqual(len(ds[2][NESTER].value), 1)

        # burned-in: refused, counted, nothing stored
        for acc in BURNED:
            with self.subTest(accession=acc):
                s = states[acc]
                self.assertEqual((s["state"], s["error"]), ("queue_failed", "burned_in_annotation"))
                self.assertEqual(self.stored(imaging_id, s), [])
                self.assertEqual(glob.glob(os.path.join(self.node.state, "imaging", imaging_id, "data",
                                                        ".stage-*")), [])
        st = self.task("get_imaging_status", imaging_project_id=imaging_id)
        self.assertEqual(st["queue_failed_reasons"], {"burned_in_annotation": 2})
        self.assertEqual(st["import_status"]["successful_count"], 3)
        p = self.node.flipctl("status")
        self.assertRun(p)
        self.assertIn("(2 burned_in_annotation)", p.stdout)
        p = self.node.flipctl("status", "--json")
        if p.returncode == 0 and p.stdout.strip().startswith("{"):
            proj = json.loads(p.stdout)["imaging"][0]
            self.assertEqual(proj["counts"]["burned_in_annotation"], 2)

        # the site's switch: stored, and each override audited
        self.node.set_config(DEID_ALLOW_BURNED_IN="yes")
        self.task("reimport_studies", imaging_project_id=imaging_id)
        self.assertRun(self.node.run("flip-exec", "imaging", timeout=600))
        states = self.states(imaging_id)
        for acc in BURNED:
            s = states[acc]
            self.assertEqual((s["state"], s["instances"], s["burned_in"]), ("successful", 2, 1), s)
        events = [e for e in self.audit_events() if e.get("event") == "imaging.burned_in_stored"]
        self.assertEqual(len(events), 2, events)
        self.assertEqual(sorted(e["detail"]["reason"] for e in events),
                         ["a capture SOP class without BurnedInAnnotation", "declares BurnedInAnnotation"])
        st = self.task("get_imaging_status", imaging_project_id=imaging_id)
        self.assertNotIn("queue_failed_reasons", st)

    def audit_events(self):
        out = []
        for path in glob.glob(os.path.join(self.node.logdir, "audit.log*")):
            if os.path.isfile(path):
                with open(path, errors="replace") as f:
                    for line in f:
                        try:
                            out.append(json.loads(line))
                        except ValueError:
                            pass
        return out

    def check_no_mark(self, path):
        with open(path, "rb") as f:
            data = f.read()
        left = sorted(m.decode(errors="replace") for m in self.marks.text if m in data)
        self.assertEqual(left, [], "%d marks survived in %s" % (len(left), path))

    def check_instance(self, ds, s):
        self.assertEqual(str(ds.PatientName), s["subject"])
        self.assertEqual(ds.PatientID, s["subject"])
        self.assertEqual(ds.StudyDescription, s["accession"])
        self.assertEqual(ds.PatientIdentityRemoved, "YES")
        self.assertEqual(ds.LongitudinalTemporalInformationModified, "REMOVED")
        codes = [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]
        if ds.InstanceNumber == 1:
            self.assertEqual(codes, ["113100", "113103", "113104"])
        for elem in ds.iterall():
            g = elem.tag.group
            self.assertFalse(elem.tag.is_private, "private %s" % elem.tag)
            self.assertFalse(0x5000 <= g <= 0x50FF or 0x6000 <= g <= 0x60FF, "group %04X left" % g)
            self.assertNotEqual(elem.tag, 0x00080050, "AccessionNumber left")
            want = self.marks.values.get(int(elem.tag))
            if want and elem.VR != "SQ":
                vals = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
                for v in vals:
                    v = v.decode(errors="replace") if isinstance(v, bytes) else v
                    self.assertNotIn(str(v) if isinstance(v, (str, pydicom.valuerep.PersonName)) else v,
                                     want, "%s kept its mark" % elem.tag)
            if elem.VR == "UI" and isinstance(elem.value, str) and elem.value:
                for u in elem.value.split("\\"):
                    self.assertFalse(u.startswith(UID_ROOT), "%s kept an original UID" % elem.tag)
            if elem.VR in ("DA", "DT", "TM") and elem.value:
                self.assertTrue(str(elem.value).startswith(("1900", "0000")),
                                "%s kept a date or time" % elem.tag)


if __name__ == "__main__":
    unittest.main()
