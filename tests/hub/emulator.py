#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A test double of the FLIP Central Hub, for flip-node's integration tests.

Contract (what this program promises; docs/design/hub-protocol.md is the
reference it implements, and the two must stay in step):

* Command line:
      emulator.py --port-file FILE [--host 127.0.0.1] [--port 0]
                  --trust-id UUID --trust-name NAME --api-key KEY --aes-key-b64 B64
                  [--key-header Authorization] [--stale-seconds 1800]
                  [--tls-cert PEM --tls-key PEM] [--hub-version V]
                  [--no-fingerprint] [--verbose]
  It binds (port 0 = an ephemeral port), then writes the port number followed by a
  newline to FILE atomically (temporary file + rename) once it is listening, and
  serves until SIGTERM or SIGINT, then exits 0.  Bad arguments exit 2.  With
  --tls-cert/--tls-key it serves HTTPS only.  Nothing is written to stdout; stderr
  gets request lines only with --verbose (and tracebacks of emulator bugs).

* The hub API under /api, for exactly one authenticated trust: POST
  /api/trust/heartbeat, GET /api/tasks/pending (claim-on-fetch, at most 50, oldest
  first), POST /api/tasks/{id}/result, POST /api/cohort/results.  Answers, status
  codes and the order of checks follow FastAPI: route (404/405), then the API key
  (401), then the rate limit (429, off unless configured), then the body (422), then
  the handler (403/404/409).  Replies are json.dumps() output (ASCII, ", " and ": "
  separators) with Content-Type application/json.  Request bodies are checked
  strictly: unknown members, wrong JSON types (a bool is not an int), NaN/Infinity
  and non-JSON content types are 422.

* The payload envelope is sealed with AES-256-GCM from python3-cryptography (an
  implementation independent of the node's OpenSSL code): base64 of the JSON text
  {"v": 1, "kid": "shared", "iv": B64(nonce), "ct": B64(ciphertext||tag)} with the
  associated data "FLIP|v1|<kid>|<context>"; task payloads use the context
  "task:<task_type>".

* A control API under /_control (no authentication, JSON in and out) lets a test
  queue tasks, read every request the hub received, every accepted task result and
  cohort result, change the configuration, requeue tasks and inject faults
  (status / after_status / slow / drop / drop_after / truncate / reset).  It is
  described in README.md beside this file; faults never apply to /_control.

Only the Python standard library and Debian's python3-cryptography are used.
"""

import argparse
import base64
import binascii
import collections
import datetime
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# ---------------------------------------------------------------------------
# Constants of the protocol

MAX_TASKS_PER_FETCH = 50
MAX_RETRIES = 3
MAX_RESULT_CHARS = 10_000_000
DEFAULT_RATE_LIMITS = {"heartbeat": 30, "poll": 30, "result": 60}
DEFAULT_RATE_WINDOW = 60.0

DETAIL_KEY_MISSING = "Not authenticated: API key is missing."
DETAIL_KEY_INVALID = "Invalid API Key."
DETAIL_RATE = "Rate limit exceeded. Try again later."

SERVICE_NAME_RE = re.compile(r"[a-z0-9-]{1,32}")
SERVICE_STATUSES = ("healthy", "degraded", "down", "unknown")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
RESULT_PATH_RE = re.compile(r"/api/tasks/([^/]+)/result")

FAULT_KINDS = ("status", "after_status", "slow", "drop", "drop_after",
               "truncate", "reset")

KID_SHARED = "shared"


def now_iso():
    """UTC now as a naive ISO-8601 string with microseconds, as FLIP writes it."""
    return (datetime.datetime.now(datetime.timezone.utc)
            .replace(tzinfo=None).isoformat(timespec="microseconds"))


def dumps(obj):
    """JSON text the way the hub writes it (json.dumps defaults)."""
    return json.dumps(obj)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_uuid(v):
    return isinstance(v, str) and UUID_RE.fullmatch(v) is not None


# ---------------------------------------------------------------------------
# The envelope

class EnvelopeError(ValueError):
    """An envelope that cannot be opened; str() is the reason."""


def aad_for(context, kid=KID_SHARED):
    return ("FLIP|v1|%s|%s" % (kid, context)).encode("utf-8")


def b64(data):
    return base64.b64encode(data).decode("ascii")


def b64_strict(text, what):
    if not isinstance(text, str):
        raise EnvelopeError("%s is not a string" % what)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise EnvelopeError("%s is not valid base64" % what) from None


def seal(key, plaintext, context, nonce=None, kid=KID_SHARED):
    """Seal plaintext (str as UTF-8, or bytes) for context; returns the envelope str.

    nonce defaults to a fresh os.urandom(12); give it only for known-answer tests.
    """
    if isinstance(plaintext, str):
        plaintext = plaintext.encode("utf-8")
    if nonce is None:
        nonce = os.urandom(12)
    if len(nonce) != 12:
        raise ValueError("nonce must be 12 bytes")
    ct = AESGCM(key).encrypt(nonce, plaintext, aad_for(context, kid))
    inner = dumps({"v": 1, "kid": kid, "iv": b64(nonce), "ct": b64(ct)})
    return b64(inner.encode("utf-8"))


def open_envelope(keys, envelope, context):
    """Open an envelope; keys maps kid -> 32-byte key.  Returns the plaintext bytes.

    Raises EnvelopeError with a message naming the first problem found, in the
    order docs/design/hub-protocol.md lists the checks.
    """
    raw = b64_strict(envelope, "envelope")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise EnvelopeError("envelope is not JSON") from None
    if not isinstance(obj, dict):
        raise EnvelopeError("envelope is not a JSON object")
    v = obj.get("v")
    if not is_int(v) or v != 1:
        raise EnvelopeError("Unsupported payload version")
    for member in ("kid", "iv", "ct"):
        if not isinstance(obj.get(member), str):
            raise EnvelopeError("envelope member '%s' is not a string" % member)
    kid = obj["kid"]
    if kid not in keys:
        raise EnvelopeError("No key registered for kid '%s'" % kid)
    iv = b64_strict(obj["iv"], "iv")
    if len(iv) != 12:
        raise EnvelopeError("iv must be 12 bytes, found %d" % len(iv))
    ct = b64_strict(obj["ct"], "ct")
    if len(ct) < 16:
        raise EnvelopeError("ct must be at least 16 bytes, found %d" % len(ct))
    try:
        return AESGCM(keys[kid]).decrypt(iv, ct, aad_for(context, kid))
    except InvalidTag:
        raise EnvelopeError("failed authentication") from None


def key_fingerprint(key):
    return hashlib.sha256(key).hexdigest()[:12]


# ---------------------------------------------------------------------------
# FastAPI-style validation errors

class Invalid(Exception):
    """422 with a FastAPI/pydantic-like {"detail": [...]} list."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


def err(etype, loc, msg, value):
    return {"type": etype, "loc": ["body"] + list(loc), "msg": msg, "input": value}


class Checker:
    """Collects errors for one body, pydantic style."""

    def __init__(self):
        self.errors = []

    def add(self, etype, loc, msg, value):
        self.errors.append(err(etype, loc, msg, value))

    def obj(self, value, loc, required, optional=()):
        """value must be an object with the required members, and no others."""
        if not isinstance(value, dict):
            self.add("model_attributes_type", loc,
                     "Input should be a valid dictionary or object", value)
            return False
        for name in required:
            if name not in value:
                self.add("missing", loc + [name], "Field required", value)
        for name in value:
            if name not in required and name not in optional:
                self.add("extra_forbidden", loc + [name],
                         "Extra inputs are not permitted", value[name])
        return True

    def string(self, value, loc, max_len=None, nullable=False):
        if value is None and nullable:
            return
        if not isinstance(value, str):
            self.add("string_type", loc, "Input should be a valid string", value)
        elif max_len is not None and len(value) > max_len:
            self.add("string_too_long", loc,
                     "String should have at most %d characters" % max_len,
                     value[:80])

    def integer(self, value, loc, lo=None, hi=None, nullable=False):
        if value is None and nullable:
            return
        if not is_int(value):
            self.add("int_type", loc, "Input should be a valid integer", value)
        elif lo is not None and value < lo:
            self.add("greater_than_equal", loc,
                     "Input should be greater than or equal to %d" % lo, value)
        elif hi is not None and value > hi:
            self.add("less_than_equal", loc,
                     "Input should be less than or equal to %d" % hi, value)

    def boolean(self, value, loc):
        if not isinstance(value, bool):
            self.add("bool_type", loc, "Input should be a valid boolean", value)

    def uuid(self, value, loc):
        if not is_uuid(value):
            self.add("uuid_parsing", loc, "Input should be a valid UUID", value)

    def done(self):
        if self.errors:
            raise Invalid(self.errors)


def parse_json_body(body, headers):
    """Parse a request body as FastAPI would, strictly.  Raises Invalid."""
    ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise Invalid([err("model_attributes_type", [],
                           "Input should be a valid dictionary or object "
                           "(Content-Type %s is not JSON)" % ctype, None)])

    def no_constant(name):
        raise ValueError("%s is not valid JSON" % name)

    try:
        return json.loads(body.decode("utf-8"), parse_constant=no_constant)
    except UnicodeDecodeError as e:
        raise Invalid([err("json_invalid", [0], "JSON decode error",
                           {"error": "invalid UTF-8: %s" % e})]) from None
    except ValueError as e:
        pos = getattr(e, "pos", 0)
        raise Invalid([{"type": "json_invalid", "loc": ["body", pos],
                        "msg": "JSON decode error", "input": {},
                        "ctx": {"error": str(getattr(e, "msg", e))}}]) from None


def valid_iso8601(text):
    try:
        datetime.datetime.fromisoformat(text)
        return True
    except ValueError:
        return False


def persist_result_problem(text):
    """The hub's check of a persist_cohort result, run after it answered 200
    (flip-api validates the snapshot facts then): None when well-formed, else why."""
    try:
        obj = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return "result is not JSON"
    if not isinstance(obj, dict):
        return "result is not a JSON object"
    rc = obj.get("row_count")
    if not is_int(rc) or rc < 0:
        return "row_count must be an integer >= 0"
    if not isinstance(obj.get("has_accessions"), bool):
        return "has_accessions must be a boolean"
    if not isinstance(obj.get("query_hash"), str) or not obj["query_hash"]:
        return "query_hash must be a non-empty string"
    at = obj.get("snapshot_at")
    if not isinstance(at, str):
        return "snapshot_at must be an ISO-8601 string"
    try:
        parsed = datetime.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return "snapshot_at must be an ISO-8601 string"
    if parsed.tzinfo is None:
        return "snapshot_at must carry a time zone"
    return None


def check_snapshot(body):
    c = Checker()
    if c.obj(body, [], ["services"], ["collected_at"]):
        services = body.get("services")
        if "services" in body:
            if not isinstance(services, dict):
                c.add("dict_type", ["services"], "Input should be a valid dictionary",
                      services)
            elif not 1 <= len(services) <= 16:
                c.add("too_short" if not services else "too_long", ["services"],
                      "services must have 1 to 16 entries, found %d" % len(services),
                      services)
            else:
                for name, svc in services.items():
                    loc = ["services", name]
                    if SERVICE_NAME_RE.fullmatch(name) is None:
                        c.add("string_pattern_mismatch", loc + ["[key]"],
                              "String should match pattern '^[a-z0-9-]{1,32}$'", name)
                    if c.obj(svc, loc, ["status"], ["version", "response_ms"]):
                        st = svc.get("status")
                        if "status" in svc and st not in SERVICE_STATUSES:
                            c.add("enum", loc + ["status"],
                                  "Input should be 'healthy', 'degraded', 'down' "
                                  "or 'unknown'", st)
                        c.string(svc.get("version"), loc + ["version"], 64, True)
                        c.integer(svc.get("response_ms"), loc + ["response_ms"],
                                  0, 1000000, True)
        ca = body.get("collected_at")
        if ca is not None:
            if not isinstance(ca, str):
                c.add("datetime_type", ["collected_at"],
                      "Input should be a valid datetime", ca)
            elif not valid_iso8601(ca):
                c.add("datetime_from_date_parsing", ["collected_at"],
                      "Input should be a valid datetime", ca)
    c.done()


def check_task_result(body):
    c = Checker()
    if c.obj(body, [], ["success", "result"]):
        if "success" in body:
            c.boolean(body["success"], ["success"])
        if "result" in body:
            c.string(body["result"], ["result"], MAX_RESULT_CHARS, True)
    c.done()


def check_cohort_results(body):
    c = Checker()
    req = ["query_id", "trust_id", "created", "record_count", "data"]
    if c.obj(body, [], req, ["error", "suppressed"]):
        if "query_id" in body:
            c.uuid(body["query_id"], ["query_id"])
        if "trust_id" in body:
            c.uuid(body["trust_id"], ["trust_id"])
        if "created" in body:
            cr = body["created"]
            ok = isinstance(cr, str) and DATE_RE.fullmatch(cr) is not None
            if ok:
                try:
                    datetime.date.fromisoformat(cr)
                except ValueError:
                    ok = False
            if not ok:
                c.add("date_from_datetime_parsing", ["created"],
                      "Input should be a valid date in the format YYYY-MM-DD", cr)
        if "record_count" in body:
            c.integer(body["record_count"], ["record_count"])
        if "data" in body:
            data = body["data"]
            if not isinstance(data, list):
                c.add("list_type", ["data"], "Input should be a valid list", data)
            else:
                for i, item in enumerate(data):
                    loc = ["data", i]
                    if not c.obj(item, loc, ["name", "results"]):
                        continue
                    if "name" in item:
                        c.string(item["name"], loc + ["name"])
                    if "results" not in item:
                        continue
                    res = item["results"]
                    if not isinstance(res, list):
                        c.add("list_type", loc + ["results"],
                              "Input should be a valid list", res)
                        continue
                    for j, r in enumerate(res):
                        rloc = loc + ["results", j]
                        if c.obj(r, rloc, ["value", "count"]):
                            if "value" in r:
                                c.string(r["value"], rloc + ["value"])
                            if "count" in r:
                                c.integer(r["count"], rloc + ["count"])
        if "error" in body:
            c.string(body["error"], ["error"])
        if "suppressed" in body:
            c.boolean(body["suppressed"], ["suppressed"])
    c.done()


# ---------------------------------------------------------------------------
# Hub state

class ControlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def created_sort_key(created_at):
    """Sort key for created_at: parsed instants first (UTC), unparsable last."""
    if isinstance(created_at, str):
        try:
            dt = datetime.datetime.fromisoformat(created_at)
            if dt.tzinfo is not None:
                dt = dt.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            return (0, dt.isoformat(timespec="microseconds"))
        except ValueError:
            pass
    return (1, "")


class HubState:
    """Everything the hub knows; every method takes self.lock."""

    def __init__(self, trust_id, trust_name, api_key, aes_key, key_header,
                 stale_seconds, hub_version, fingerprint_enabled):
        self.lock = threading.RLock()
        self.real_trust_id = trust_id
        self.trust_name = trust_name
        self.key_sha256 = hashlib.sha256(api_key.encode("utf-8")).hexdigest()
        self.aes_key = aes_key
        self.key_header = key_header
        self.default_stale = float(stale_seconds)
        self.hub_version = hub_version
        self.default_fingerprint = (key_fingerprint(aes_key)
                                    if fingerprint_enabled else None)
        self.seq = 0
        self.stop_event = threading.Event()
        self.wake = threading.Event()  # set when stale_seconds may have changed
        self.reset()

    # -- configuration -----------------------------------------------------

    def reset(self):
        with self.lock:
            self.config = {
                "rate_limits": False,
                "rate_window": DEFAULT_RATE_WINDOW,
                "reject_snapshot": False,
                "fingerprint": self.default_fingerprint,
                "trust_id": self.real_trust_id,
                "trust_name": self.trust_name,
                "hub_version": self.hub_version,
                "stale_seconds": self.default_stale,
            }
            self.tasks = collections.OrderedDict()
            self.by_status = {"PENDING": {}, "IN_PROGRESS": {}}
            self.requests = []
            self.heartbeats = []
            self.cohort_current = collections.OrderedDict()
            self.cohort_history = []
            self.faults = []
            self.rate_hits = {k: collections.deque() for k in DEFAULT_RATE_LIMITS}
            self.wake.set()

    def set_config(self, changes):
        if not isinstance(changes, dict):
            raise ControlError(400, "config body must be an object")
        with self.lock:
            new = dict(self.config)
            for k, v in changes.items():
                if k == "rate_limits":
                    if isinstance(v, bool):
                        pass
                    elif isinstance(v, dict) and all(
                            kk in DEFAULT_RATE_LIMITS and is_int(vv) and vv >= 0
                            for kk, vv in v.items()):
                        v = dict(DEFAULT_RATE_LIMITS, **v)
                    else:
                        raise ControlError(400, "rate_limits must be a bool or an "
                                           "object {heartbeat, poll, result: int}")
                elif k in ("reject_snapshot",):
                    if not isinstance(v, bool):
                        raise ControlError(400, "%s must be a bool" % k)
                elif k in ("fingerprint", "hub_version"):
                    if v is not None and not isinstance(v, str):
                        raise ControlError(400, "%s must be a string or null" % k)
                elif k in ("trust_id", "trust_name"):
                    if not isinstance(v, str):
                        raise ControlError(400, "%s must be a string" % k)
                elif k in ("stale_seconds", "rate_window"):
                    if not (is_int(v) or isinstance(v, float)) or v < 0:
                        raise ControlError(400, "%s must be a number >= 0" % k)
                    v = float(v)
                else:
                    raise ControlError(400, "unknown config key %r" % k)
                new[k] = v
            self.config = new
            self.wake.set()
            return dict(new)

    # -- tasks ---------------------------------------------------------------

    def add_task(self, spec):
        if not isinstance(spec, dict):
            raise ControlError(400, "a task must be an object")
        known = {"task_type", "payload", "raw_payload", "plaintext", "plaintext_b64",
                 "id", "trust_id", "created_at", "context", "kid", "key_b64"}
        unknown = set(spec) - known
        if unknown:
            raise ControlError(400, "unknown task members: %s" % sorted(unknown))
        if "task_type" not in spec:
            raise ControlError(400, "task_type is required")
        task_type = spec["task_type"]
        sources = [k for k in ("payload", "raw_payload", "plaintext", "plaintext_b64")
                   if k in spec]
        if len(sources) != 1:
            raise ControlError(400, "give exactly one of payload, raw_payload, "
                               "plaintext, plaintext_b64")
        src = sources[0]
        if src == "raw_payload":
            payload = spec["raw_payload"]
        else:
            if src == "payload":
                plaintext = dumps(spec["payload"]).encode("utf-8")
            elif src == "plaintext":
                if not isinstance(spec["plaintext"], str):
                    raise ControlError(400, "plaintext must be a string")
                plaintext = spec["plaintext"].encode("utf-8")
            else:
                try:
                    plaintext = base64.b64decode(spec["plaintext_b64"], validate=True)
                except (TypeError, ValueError, binascii.Error):
                    raise ControlError(400, "plaintext_b64 is not base64") from None
            context = spec.get("context")
            if context is None:
                if not isinstance(task_type, str):
                    raise ControlError(400, "task_type must be a string to seal")
                context = "task:" + task_type
            key = self.aes_key
            if "key_b64" in spec:
                key = base64.b64decode(spec["key_b64"], validate=True)
            payload = seal(key, plaintext, context, kid=spec.get("kid", KID_SHARED))
        plain = spec["payload"] if src == "payload" else None
        task_id = spec.get("id", str(uuid.uuid4()))
        if not isinstance(task_id, str) or not task_id:
            raise ControlError(400, "id must be a non-empty string")
        created_at = spec.get("created_at", now_iso())
        with self.lock:
            if task_id in self.tasks:
                raise ControlError(409, "task %s already exists" % task_id)
            self.seq += 1
            self.tasks[task_id] = t = {
                "id": task_id,
                "task_type": task_type,
                "payload": payload,
                "created_at": created_at,
                "trust_id": spec.get("trust_id", self.real_trust_id),
                "status": "PENDING",
                "retries": 0,
                "updated_at": time.time(),
                "result": None,
                "success": None,
                "results": [],
                "deliveries": 0,
                "delivered_at": [],
                "hub_validated": None,
                "validation_error": None,
                "_plain": plain,
                "_seq": self.seq,
                "_sort": created_sort_key(created_at),
            }
            self.by_status["PENDING"][task_id] = t
        return task_id

    def set_status(self, t, status):
        """Move t to status, keeping the PENDING/IN_PROGRESS indexes right."""
        self.by_status.get(t["status"], {}).pop(t["id"], None)
        t["status"] = status
        if status in self.by_status:
            self.by_status[status][t["id"]] = t

    def task_view(self, t):
        return {k: v for k, v in t.items() if not k.startswith("_")}

    def list_tasks(self):
        with self.lock:
            return [self.task_view(t) for t in self.tasks.values()]

    def get_task(self, task_id):
        with self.lock:
            t = self.tasks.get(task_id)
            if t is None:
                raise ControlError(404, "no task %s" % task_id)
            return self.task_view(t)

    def ours(self, t):
        return str(t["trust_id"]).lower() == self.real_trust_id.lower()

    def requeue_stale(self, older_than=None):
        """The hub's stale check; returns the ids it moved."""
        moved = []
        with self.lock:
            limit = self.config["stale_seconds"] if older_than is None else older_than
            now = time.time()
            for t in list(self.by_status["IN_PROGRESS"].values()):
                if now - t["updated_at"] <= limit:
                    continue
                if t["retries"] >= MAX_RETRIES:
                    self.set_status(t, "FAILED")
                    t["success"] = False
                    t["result"] = dumps(
                        {"error": "Exceeded maximum retries (%d)" % MAX_RETRIES})
                else:
                    t["retries"] += 1
                    self.set_status(t, "PENDING")
                t["updated_at"] = now
                moved.append(t["id"])
        return moved

    def requeue_one(self, task_id):
        with self.lock:
            t = self.tasks.get(task_id)
            if t is None:
                raise ControlError(404, "no task %s" % task_id)
            if t["status"] != "IN_PROGRESS":
                raise ControlError(409, "task %s is %s, not IN_PROGRESS"
                                   % (task_id, t["status"]))
            t["retries"] += 1
            self.set_status(t, "PENDING")
            t["updated_at"] = time.time()
            return self.task_view(t)

    def requeue_persist(self, project_id):
        """The hub's routine re-check: persist_cohort again, as a new task, to a trust
        that already froze project_id (safe: a trust never replaces a membership)."""
        with self.lock:
            done = [t for t in self.tasks.values()
                    if t["task_type"] == "persist_cohort" and t["status"] == "COMPLETED"
                    and isinstance(t["_plain"], dict)
                    and str(t["_plain"].get("project_id", "")).lower() == project_id.lower()]
        if not done:
            return []
        latest = max(done, key=lambda t: t["_seq"])
        return [self.add_task({"task_type": "persist_cohort", "payload": latest["_plain"],
                               "trust_id": latest["trust_id"]})]

    def cancel(self, task_id):
        """A task the hub cancelled: never delivered again, its result is refused (409)."""
        with self.lock:
            t = self.tasks.get(task_id)
            if t is None:
                raise ControlError(404, "no task %s" % task_id)
            if t["status"] not in ("PENDING", "IN_PROGRESS"):
                raise ControlError(409, "task %s is %s" % (task_id, t["status"]))
            self.set_status(t, "CANCELLED")
            t["updated_at"] = time.time()
            return self.task_view(t)

    # -- faults ---------------------------------------------------------------

    def add_fault(self, rule):
        if not isinstance(rule, dict):
            raise ControlError(400, "a fault rule must be an object")
        known = {"path", "method", "kind", "status", "delay", "count", "body",
                 "headers"}
        if set(rule) - known:
            raise ControlError(400, "unknown fault members: %s"
                               % sorted(set(rule) - known))
        kind = rule.get("kind")
        if kind not in FAULT_KINDS:
            raise ControlError(400, "kind must be one of %s" % ", ".join(FAULT_KINDS))
        path = rule.get("path", "/")
        if not isinstance(path, str):
            raise ControlError(400, "path must be a string")
        method = rule.get("method")
        if method is not None and not isinstance(method, str):
            raise ControlError(400, "method must be a string")
        count = rule.get("count", 1)
        if not is_int(count) or count == 0 or count < -1:
            raise ControlError(400, "count must be a positive integer or -1")
        if kind in ("status", "after_status"):
            if not is_int(rule.get("status")) or not 100 <= rule["status"] <= 599:
                raise ControlError(400, "kind %s needs a status 100..599" % kind)
        delay = rule.get("delay", 0)
        if kind == "slow" and (not (is_int(delay) or isinstance(delay, float))
                               or delay < 0):
            raise ControlError(400, "kind slow needs a delay in seconds")
        headers = rule.get("headers", {})
        if not isinstance(headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise ControlError(400, "headers must be an object of strings")
        r = {"path": path, "method": method.upper() if method else None,
             "kind": kind, "status": rule.get("status"), "delay": float(delay),
             "count": count, "body": rule.get("body"), "headers": headers}
        with self.lock:
            self.faults.append(r)
        return r

    def take_fault(self, method, path):
        with self.lock:
            for i, r in enumerate(self.faults):
                if not path.startswith(r["path"]):
                    continue
                if r["method"] and r["method"] != method:
                    continue
                if r["count"] > 0:
                    r["count"] -= 1
                    if r["count"] == 0:
                        del self.faults[i]
                return dict(r)
        return None

    # -- rate limits ------------------------------------------------------------

    def rate_ok(self, bucket):
        with self.lock:
            rl = self.config["rate_limits"]
            if rl is False:
                return True
            limits = DEFAULT_RATE_LIMITS if rl is True else rl
            window = self.config["rate_window"]
            hits = self.rate_hits[bucket]
            now = time.monotonic()
            while hits and now - hits[0] >= window:
                hits.popleft()
            if len(hits) >= limits[bucket]:
                return False
            hits.append(now)
            return True

    # -- the hub API ---------------------------------------------------------------

    def identity(self):
        return {"trust_id": self.config["trust_id"],
                "trust_name": self.config["trust_name"]}

    def authenticate(self, headers):
        """None when authenticated, else the (status, body) to answer."""
        provided = headers.get(self.key_header.lower())
        if not provided:
            return 401, {"detail": DETAIL_KEY_MISSING}
        # http.server decodes header values as latin-1: undo that to get the bytes.
        digest = hashlib.sha256(provided.encode("latin-1")).hexdigest()
        if not hmac.compare_digest(digest, self.key_sha256):
            return 401, {"detail": DETAIL_KEY_INVALID}
        return None

    def api(self, method, path, query, headers, body):
        """Route one /api request; returns (status, reply object)."""
        m = RESULT_PATH_RE.fullmatch(path)
        if path == "/api/trust/heartbeat":
            route, allowed, bucket = "heartbeat", "POST", "heartbeat"
        elif path == "/api/tasks/pending":
            route, allowed, bucket = "pending", "GET", "poll"
        elif m is not None:
            route, allowed, bucket = "result", "POST", "result"
        elif path == "/api/cohort/results":
            route, allowed, bucket = "cohort", "POST", "result"
        else:
            return 404, {"detail": "Not Found"}
        if method != allowed:
            return 405, {"detail": "Method Not Allowed"}
        denied = self.authenticate(headers)
        if denied:
            return denied
        if not self.rate_ok(bucket):
            return 429, {"detail": DETAIL_RATE}
        self.requeue_stale()
        try:
            if route == "heartbeat":
                return self.heartbeat(headers, body)
            if route == "pending":
                if query:
                    raise Invalid([{"type": "extra_forbidden", "loc": ["query"],
                                    "msg": "No query parameters are accepted",
                                    "input": query}])
                return self.pending()
            if route == "result":
                return self.task_result(unquote(m.group(1)), headers, body)
            return self.cohort_results(headers, body)
        except Invalid as e:
            return 422, {"detail": e.errors}

    def heartbeat(self, headers, body):
        snapshot = None
        if body:
            snapshot = parse_json_body(body, headers)
            if snapshot is not None:
                with self.lock:
                    reject = self.config["reject_snapshot"]
                if reject:
                    raise Invalid([err("value_error", [],
                                       "Health snapshots are not accepted by this "
                                       "hub (reject_snapshot)", snapshot)])
                check_snapshot(snapshot)
        with self.lock:
            self.heartbeats.append({"ts": time.time(), "body": snapshot,
                                    "raw": body.decode("utf-8", "replace")})
            reply = self.identity()
            reply["message"] = "Heartbeat recorded"
            if self.config["hub_version"] is not None:
                reply["hub_version"] = self.config["hub_version"]
            if self.config["fingerprint"] is not None:
                reply["aes_key_fingerprint"] = self.config["fingerprint"]
        return 200, reply

    def pending(self):
        with self.lock:
            waiting = [t for t in self.by_status["PENDING"].values()
                       if self.ours(t)]
            waiting.sort(key=lambda t: (t["_sort"], t["_seq"]))
            now = time.time()
            out = []
            for t in waiting[:MAX_TASKS_PER_FETCH]:
                self.set_status(t, "IN_PROGRESS")
                t["updated_at"] = now
                t["deliveries"] += 1
                t["delivered_at"].append(now)
                out.append({"id": t["id"], "task_type": t["task_type"],
                            "payload": t["payload"], "created_at": t["created_at"]})
            reply = self.identity()
            reply["tasks"] = out
        return 200, reply

    def task_result(self, task_id, headers, body):
        obj = parse_json_body(body, headers)
        check_task_result(obj)
        with self.lock:
            t = self.tasks.get(task_id)
            if t is None:
                return 404, {"detail": "Task %s not found" % task_id}
            if not self.ours(t):
                return 403, {"detail": "Task %s does not belong to this trust"
                             % task_id}
            if t["status"] != "IN_PROGRESS":
                return 409, {"detail": "Task %s is not in progress" % task_id}
            self.set_status(t, "COMPLETED" if obj["success"] else "FAILED")
            t["success"] = obj["success"]
            t["result"] = obj["result"]
            t["updated_at"] = time.time()
            t["results"].append({"success": obj["success"], "result": obj["result"],
                                 "ts": t["updated_at"]})
            if t["task_type"] == "persist_cohort" and obj["success"]:
                # the hub answers 200, then validates the snapshot facts and fails
                # the task when they are malformed
                problem = persist_result_problem(obj["result"])
                t["hub_validated"] = problem is None
                t["validation_error"] = problem
                if problem is not None:
                    self.set_status(t, "FAILED")
            reply = self.identity()
            reply["message"] = "Task %s result recorded" % task_id
        return 200, reply

    def cohort_results(self, headers, body):
        obj = parse_json_body(body, headers)
        check_cohort_results(obj)
        if obj["trust_id"].lower() != self.real_trust_id.lower():
            return 403, {"detail": "trust_id %s does not match the authenticated "
                                   "trust" % obj["trust_id"]}
        with self.lock:
            self.cohort_current[obj["query_id"].lower()] = obj
            self.cohort_history.append(obj)
        return 200, {"message": "Cohort results processed successfully"}


# ---------------------------------------------------------------------------
# HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "flip-hub-emulator/1"
    sys_version = ""
    timeout = 300

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without TCP_NODELAY every answer
        # on a kept-alive connection waits ~40 ms for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    @property
    def state(self):
        return self.server.state

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("hub-emulator: %s %s\n" % (self.address_string(),
                                                         fmt % args))

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    # -- plumbing ----------------------------------------------------------------

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n > 0 else b""
        if len(data) != n:
            raise ConnectionError("short request body")
        return data

    def header_dict(self):
        out = {}
        for name, value in self.headers.items():
            name = name.lower()
            out[name] = out[name] + ", " + value if name in out else value
        return out

    def send_bytes(self, status, data, extra=None, truncate=False):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data[:len(data) // 2] if truncate else data)
        self.wfile.flush()
        if truncate:
            self.close_connection = True

    def send_json(self, status, obj, **kw):
        self.send_bytes(status, dumps(obj).encode("ascii"), **kw)

    def drop(self, reset=False):
        self.close_connection = True
        if reset:
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            except OSError:
                pass

    # -- dispatch ------------------------------------------------------------------

    def dispatch(self):
        try:
            parts = urlsplit(self.path)
            path, query = parts.path, parts.query
            body = self.read_body()
        except (ValueError, ConnectionError, OSError):
            self.close_connection = True
            return
        try:
            if path == "/_control" or path.startswith("/_control/"):
                self.control(path, body)
            else:
                self.hub(path, query, body)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, ssl.SSLError):
            self.close_connection = True
        except Exception:  # an emulator bug: say so loudly, answer 500
            traceback.print_exc(file=sys.stderr)
            try:
                self.send_json(500, {"detail": "Internal Server Error"})
            except OSError:
                pass
            self.close_connection = True

    def hub(self, path, query, body):
        st = self.state
        headers = self.header_dict()
        entry = {"ts": time.time(), "method": self.command, "path": self.path,
                 "headers": headers, "body": body.decode("utf-8", "replace"),
                 "status": None, "fault": None, "handled_status": None}
        with st.lock:
            st.requests.append(entry)
        fault = st.take_fault(self.command, path)
        kind = fault["kind"] if fault else None
        entry["fault"] = kind
        if kind == "status":
            entry["status"] = fault["status"]
            self.send_fault_reply(fault)
            return
        if kind in ("drop", "reset"):
            entry["status"] = 0
            self.drop(reset=(kind == "reset"))
            return
        if kind == "slow":
            time.sleep(fault["delay"])
        status, reply = st.api(self.command, path, query, headers, body)
        entry["handled_status"] = status
        if kind == "after_status":
            entry["status"] = fault["status"]
            self.send_fault_reply(fault)
        elif kind == "drop_after":
            entry["status"] = 0
            self.drop()
        else:
            entry["status"] = status
            self.send_json(status, reply, truncate=(kind == "truncate"))

    def send_fault_reply(self, fault):
        body = fault["body"]
        if body is None:
            status = fault["status"]
            body = {"detail": DETAIL_RATE if status == 429
                    else "Injected fault: HTTP %d" % status}
        data = body.encode("utf-8") if isinstance(body, str) else dumps(body).encode()
        self.send_bytes(fault["status"], data, extra=fault["headers"])

    def control(self, path, body):
        st = self.state
        method = self.command
        obj = None
        if body:
            try:
                obj = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                self.send_json(400, {"error": "body is not JSON: %s" % e})
                return
        try:
            status, reply = self.control_route(st, method, path[len("/_control"):],
                                               obj)
        except ControlError as e:
            status, reply = e.status, {"error": e.message}
        except (ValueError, TypeError, KeyError) as e:
            status, reply = 400, {"error": "bad control request: %r" % (e,)}
        self.send_json(status, reply)

    def control_route(self, st, method, route, obj):
        def need(m):
            if method != m:
                raise ControlError(405, "use %s for /_control%s" % (m, route))

        if route == "/health":
            return 200, {"ok": True}
        if route == "/tasks":
            if method == "GET":
                return 200, {"tasks": st.list_tasks()}
            need("POST")
            specs = obj["tasks"] if isinstance(obj, dict) and "tasks" in obj else [obj]
            if not isinstance(specs, list):
                raise ControlError(400, "tasks must be a list")
            return 200, {"ids": [st.add_task(s) for s in specs]}
        if route.startswith("/tasks/"):
            need("GET")
            return 200, st.get_task(unquote(route[len("/tasks/"):]))
        if route == "/seal":
            need("POST")
            if not isinstance(obj, dict) or not isinstance(obj.get("plaintext"), str):
                raise ControlError(400, "give plaintext (str) and context (str)")
            nonce = None
            if "nonce_b64" in obj:
                nonce = base64.b64decode(obj["nonce_b64"], validate=True)
            try:
                env = seal(st.aes_key, obj["plaintext"], obj.get("context", ""),
                           nonce=nonce, kid=obj.get("kid", KID_SHARED))
            except ValueError as e:
                raise ControlError(400, str(e)) from None
            return 200, {"envelope": env}
        if route == "/open":
            need("POST")
            if not isinstance(obj, dict):
                raise ControlError(400, "give envelope and context")
            try:
                pt = open_envelope({KID_SHARED: st.aes_key}, obj.get("envelope"),
                                   obj.get("context", ""))
            except EnvelopeError as e:
                raise ControlError(400, str(e)) from None
            try:
                return 200, {"plaintext": pt.decode("utf-8")}
            except UnicodeDecodeError:
                return 200, {"plaintext": None, "plaintext_b64": b64(pt)}
        if route == "/requests":
            need("GET")
            with st.lock:
                return 200, [dict(r) for r in st.requests]
        if route == "/requests/clear":
            need("POST")
            with st.lock:
                st.requests.clear()
            return 200, {"ok": True}
        if route == "/cohort_results":
            need("GET")
            with st.lock:
                return 200, {"current": dict(st.cohort_current),
                             "history": list(st.cohort_history)}
        if route == "/heartbeats":
            need("GET")
            with st.lock:
                return 200, list(st.heartbeats)
        if route == "/config":
            if method == "GET":
                with st.lock:
                    return 200, dict(st.config)
            need("POST")
            return 200, st.set_config(obj if obj is not None else {})
        if route == "/requeue_stale":
            need("POST")
            older = None
            if isinstance(obj, dict) and "older_than" in obj:
                older = obj["older_than"]
                if not (is_int(older) or isinstance(older, float)):
                    raise ControlError(400, "older_than must be a number")
            return 200, {"moved": st.requeue_stale(older)}
        if route == "/requeue":
            need("POST")
            if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                raise ControlError(400, "give id")
            return 200, st.requeue_one(obj["id"])
        if route == "/requeue_persist":
            need("POST")
            if not isinstance(obj, dict) or not isinstance(obj.get("project_id"), str):
                raise ControlError(400, "give project_id")
            return 200, {"ids": st.requeue_persist(obj["project_id"])}
        if route == "/cancel":
            need("POST")
            if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                raise ControlError(400, "give id")
            return 200, st.cancel(obj["id"])
        if route == "/faults":
            if method == "GET":
                with st.lock:
                    return 200, {"faults": [dict(f) for f in st.faults]}
            need("POST")
            return 200, st.add_fault(obj)
        if route == "/faults/clear":
            need("POST")
            with st.lock:
                st.faults.clear()
            return 200, {"ok": True}
        if route == "/reset":
            need("POST")
            st.reset()
            return 200, {"ok": True}
        raise ControlError(404, "no control call /_control%s" % route)


class HubServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout)) \
                and not self.verbose:
            return
        super().handle_error(request, client_address)


def stale_loop(state):
    """The hub's periodic stale check, run often enough for short test timeouts."""
    while not state.stop_event.is_set():
        with state.lock:
            interval = min(1.0, max(0.05, state.config["stale_seconds"] / 4))
            state.wake.clear()
        state.wake.wait(interval)
        state.requeue_stale()


def write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def parse_args(argv):
    p = argparse.ArgumentParser(description="FLIP hub emulator for flip-node tests")
    p.add_argument("--port-file", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--trust-id", required=True)
    p.add_argument("--trust-name", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--aes-key-b64", required=True)
    p.add_argument("--key-header", default="Authorization")
    p.add_argument("--stale-seconds", type=float, default=1800.0)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--hub-version")
    p.add_argument("--no-fingerprint", action="store_true")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if not is_uuid(args.trust_id):
        p.error("--trust-id must be a UUID")
    try:
        key = base64.b64decode(args.aes_key_b64, validate=True)
    except (ValueError, binascii.Error):
        p.error("--aes-key-b64 is not valid base64")
    if len(key) != 32:
        p.error("--aes-key-b64 must decode to 32 bytes, found %d" % len(key))
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if not args.api_key or not args.key_header:
        p.error("--api-key and --key-header must not be empty")
    return args, key


def main(argv=None):
    args, key = parse_args(sys.argv[1:] if argv is None else argv)
    state = HubState(args.trust_id, args.trust_name, args.api_key, key,
                     args.key_header, args.stale_seconds, args.hub_version,
                     not args.no_fingerprint)
    server_cls = HubServer
    if ":" in args.host:
        server_cls = type("HubServer6", (HubServer,),
                          {"address_family": socket.AF_INET6})
    server = server_cls((args.host, args.port), Handler)
    server.state = state
    server.verbose = args.verbose
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                               daemon=True)
    serving.start()
    threading.Thread(target=stale_loop, args=(state,), daemon=True).start()
    write_port_file(args.port_file, server.server_address[1])
    while not stop.is_set():
        stop.wait(0.1)
    state.stop_event.set()
    state.wake.set()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
