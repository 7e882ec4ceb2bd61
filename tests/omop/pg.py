# SPDX-License-Identifier: Apache-2.0
"""pg - a throwaway PostgreSQL 15 cluster for one test, with the OMOP database FLIP uses.

    from pg import Postgres
    with Postgres(tmpdir) as pg:                     # initdb + start; stop on exit
        pg.setup_omop(fixture_sql_path=pg.FIXTURE)   # db "omop", schema, data, roles
        kit.update(pg.env())     # OMOP_DB_HOST, OMOP_DB_PORT, OMOP_POSTGRES_DB,
                                 # DATA_ACCESS_POSTGRES_USER, DATA_ACCESS_POSTGRES_PASSWORD
        pg.psql("SELECT count(*) FROM omop.person")              # superuser, socket
        pg.psql("SELECT 1", user=pg.user)                        # the node's role, TCP

The cluster lives entirely in tmpdir: tmpdir/pgdata (initdb), tmpdir/postgres.log
(the server log), and the server's Unix socket in tmpdir itself
(unix_socket_directories), so nothing touches /var/run/postgresql or the machine's own
clusters. The server listens on 127.0.0.1 only, on a free port found by binding port 0
(retried on the rare race where someone takes it first). When run as root, tmpdir is
chowned to `postgres` and every server-side command (initdb, pg_ctl) runs as that user
through setpriv; a parent of tmpdir that `postgres` cannot search (a test's own 0700
temporary directory) is given o+x (search only), and only when it lies under the
system temporary directory and belongs to us; anything else is an error.

Authentication (pg_hba.conf, written by us): the superuser `postgres` over the Unix
socket with trust (setup only; nobody else can reach the socket directory), the node's
login role over TCP 127.0.0.1 with scram-sha-256, and everything else rejected. So the
node's login is a real password login, and the role cannot come in through the socket.

Roles, as FLIP's trust/omop-db/files/create_readonly_users.sql makes them
(docs/design/data-access.md): a NOLOGIN base role `omop_readonly_base` with CONNECT on the
database, USAGE on schema omop, SELECT on all its tables and sequences and default
privileges for future ones; CREATE (schema, database) and INSERT/UPDATE/DELETE/
TRUNCATE revoked; a LOGIN role (default `data_analyst_reader`) in it, with a random
password, CONNECTION LIMIT 5 and statement_timeout = '300s'. setup_omop then proves
the restrictions by trying, as that role over TCP, to CREATE TABLE in omop and public,
to INSERT/UPDATE/DELETE/TRUNCATE, and to read pg_authid; it raises if any succeeds.

API
    Postgres(tmpdir, user="data_analyst_reader", password=None, bindir=BINDIR)
    .start()                 initdb (first time) + start + wait for pg_isready; self
                             (a restart of the same pgdata may get another port)
    .stop()                  pg_ctl stop -m fast (SIGQUIT/SIGKILL to the postmaster's
                             pid as a last resort); removes nothing; idempotent
    .psql(sql, db=None, user=None, password=None, args=("-X", "-q", "-A", "-t"),
          check=True, vars=None) -> stdout
    .run_psql(...)           the same, returning the CompletedProcess (for failures)
    .psql_file(path, db=None, user=None, vars=None)
    .setup_omop(db="omop", schema_sql_path=CDM54, fixture_sql_path=None)
    .load_generated(n, db=None)      tests/omop/gen's data set of n persons
    .env()        the node's kit keys (TCP, the login role and its password)
    .reader_env() libpq PG* variables for psql as the login role over TCP
    .admin_env()  libpq PG* variables for psql as the superuser over the socket
    .host .port .dbname .user .password .superuser .socket_dir .pgdata .log_path
    .postmaster_pid()        None when not running
    .leftover_processes()    pids of processes still using our pgdata (for tests)
    .du()                    bytes used by pgdata
    Constants CDM54, FIXTURE (paths beside this file), BASE_ROLE, BINDIR.

Errors: PgError (with .log_tail where relevant) for a failed start or setup;
PsqlError (with .returncode, .stderr) for a failed psql when check=True.
Standard library only; the psql, initdb, pg_ctl and pg_isready of PostgreSQL 15.
"""

import atexit
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CDM54 = os.path.join(HERE, "cdm54.sql")
FIXTURE = os.path.join(HERE, "fixture.sql")
BINDIR = os.environ.get("FLIP_PG_BINDIR", "/usr/lib/postgresql/15/bin")
BASE_ROLE = "omop_readonly_base"
DEFAULT_USER = "data_analyst_reader"
SUPERUSER = "postgres"
OS_USER = "postgres"          # the account the server runs as when we are root
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30


class PgError(Exception):
    """The cluster could not be created, started or set up."""

    def __init__(self, msg, log_tail=""):
        super().__init__(msg + ("\n--- server log (tail) ---\n" + log_tail if log_tail else ""))
        self.log_tail = log_tail


class PsqlError(PgError):
    """psql exited non-zero."""

    def __init__(self, returncode, stderr, what="psql"):
        super().__init__("%s failed (exit %d): %s" % (what, returncode, stderr.strip()))
        self.returncode = returncode
        self.stderr = stderr


def available(bindir=BINDIR):
    """available - whether PostgreSQL's server programs are installed (for skipTest)."""
    return all(os.access(os.path.join(bindir, p), os.X_OK)
               for p in ("initdb", "pg_ctl", "pg_isready", "psql", "postgres"))


def free_port():
    """free_port - a loopback port nobody is bound to right now (bind 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf_quote(value):
    """_conf_quote - a postgresql.conf string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def _pid_alive(pid):
    """_pid_alive - whether pid is a live (not zombie) process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class Postgres:
    def __init__(self, tmpdir, user=DEFAULT_USER, password=None, bindir=BINDIR):
        self.tmpdir = os.path.abspath(tmpdir)
        self.pgdata = os.path.join(self.tmpdir, "pgdata")
        self.log_path = os.path.join(self.tmpdir, "postgres.log")
        self.socket_dir = self.tmpdir
        self.bindir = bindir
        self.host = "127.0.0.1"
        self.port = None
        self.dbname = None
        self.superuser = SUPERUSER
        self.user = user
        # hex: safe in a kit file, a URI and a shell word alike
        self.password = password or secrets.token_hex(16)
        self._as_root = os.geteuid() == 0
        self._pid = None
        self._atexit = False

    # -- running commands ------------------------------------------------------------

    def _server_cmd(self, argv):
        """_server_cmd - argv run as the server's OS account (setpriv when root)."""
        if not self._as_root:
            return argv
        return ["setpriv", "--reuid=" + OS_USER, "--regid=" + OS_USER, "--init-groups",
                "--"] + argv

    @staticmethod
    def _clean_env(extra=None):
        """_clean_env - our environment without the caller's libpq settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", TZ="UTC", PGCONNECT_TIMEOUT="10")
        env.update(extra or {})
        return env

    def _run_server(self, argv, timeout=120, check=True):
        p = subprocess.run(self._server_cmd(argv), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, cwd=self.tmpdir,
                           env=self._clean_env(), timeout=timeout)
        if check and p.returncode != 0:
            raise PgError("%s failed (exit %d): %s" % (os.path.basename(argv[0]), p.returncode,
                                                       (p.stderr or p.stdout).strip()),
                          self.log_tail())
        return p

    def _bin(self, name):
        return os.path.join(self.bindir, name)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- lifecycle ---------------------------------------------------------------------

    def start(self):
        """start - initdb if needed, start on a free port, wait until it accepts."""
        if self.postmaster_pid() is not None:
            raise PgError("cluster in %s is already running" % self.pgdata)
        if not available(self.bindir):
            raise PgError("PostgreSQL 15 server programs not found in %s" % self.bindir)
        os.makedirs(self.tmpdir, exist_ok=True)
        if self._as_root:
            self._give_to_postgres()
        if not os.path.exists(os.path.join(self.pgdata, "PG_VERSION")):
            self._initdb()
        self._write_hba()
        if not self._atexit:
            atexit.register(self._stop_at_exit)
            self._atexit = True
        for attempt in range(3):
            self.port = free_port()
            self._write_conf()
            # truncate the log per attempt so a bind error is read from this attempt
            open(self.log_path, "w").close()
            if self._as_root:
                pw = pwd.getpwnam(OS_USER)
                os.chown(self.log_path, pw.pw_uid, pw.pw_gid)
            self._run_server([self._bin("pg_ctl"), "-D", self.pgdata, "-l", self.log_path,
                              "-W", "start"])
            if self._wait_ready():
                return self
            log = self.log_tail()
            self._kill_postmaster()
            if "could not bind" in log or "Address already in use" in log:
                continue            # someone took the port between bind(0) and start
            raise PgError("PostgreSQL did not start within %gs" % START_TIMEOUT, log)
        raise PgError("PostgreSQL could not bind a free port in 3 attempts", self.log_tail())

    def _give_to_postgres(self):
        """Let the server's account own tmpdir and reach it."""
        pw = pwd.getpwnam(OS_USER)
        os.chown(self.tmpdir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.tmpdir, 0o700)
        systmp = os.path.realpath(tempfile.gettempdir())
        d = os.path.dirname(os.path.realpath(self.tmpdir))
        while d != "/":
            st = os.stat(d)
            if not st.st_mode & stat.S_IXOTH and st.st_uid != pw.pw_uid:
                if d.startswith(systmp + os.sep) and st.st_uid == os.geteuid():
                    os.chmod(d, stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
                else:
                    raise PgError("%s is not searchable by %s; put the cluster's tmpdir "
                                  "under %s" % (d, OS_USER, systmp))
            d = os.path.dirname(d)

    def _initdb(self):
        # --no-sync: a throwaway cluster needs no durable initdb
        # trust on the socket for our own setup, TCP refused until _write_hba says who
        self._run_server([self._bin("initdb"), "-D", self.pgdata, "-U", self.superuser,
                          "-E", "UTF8", "--locale=C", "--auth-local=trust",
                          "--auth-host=reject", "--no-sync", "--no-instructions"])

    def _write_conf(self):
        conf = os.path.join(self.pgdata, "postgresql.conf")
        include = "include_if_exists = 'flip_test.conf'\n"
        with open(conf) as f:
            text = f.read()
        if include not in text:
            with open(conf, "a") as f:
                f.write("\n# flip-node tests: settings in flip_test.conf\n" + include)
        lines = [
            "# written by tests/omop/pg.py for one test run; not for production",
            "listen_addresses = '127.0.0.1'",
            "port = %d" % self.port,
            "unix_socket_directories = %s" % _conf_quote(self.socket_dir),
            "unix_socket_permissions = 0700",
            "password_encryption = 'scram-sha-256'",
            # Speed, tests only: a throwaway cluster need not survive a crash, so no
            # fsync, no full-page images, no waiting for the WAL flush at commit, and
            # minimal WAL (a table filled in the transaction that truncated it writes
            # no WAL at all, which is what makes tests/omop/gen fast).
            "fsync = off",
            "full_page_writes = off",
            "synchronous_commit = off",
            "wal_level = minimal",
            "max_wal_senders = 0",
            "max_wal_size = '2GB'",
            "timezone = 'UTC'",
            "log_timezone = 'UTC'",
            "log_connections = on",
            "log_line_prefix = '%m [%p] %q%u@%d '",
            "logging_collector = off",
        ]
        path = os.path.join(self.pgdata, "flip_test.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self._own(path)

    def _write_hba(self):
        path = os.path.join(self.pgdata, "pg_hba.conf")
        with open(path, "w") as f:
            f.write(
                "# written by tests/omop/pg.py: superuser over the socket for setup only,\n"
                "# the node's role over TCP with a password, nothing else.\n"
                "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
                "local   all  %s  trust\n"
                "host    all  %s  127.0.0.1/32  scram-sha-256\n"
                "local   all  all  reject\n"
                "host    all  all  0.0.0.0/0  reject\n"
                "host    all  all  ::/0  reject\n" % (self.superuser, self._hba_name(self.user)))
        self._own(path)

    @staticmethod
    def _hba_name(name):
        """A role name as pg_hba.conf wants it: double-quoted is always literal."""
        return '"%s"' % name.replace('"', '""')

    def _own(self, path):
        if self._as_root:
            pw = pwd.getpwnam(OS_USER)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _wait_ready(self):
        """Poll pg_isready over TCP until the server accepts, dies, or time runs out."""
        deadline = time.monotonic() + START_TIMEOUT
        seen = None
        while time.monotonic() < deadline:
            p = subprocess.run([self._bin("pg_isready"), "-q", "-h", self.host, "-p", str(self.port),
                                "-U", self.superuser, "-d", "postgres", "-t", "2"],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               env=self._clean_env(), timeout=10)
            pid = self._read_pidfile()
            if pid is not None:
                seen = pid
                self._pid = pid
            if p.returncode == 0 and pid is not None and _pid_alive(pid):
                return True
            if seen is not None and (pid is None or not _pid_alive(seen)):
                return False        # it started, then exited (or left a stale pid file)
            if seen is None and "FATAL" in self.log_tail():
                time.sleep(0.2)     # failed before writing its pid file (bad config...)
                return False
            time.sleep(0.05)
        return False

    def _read_pidfile(self):
        try:
            with open(os.path.join(self.pgdata, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def postmaster_pid(self):
        """postmaster_pid - the running postmaster's pid, from postmaster.pid, or None."""
        pid = self._read_pidfile()
        if pid is not None and _pid_alive(pid):
            self._pid = pid
            return pid
        return None

    def stop(self):
        """stop - pg_ctl stop -m fast; the postmaster's own pid is the fallback."""
        pid = self.postmaster_pid() or (self._pid if self._pid and _pid_alive(self._pid) else None)
        if pid is None:
            return
        try:
            self._run_server([self._bin("pg_ctl"), "-D", self.pgdata, "-m", "fast", "-w",
                              "-t", str(STOP_TIMEOUT), "stop"], timeout=STOP_TIMEOUT + 10,
                             check=False)
        except subprocess.TimeoutExpired:
            pass
        self._kill_postmaster(pid)

    def _kill_postmaster(self, pid=None):
        """Immediate shutdown (SIGQUIT), then SIGKILL: our postmaster's pid only."""
        pid = pid or self._pid
        if not pid:
            return
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            if not _pid_alive(pid):
                return
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and _pid_alive(pid):
                time.sleep(0.05)

    def _stop_at_exit(self):
        try:
            self.stop()
        except Exception:   # interpreter exit: best effort, never mask the real error
            pass

    def __enter__(self):
        if self.postmaster_pid() is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def leftover_processes(self):
        """leftover_processes - pids whose command line names our pgdata, plus live
        children of the postmaster we knew (their titles do not name pgdata)."""
        found = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] in ("Z", "X"):
                continue
            if self.pgdata in cmd or (self._pid and int(fields[1]) == self._pid):
                found.append(int(d))
        return found

    def du(self):
        """du - bytes used by pgdata (allocated blocks, as du counts them)."""
        total = 0
        for root, _dirs, files in os.walk(self.pgdata):
            for name in files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_blocks * 512
                except OSError:
                    pass
        return total

    # -- psql ------------------------------------------------------------------------

    def _conn_args(self, db, user, password):
        user = user or self.superuser
        db = db or self.dbname or "postgres"
        env = {}
        if user == self.superuser:
            host = self.socket_dir
        else:
            host = self.host
            # None: the login role's own password; "": send none
            pw = password if password is not None else (self.password if user == self.user else None)
            if pw:
                env["PGPASSWORD"] = pw
        return ["-h", host, "-p", str(self.port), "-U", user, "-d", db], env

    def run_psql(self, sql=None, db=None, user=None, password=None,
                 args=("-X", "-q", "-A", "-t"), vars=None, file=None, timeout=600):
        """run_psql - psql with ON_ERROR_STOP; SQL on stdin (or -f file); the
        CompletedProcess. The superuser goes through the socket, anyone else through
        TCP with a password (the login role's own by default)."""
        if self.port is None:
            raise PgError("cluster not started")
        conn, env = self._conn_args(db, user, password)
        # -w: never prompt for a password (fail instead)
        cmd = [self._bin("psql"), "-w"] + conn + list(args) + ["-v", "ON_ERROR_STOP=1"]
        for k, v in (vars or {}).items():
            cmd += ["-v", "%s=%s" % (k, v)]
        if file is not None:
            cmd += ["-f", file]
        return subprocess.run(cmd, input=sql if file is None else None,
                              stdin=subprocess.DEVNULL if file is not None else None,
                              capture_output=True, text=True, env=self._clean_env(env),
                              timeout=timeout)

    def psql(self, sql, db=None, user=None, password=None, args=("-X", "-q", "-A", "-t"),
             check=True, vars=None, timeout=600):
        """psql - run sql, return stdout; PsqlError when it fails and check is set."""
        p = self.run_psql(sql, db=db, user=user, password=password, args=args, vars=vars,
                          timeout=timeout)
        if check and p.returncode != 0:
            raise PsqlError(p.returncode, p.stderr)
        return p.stdout

    def psql_file(self, path, db=None, user=None, vars=None, timeout=600):
        p = self.run_psql(db=db, user=user, vars=vars, file=path, timeout=timeout)
        if p.returncode != 0:
            raise PsqlError(p.returncode, p.stderr, "psql -f %s" % os.path.basename(path))
        return p.stdout

    # -- the OMOP database -----------------------------------------------------------

    def setup_omop(self, db="omop", schema_sql_path=CDM54, fixture_sql_path=None):
        """setup_omop - database db with schema omop from the DDL, the fixture's data
        (optional), and FLIP's read-only roles; then check the login role is confined.
        Callable again for another database in the same cluster (the roles are
        cluster-wide and are created once; the grants are per database)."""
        if self.port is None:
            raise PgError("cluster not started")
        self.psql('CREATE DATABASE "%s"' % db.replace('"', '""'), db="postgres")
        self.dbname = db
        self.psql_file(schema_sql_path, db=db)
        if fixture_sql_path:
            self.psql_file(fixture_sql_path, db=db)
        self._create_roles(db)
        self.psql("ANALYZE", db=db)
        self.verify_readonly(db)
        return self

    def _create_roles(self, db):
        # The password goes in on stdin (\set), not on a command line.
        sql = r"""
\set pw '%(pw)s'
SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = :'base') AS make_base \gset
\if :make_base
CREATE ROLE :"base" NOLOGIN;
\endif
GRANT CONNECT ON DATABASE :"db" TO :"base";
GRANT USAGE ON SCHEMA omop TO :"base";
GRANT SELECT ON ALL TABLES IN SCHEMA omop TO :"base";
GRANT SELECT ON ALL SEQUENCES IN SCHEMA omop TO :"base";
ALTER DEFAULT PRIVILEGES IN SCHEMA omop GRANT SELECT ON TABLES TO :"base";
ALTER DEFAULT PRIVILEGES IN SCHEMA omop GRANT SELECT ON SEQUENCES TO :"base";

SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = :'login') AS make_login \gset
\if :make_login
CREATE ROLE :"login" WITH LOGIN PASSWORD :'pw' CONNECTION LIMIT 5;
\else
ALTER ROLE :"login" WITH LOGIN PASSWORD :'pw' CONNECTION LIMIT 5;
\endif
GRANT :"base" TO :"login";
ALTER ROLE :"login" SET statement_timeout = '300s';

-- defence in depth, as FLIP does: none of these was granted, revoke them anyway
REVOKE CREATE ON SCHEMA omop FROM :"base", :"login";
REVOKE CREATE ON DATABASE :"db" FROM :"base", :"login";
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA omop FROM :"base", :"login";
""" % {"pw": self.password}
        self.psql(sql, db=db, vars={"base": BASE_ROLE, "login": self.user, "db": db})

    def verify_readonly(self, db=None):
        """verify_readonly - as the login role over TCP: it can read omop, and every
        write and catalog read below fails with a permission error. Raises PgError."""
        db = db or self.dbname
        ok = self.run_psql("SELECT count(*) >= 0 FROM omop.person", db=db, user=self.user)
        if ok.returncode != 0 or ok.stdout.strip() != "t":
            raise PgError("login role %s cannot read omop.person: %s" % (self.user, ok.stderr.strip()))
        attempts = {
            "CREATE TABLE in omop": "CREATE TABLE omop.flip_probe (i int)",
            "CREATE TABLE in public": "CREATE TABLE public.flip_probe (i int)",
            "INSERT": "INSERT INTO omop.concept_ancestor VALUES (1, 1, 0, 0)",
            "UPDATE": "UPDATE omop.person SET year_of_birth = year_of_birth",
            "DELETE": "DELETE FROM omop.concept_ancestor",
            "TRUNCATE": "TRUNCATE omop.concept_ancestor",
            "read pg_authid": "SELECT rolpassword FROM pg_catalog.pg_authid",
        }
        for what, sql in attempts.items():
            p = self.run_psql(sql, db=db, user=self.user)
            if p.returncode == 0 or "permission denied" not in p.stderr:
                raise PgError("read-only role %s could %s (or failed oddly): exit %d %s"
                              % (self.user, what, p.returncode, p.stderr.strip()))
        return True

    def load_generated(self, n, db=None, timeout=600):
        """load_generated - replace the data with tests/omop/gen's n persons."""
        gen = _gen_module()
        p = self.run_psql(gen.generate_sql(n), db=db, args=("-X", "-q"), timeout=timeout)
        if p.returncode != 0:
            raise PsqlError(p.returncode, p.stderr, "gen %d" % n)

    # -- environments ------------------------------------------------------------------

    def env(self):
        """env - the node's kit-file keys for this database and login role."""
        return {
            "OMOP_DB_HOST": self.host,
            "OMOP_DB_PORT": str(self.port),
            "OMOP_POSTGRES_DB": self.dbname or "omop",
            "DATA_ACCESS_POSTGRES_USER": self.user,
            "DATA_ACCESS_POSTGRES_PASSWORD": self.password,
        }

    def reader_env(self):
        """reader_env - libpq variables: the login role over TCP (psql, pg_dump...)."""
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user,
                "PGPASSWORD": self.password, "PGDATABASE": self.dbname or "omop"}

    def admin_env(self):
        """admin_env - libpq variables: the superuser over the Unix socket."""
        return {"PGHOST": self.socket_dir, "PGPORT": str(self.port), "PGUSER": self.superuser,
                "PGDATABASE": self.dbname or "omop"}


class FixtureDatabase:
    """unittest mixin: cls.pg, a throwaway cluster with database "omop" holding the
    hand-made fixture and FLIP's read-only roles, for the whole test class. Put it
    before the TestCase base; a class that needs more calls super() in its own
    setUpClass/tearDownClass."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pgdir = tempfile.mkdtemp(prefix="flip-pg-")
        cls.pg = Postgres(os.path.join(cls.pgdir, "pg"))
        try:
            cls.pg.start()
            cls.pg.setup_omop(fixture_sql_path=FIXTURE)
        except BaseException:
            cls.pg.stop()
            shutil.rmtree(cls.pgdir, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()
        shutil.rmtree(cls.pgdir, ignore_errors=True)
        super().tearDownClass()


def _gen_module():
    """gen.py beside this file, whatever sys.path holds."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("flip_omop_gen", os.path.join(HERE, "gen.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
