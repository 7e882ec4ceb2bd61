# SPDX-License-Identifier: Apache-2.0
"""Start the hub emulator (emulator.py beside this file) and drive its control API.

Integration tests put tests/hub on sys.path and do:

    from hubclient import Hub
    with Hub().start(tmpdir) as hub:          # or: with Hub(tmpdir) as hub:
        hub.add_task("cohort_query", {...})
        env = hub.env()                        # CENTRAL_HUB_API_URL, TRUST_API_KEY, ...
        ... run the node ...
        assert [r["path"] for r in hub.requests()] == [...]

Every control method returns the decoded JSON answer and raises HubError (with
.status and .body) when the emulator answers 4xx/5xx.  Only the standard library is
used here, so this module imports under any Python 3.
"""

import base64
import http.client
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "emulator.py")
PYTHON = "/usr/bin/python3"
START_TIMEOUT = 10.0


class HubError(Exception):
    """The emulator answered a control call with an error status."""

    def __init__(self, status, body):
        super().__init__("hub emulator answered %d: %s" % (status, body))
        self.status = status
        self.body = body


def make_self_signed(directory, name="hub"):
    """Create a self-signed EC certificate for 127.0.0.1/localhost with the openssl
    CLI.  Returns (cert_path, key_path); the cert doubles as the CA file."""
    cert = os.path.join(directory, name + "-cert.pem")
    key = os.path.join(directory, name + "-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return cert, key


class Response:
    """A raw answer from the hub API: status, headers (lower-cased), body bytes."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body[:200])


class Hub:
    def __init__(self, tmpdir=None, **start_kwargs):
        self.proc = None
        self._tmpdir = tmpdir
        self._start_kwargs = start_kwargs

    # -- lifecycle ---------------------------------------------------------------

    def start(self, tmpdir=None, trust_id=None, trust_name="Trust_1", api_key=None,
              aes_key_b64=None, key_header="Authorization", tls=None, extra_args=(),
              stale_seconds=None, hub_version=None):
        """Launch the emulator; returns self.

        tls: None for plain HTTP, True to generate a self-signed certificate with
        the openssl CLI in tmpdir, or a (cert_path, key_path) pair.  self.ca_file
        then names the certificate to trust.
        """
        if self.proc is not None:
            raise RuntimeError("hub emulator already started")
        tmpdir = tmpdir or self._tmpdir
        if tmpdir is None:
            raise ValueError("start() needs a tmpdir")
        os.makedirs(tmpdir, exist_ok=True)
        self.tmpdir = tmpdir
        self.trust_id = trust_id or str(uuid.uuid4())
        self.trust_name = trust_name
        self.api_key = api_key or base64.urlsafe_b64encode(os.urandom(24)).decode()
        self.aes_key_b64 = aes_key_b64 or base64.b64encode(os.urandom(32)).decode()
        self.aes_key = base64.b64decode(self.aes_key_b64)
        self.key_header = key_header
        self.ca_file = None
        if tls is True:
            tls = make_self_signed(tmpdir)
        tag = uuid.uuid4().hex[:8]
        self.port_file = os.path.join(tmpdir, "hub-%s.port" % tag)
        self.log_path = os.path.join(tmpdir, "hub-%s.log" % tag)
        cmd = [PYTHON, EMULATOR, "--port-file", self.port_file,
               "--trust-id", self.trust_id, "--trust-name", trust_name,
               # "=": a random urlsafe key may start with "-", which argparse
               # would take for an option
               "--api-key=" + self.api_key, "--aes-key-b64", self.aes_key_b64,
               "--key-header", key_header]
        if tls:
            cmd += ["--tls-cert", tls[0], "--tls-key", tls[1]]
            self.ca_file = tls[0]
        if stale_seconds is not None:
            cmd += ["--stale-seconds", str(stale_seconds)]
        if hub_version is not None:
            cmd += ["--hub-version", hub_version]
        cmd += list(extra_args)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                self._fail("exited with %d before listening" % self.proc.returncode)
            if time.monotonic() > deadline:
                self._fail("did not write its port file within %gs" % START_TIMEOUT)
            time.sleep(0.02)
        with open(self.port_file) as f:
            self.port = int(f.read().strip())
        scheme = "https" if tls else "http"
        self.scheme = scheme
        self.base = "%s://127.0.0.1:%d" % (scheme, self.port)
        self.url = self.base + "/api"
        self.control_url = self.base + "/_control"
        return self

    def _fail(self, why):
        self.stop()
        with open(self.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        raise RuntimeError("hub emulator %s; its log:\n%s" % (why, log))

    def stop(self):
        """SIGTERM, wait up to 5 s, then SIGKILL.  Returns the exit status."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._log.close()
        return proc.returncode

    def __enter__(self):
        if self.proc is None:
            self.start(**self._start_kwargs)
        return self

    def __exit__(self, *exc):
        self.stop()

    def env(self):
        """The node's configuration keys that point it at this hub."""
        e = {"CENTRAL_HUB_API_URL": self.url, "TRUST_API_KEY": self.api_key,
             "TRUST_API_KEY_HEADER": self.key_header,
             "AES_KEY_BASE64": self.aes_key_b64}
        if self.ca_file:
            e["FLIP_CA_BUNDLE"] = self.ca_file
        return e

    # -- HTTP --------------------------------------------------------------------

    def _conn(self, timeout):
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.ca_file)
            return http.client.HTTPSConnection("127.0.0.1", self.port,
                                               timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30):
        """One raw HTTP request to the emulator (path from the root, e.g.
        "/api/tasks/pending").  body: bytes, str, or an object sent as JSON."""
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn = self._conn(timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status,
                            {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def api(self, method, path, body=None, headers=None, auth=True, timeout=30):
        """A hub API call as the node would make it; path is relative to /api."""
        hdrs = dict(headers or {})
        if auth:
            hdrs.setdefault(self.key_header, self.api_key)
        return self.request(method, "/api" + path, body, hdrs, timeout)

    def _control(self, method, path, body=None):
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        r = self.request(method, "/_control" + path, data, headers)
        obj = r.json() if r.body else None
        if r.status >= 400:
            raise HubError(r.status, obj)
        return obj

    # -- control calls -------------------------------------------------------------

    def add_task(self, task_type, payload, **kw):
        """Queue a task whose payload object is sealed for "task:<task_type>".
        kw: id, trust_id, created_at, context, kid, key_b64.  Returns the id."""
        return self._control("POST", "/tasks",
                             dict(kw, task_type=task_type, payload=payload))["ids"][0]

    def add_raw_task(self, task_type, raw_payload, **kw):
        """Queue a task whose payload is sent exactly as given.  Returns the id."""
        return self._control("POST", "/tasks", dict(kw, task_type=task_type,
                                                    raw_payload=raw_payload))["ids"][0]

    def add_tasks(self, specs):
        """Queue many task specs (dicts as POST /_control/tasks takes) at once."""
        return self._control("POST", "/tasks", {"tasks": list(specs)})["ids"]

    def tasks(self):
        return self._control("GET", "/tasks")["tasks"]

    def task(self, task_id):
        return self._control("GET", "/tasks/" + urllib.parse.quote(task_id, safe=""))

    def requests(self):
        return self._control("GET", "/requests")

    def clear_requests(self):
        return self._control("POST", "/requests/clear", {})

    def cohort_results(self):
        return self._control("GET", "/cohort_results")

    def heartbeats(self):
        return self._control("GET", "/heartbeats")

    def config(self, **kw):
        """Merge settings: rate_limits, rate_window, reject_snapshot, fingerprint,
        trust_id, trust_name, hub_version, stale_seconds.  Returns the config."""
        return self._control("POST", "/config", kw)

    def requeue_stale(self, older_than=None):
        body = {} if older_than is None else {"older_than": older_than}
        return self._control("POST", "/requeue_stale", body)["moved"]

    def requeue(self, task_id):
        return self._control("POST", "/requeue", {"id": task_id})

    def requeue_persist(self, project_id):
        """The hub's re-check of a frozen project: a new persist_cohort task. Its ids."""
        return self._control("POST", "/requeue_persist", {"project_id": project_id})["ids"]

    def cancel(self, task_id):
        return self._control("POST", "/cancel", {"id": task_id})

    def fault(self, **rule):
        """Add a fault rule: path, method, kind, status, delay, count, body, headers."""
        return self._control("POST", "/faults", rule)

    def faults(self):
        return self._control("GET", "/faults")["faults"]

    def clear_faults(self):
        return self._control("POST", "/faults/clear", {})

    def reset(self):
        return self._control("POST", "/reset", {})

    def seal(self, plaintext, context):
        return self._control("POST", "/seal", {"plaintext": plaintext,
                                               "context": context})["envelope"]

    def open(self, envelope, context):
        """The plaintext str; raises HubError(400, {"error": ...}) when it fails."""
        return self._control("POST", "/open", {"envelope": envelope,
                                               "context": context})["plaintext"]
