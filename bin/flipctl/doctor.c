/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doctor - the set-up checks of `flipctl doctor` (see doctor.h for the contract).
 *
 * Every check asks the real thing the node will use (a heartbeat, a libpq login
 * and catalog queries inside the node's own read-only transaction, a C-ECHO
 * through the DICOM shim, the kit verifier flip-fl uses), so that "ok" here means
 * the programs will get the same answer. The OMOP role check reads privileges
 * from the catalog rather than trying a write: the session is READ ONLY anyway,
 * and a doctor must not change a hospital's database to prove it could.
 */
#include "bin/flipctl/doctor.h"

#include "lib/dicom.h"
#include "lib/durable.h"
#include "lib/envelope.h"
#include "lib/heartbeat.h"
#include "lib/hub.h"
#include "lib/kit.h"
#include "lib/omop.h"
#include "lib/statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

/* doctor_say - one line of the report */
void doctor_say(struct doctor *d, enum doctor_verdict v, const char *check, const char *fmt, ...)
{
	va_list ap;

	fprintf(d->out, "%-4s %-12s ", v == DOCTOR_OK ? "ok" : v == DOCTOR_FAIL ? "FAIL" : "--",
		check);
	va_start(ap, fmt);
	vfprintf(d->out, fmt, ap);
	va_end(ap);
	fputc('\n', d->out);
	d->failed += v == DOCTOR_FAIL;
}

/* doctor_local - config, proxy, directories and their free space */
void doctor_local(struct doctor *d, const struct node *n)
{
	doctor_say(d, DOCTOR_OK, "config", "%s (mode and every key valid)",
		   n->cfg.path[0] ? n->cfg.path : "(environment)");
	if (n->cfg.https_proxy) {
		/* show where, never the credentials a proxy URL may carry */
		const char *p = n->cfg.https_proxy, *at = strrchr(p, '@'),
			   *scheme = strstr(p, "://");
		doctor_say(d, DOCTOR_OK, "proxy", "hub calls go through %.*s%s%s",
			   scheme ? (int)(scheme - p + 3) : 0, p,
			   at ? "" : (scheme ? scheme + 3 : p), at ? at + 1 : "");
	}
	const char *dirs[] = {n->cfg.spool_dir, n->cfg.state_dir, n->cfg.log_dir};
	for (size_t i = 0; i < 3; i++) {
		struct statvfs vfs;
		if (access(dirs[i], W_OK | X_OK) < 0)
			doctor_say(d, DOCTOR_FAIL, "directory", "%s: %s (run flipctl init)", dirs[i],
				   strerror(errno));
		else if (statvfs(dirs[i], &vfs) == 0 && vfs.f_blocks &&
			 (double)vfs.f_bavail / (double)vfs.f_blocks < 0.05)
			doctor_say(d, DOCTOR_FAIL, "disk",
				   "%s: under 5%% free (free space, or results cannot be spooled)",
				   dirs[i]);
		else {
			doctor_say(d, DOCTOR_OK, "directory", "%s writable", dirs[i]);
			if (statvfs(dirs[i], &vfs) == 0 && vfs.f_blocks)
				doctor_say(d, DOCTOR_OK, "disk", "%s: %.0f%% free", dirs[i],
					   100.0 * (double)vfs.f_bavail / (double)vfs.f_blocks);
		}
	}
}

/* doctor_hub - a heartbeat, then what its answer says about the key and the clock */
void doctor_hub(struct doctor *d, struct node *n)
{
	struct hub h;
	char err[1024];

	if (hub_init(&h, &n->cfg, err, sizeof(err)) < 0) {
		doctor_say(d, DOCTOR_FAIL, "hub", "%s", err);
		return;
	}
	hub_want_cert(&h);
	if (heartbeat_send(n, &h, 0, NULL, err, sizeof(err)) != ERR_OK) {
		doctor_say(d, DOCTOR_FAIL, "hub", "%s", err);
		hub_cleanup(&h);
		return;
	}
	time_t na;
	if (hub_cert_expiry(&h, &na) == 0) {
		char date[32];
		struct tm tm;
		double days = difftime(na, time(NULL)) / 86400.0;
		gmtime_r(&na, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", &tm);
		doctor_say(d, DOCTOR_OK, "hub-tls", "certificate verified, valid until %s (%.0f "
			   "days)%s", date, days, days < DOCTOR_CERT_WARN_DAYS
			   ? ": ends soon, tell the hub's operators" : "");
	} else if (strncmp(n->cfg.hub_url, "https:", 6) != 0) {
		/* a hub on this host is a test or a tunnel's end; anywhere else the key
		 * and the tasks would cross the network in clear */
		const char *u = n->cfg.hub_url + strlen("http://");
		int local = strncmp(u, "127.", 4) == 0 || strncmp(u, "localhost", 9) == 0 ||
			    strncmp(u, "[::1]", 5) == 0;
		doctor_say(d, local ? DOCTOR_SKIP : DOCTOR_FAIL, "hub-tls", "%s is plain http%s",
			   n->cfg.hub_url, local ? " on this host: no TLS to check"
			   : ": the API key and the tasks cross the network unencrypted (use "
			     "the hub's https URL)");
	}
	hub_cleanup(&h);

	int sfd = node_state_dirfd(n, NULL);
	char *text = NULL;
	size_t len;
	json_t *st = NULL;
	if (sfd >= 0 && durable_read(sfd, STATEDIR_HUB, STATEDIR_HUB_CAP, &text, &len) == 0)
		st = json_loadb(text, len, 0, NULL);
	free(text);
	if (sfd >= 0)
		close(sfd);
	json_t *reply = json_object_get(st, "reply");
	doctor_say(d, DOCTOR_OK, "hub", "%s reachable, API key accepted, trust %s (%s)",
		   n->cfg.hub_url,
		   json_string_value(json_object_get(reply, "trust_name")) ?: "?",
		   json_string_value(json_object_get(reply, "trust_id")) ?: "?");

	int fpm = (int)json_integer_value(json_object_get(st, "fingerprint_match"));
	char ours[13];
	envelope_fingerprint(n->cfg.aes_key, ours);
	if (fpm == 0)
		doctor_say(d, DOCTOR_FAIL, "aes-key",
			   "fingerprint %s differs from the hub's %s: install the current kit's "
			   "AES_KEY_BASE64",
			   ours, json_string_value(json_object_get(reply, "aes_key_fingerprint")));
	else
		doctor_say(d, DOCTOR_OK, "aes-key", "fingerprint %s%s", ours,
			   fpm == 1 ? " matches the hub's" : " (the hub did not say its own)");

	const char *date = json_string_value(json_object_get(st, "hub_date"));
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (date && strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
		double skew = difftime(time(NULL), timegm(&tm));
		int off = skew > 60 || skew < -60;
		doctor_say(d, off ? DOCTOR_FAIL : DOCTOR_OK, "clock", "%+.0f s against the hub%s",
			   skew, off ? " (fix NTP: certificates and audit times depend on it)" : "");
	}
	json_decref(st);
}

/* ---- OMOP ---------------------------------------------------------------------- */

/* omop_count - the first column of the first row of sql as a number, -1 on failure */
static long long omop_count(struct omop *db, const char *sql, struct omop_error *e)
{
	PGresult *res;
	long long v = -1;

	if (omop_query(db, sql, 0, NULL, &res, e) != ERR_OK)
		return -1;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		const char *s = PQgetvalue(res, 0, 0);
		v = strcmp(s, "t") == 0 ? 1 : strcmp(s, "f") == 0 ? 0 : strtoll(s, NULL, 10);
	}
	PQclear(res);
	return v;
}

/* what the role could do besides reading; 0 when nothing */
static const char ROLE_WRITES[] =
	"SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)::int"
	" + pg_has_role(current_user, 'pg_write_all_data', 'MEMBER')::int"
	" + has_database_privilege(current_database(), 'CREATE')::int"
	" + (SELECT count(*) FROM pg_namespace n WHERE n.nspname = 'omop'"
	"    AND has_schema_privilege(n.oid, 'CREATE'))"
	" + (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	"    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
	"    AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
	"    AND n.nspname NOT LIKE 'pg\\_toast%'"
	"    AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')"
	"      OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE')))";

/* the tables the node reads, each readable: 3 when all are (CASE, not AND, so that
 * has_table_privilege() never sees a missing table: it would raise an error) */
static const char SCHEMA_READABLE[] =
	"SELECT CASE WHEN to_regclass('omop.person') IS NULL THEN 0"
	"        ELSE has_table_privilege('omop.person', 'SELECT')::int END"
	" + CASE WHEN to_regclass('omop.image_occurrence') IS NULL THEN 0"
	"        ELSE has_table_privilege('omop.image_occurrence', 'SELECT')::int END"
	" + (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('omop.image_occurrence')"
	"    AND attname = 'accession_id' AND NOT attisdropped)::int";

/*
 * The functions a hostile cohort query would want (files, settings, sleeps, other
 * sessions, SQL held in a string, other databases). The SQL guard refuses every
 * one whatever the database allows; this is the defence in depth the DBA adds with
 * docs/security-revoke.sql, which revokes EXECUTE on the same names. Keep the two
 * lists together.
 */
static const char RISKY_FUNCTIONS[] =
	"{pg_read_file,pg_read_binary_file,pg_ls_dir,pg_stat_file,pg_ls_logdir,pg_ls_waldir,"
	"lo_import,lo_export,lo_get,lo_open,lo_from_bytea,query_to_xml,"
	"query_to_xml_and_xmlschema,query_to_xmlschema,table_to_xml,cursor_to_xml,"
	"schema_to_xml,database_to_xml,xpath,ts_stat,ts_rewrite,current_setting,set_config,"
	"pg_sleep,pg_sleep_for,pg_sleep_until,pg_terminate_backend,pg_cancel_backend,"
	"pg_advisory_lock,pg_advisory_xact_lock,pg_notify,version,inet_server_addr,"
	"inet_client_addr,pg_backend_pid,txid_current,pg_current_xact_id}";

/* which of them (and any dblink*) the role can execute, by name, one row each */
static const char RISKY_EXECUTABLE[] =
	"SELECT p.proname FROM pg_proc p WHERE (p.proname = ANY ($1::text[])"
	" OR p.proname LIKE 'dblink%') AND has_function_privilege(p.oid, 'EXECUTE')"
	" GROUP BY p.proname ORDER BY p.proname";

/* doctor_functions - the risky functions the login role can still execute */
static void doctor_functions(struct doctor *d, struct omop *db, const struct config *cfg)
{
	const char *const params[] = {RISKY_FUNCTIONS};
	struct omop_error e;
	PGresult *res;
	int n;

	if (omop_query(db, RISKY_EXECUTABLE, 1, params, &res, &e) != ERR_OK) {
		doctor_say(d, DOCTOR_FAIL, "omop-functions", "cannot read function privileges: %s",
			   e.message);
		return;
	}
	n = PQntuples(res);
	if (n == 0) {
		doctor_say(d, DOCTOR_OK, "omop-functions", "none of the risky functions is "
			   "executable by %s", cfg->omop_user);
	} else {
		/* a report, not a failure: the guard refuses them all; this is depth */
		char list[1024];
		size_t j = 0;
		list[0] = '\0';
		for (int i = 0; i < n && j + 1 < sizeof(list); i++) {
			int w = snprintf(list + j, sizeof(list) - j, "%s%s", i ? ", " : "",
					 PQgetvalue(res, i, 0));
			if (w < 0)
				break;
			j += (size_t)w;
		}
		doctor_say(d, DOCTOR_OK, "omop-functions", "%d risky functions still executable by "
			   "%s (the SQL guard refuses them; for defence in depth run "
			   "docs/security-revoke.sql as the database owner): %s", n, cfg->omop_user,
			   list);
	}
	PQclear(res);
}

void doctor_omop(struct doctor *d, const struct config *cfg)
{
	struct omop db;
	struct omop_error e;
	long long v;

	if (cfg->omop_host == NULL || cfg->omop_db == NULL || cfg->omop_user == NULL) {
		doctor_say(d, DOCTOR_SKIP, "omop", "not configured (OMOP_DB_HOST, OMOP_POSTGRES_DB, "
			   "DATA_ACCESS_POSTGRES_USER): cohort tasks will fail until it is");
		return;
	}
	if (omop_open(&db, cfg, &e) != ERR_OK) {
		doctor_say(d, DOCTOR_FAIL, "omop", "%s@%s:%d as %s: %s (check the host, port, "
			   "database name and the DATA_ACCESS_POSTGRES_* login)", cfg->omop_db,
			   cfg->omop_host, cfg->omop_port, cfg->omop_user, e.message);
		return;
	}
	doctor_say(d, DOCTOR_OK, "omop", "logged in to %s@%s:%d as %s", cfg->omop_db,
		   cfg->omop_host, cfg->omop_port, cfg->omop_user);

	v = omop_count(&db, ROLE_WRITES, &e);
	if (v < 0)
		doctor_say(d, DOCTOR_FAIL, "omop-role", "cannot read the role's privileges: %s",
			   e.message);
	else if (v > 0)
		doctor_say(d, DOCTOR_FAIL, "omop-role", "%s can do more than read (%lld write, "
			   "create or superuser privileges): give the node a login role with "
			   "SELECT on omop only (docs/deploy-on-prem.md)", cfg->omop_user, v);
	else
		doctor_say(d, DOCTOR_OK, "omop-role", "read-only: no write, create or superuser "
			   "privilege");

	v = omop_count(&db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'omop'", &e);
	if (v == 1)
		v = omop_count(&db, SCHEMA_READABLE, &e);
	else if (v == 0)
		v = -2;
	if (v == 3)
		doctor_say(d, DOCTOR_OK, "omop-schema", "omop.person and omop.image_occurrence "
			   "(with accession_id) readable");
	else if (v == -2)
		doctor_say(d, DOCTOR_FAIL, "omop-schema", "no schema omop in %s: load the OMOP CDM "
			   "into schema omop, or point OMOP_POSTGRES_DB at the database that has it",
			   cfg->omop_db);
	else if (v >= 0)
		doctor_say(d, DOCTOR_FAIL, "omop-schema", "omop.person or omop.image_occurrence "
			   "(with FLIP's accession_id column) missing or not readable: GRANT SELECT "
			   "ON ALL TABLES IN SCHEMA omop to the node's role");
	else
		doctor_say(d, DOCTOR_FAIL, "omop-schema", "%s", e.message);

	if (v == 3) {
		v = omop_count(&db, "SELECT (EXISTS (SELECT 1 FROM omop.concept))::int"
			       " + (EXISTS (SELECT 1 FROM omop.concept_ancestor))::int", &e);
		if (v == 2)
			doctor_say(d, DOCTOR_OK, "omop-vocab", "concept and concept_ancestor loaded");
		else if (v >= 0)
			doctor_say(d, DOCTOR_FAIL, "omop-vocab", "omop.concept or "
				   "omop.concept_ancestor is empty: load the OMOP vocabularies, "
				   "or every concept-based cohort counts 0");
		else
			doctor_say(d, DOCTOR_FAIL, "omop-vocab", "%s", e.message);
	}
	doctor_functions(d, &db, cfg);
	omop_close(&db);
}

/* ---- PACS ---------------------------------------------------------------------- */

void doctor_pacs(struct doctor *d, const struct config *cfg)
{
	char err[512];

	if (cfg->pacs_host == NULL) {
		doctor_say(d, DOCTOR_SKIP, "pacs", "not configured (PACS_HOST): imaging "
			   "retrieval cannot run until it is");
		return;
	}
	struct dicom_peer peer = {cfg->pacs_host, cfg->pacs_port, cfg->pacs_aetitle,
				  cfg->flip_aetitle, 10, 10, 10};
	enum dicom_err r = dicom_echo(&peer, err, sizeof(err));
	switch (r) {
	case DICOM_OK:
		doctor_say(d, DOCTOR_OK, "pacs", "C-ECHO to %s@%s:%d as %s answered%s",
			   cfg->pacs_aetitle, cfg->pacs_host, cfg->pacs_port, cfg->flip_aetitle,
			   strcmp(cfg->pacs_retrieve, "move") == 0
				   ? " (C-MOVE: the PACS must also send to this AE, host and "
				     "FLIP_DICOM_PORT)" : "");
		break;
	case DICOM_ERR_REJECTED:
		doctor_say(d, DOCTOR_FAIL, "pacs", "%s (register AE title %s for this host on the "
			   "PACS, and check PACS_AETITLE)", err, cfg->flip_aetitle);
		break;
	case DICOM_ERR_UNREACHABLE:
		doctor_say(d, DOCTOR_FAIL, "pacs", "%s (check PACS_HOST, PACS_DICOM_PORT and the "
			   "firewall between this host and the PACS)", err);
		break;
	default:
		doctor_say(d, DOCTOR_FAIL, "pacs", "%s", err);
	}
}

/* ---- FL --------------------------------------------------------------------------- */

/* reach - a TCP connection to host:port within DOCTOR_CONNECT_SECONDS; 0, or -1 with why */
static int reach(const char *host, int port, char *why, size_t len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char service[16];
	int rc, last = ETIMEDOUT;

	snprintf(service, sizeof(service), "%d", port);
	if ((rc = getaddrinfo(host, service, &hints, &ai)) != 0) {
		snprintf(why, len, "cannot resolve the name: %s", gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				a->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			if (poll(&p, 1, DOCTOR_CONNECT_SECONDS * 1000) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
				close(fd);
				freeaddrinfo(ai);
				return 0;
			}
			last = soerr ? soerr : ETIMEDOUT;
		} else {
			last = errno;
		}
		close(fd);
	}
	freeaddrinfo(ai);
	snprintf(why, len, "%s", strerror(last));
	return -1;
}

/* server_target - fed_client.json's servers[0].service.target, "host:port"; 0 or -1 */
static int server_target(const char *startup, char *host, size_t hostlen, int *port)
{
	int fd = open(startup, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char *text = NULL, *end;
	size_t len;
	json_t *doc = NULL;
	int rc = -1;

	if (fd < 0)
		return -1;
	if (durable_read(fd, "fed_client.json", 1 << 20, &text, &len) == 0)
		doc = json_loadb(text, len, 0, NULL);
	close(fd);
	free(text);
	const char *t = json_string_value(json_object_get(
		json_object_get(json_array_get(json_object_get(doc, "servers"), 0), "service"),
		"target"));
	const char *colon = t ? strrchr(t, ':') : NULL;
	if (colon && colon > t && (size_t)(colon - t) < hostlen) {
		long p = strtol(colon + 1, &end, 10);
		if (*end == 0 && p > 0 && p < 65536 &&
		    strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
			    (size_t)(colon - t)) {
			memcpy(host, t, (size_t)(colon - t));
			host[colon - t] = 0;
			*port = (int)p;
			rc = 0;
		}
	}
	json_decref(doc);
	return rc;
}

void doctor_fl(struct doctor *d, const struct config *cfg)
{
	struct kit_paths kp;
	struct kit_findings *kf;
	char host[256], why[256];
	int port;

	if (cfg->fl_kit_slot == NULL) {
		doctor_say(d, DOCTOR_SKIP, "fl-kit", "FL_KIT_SLOT not set: no FL participation "
			   "until the hub's slot name for this trust is configured");
		return;
	}
	if (kit_paths(cfg->fl_kit_dir, cfg->fl_kit_slot, &kp) < 0) {
		doctor_say(d, DOCTOR_FAIL, "fl-kit", "FL_KIT_SLOT %s cannot name a folder",
			   cfg->fl_kit_slot);
		return;
	}
	if (access(kp.startup, F_OK) < 0) {
		doctor_say(d, DOCTOR_SKIP, "fl-kit", "slot %s: no kit installed in %s yet (flip-fl "
			   "install-kit TARBALL when the hub sends it)", cfg->fl_kit_slot,
			   kp.services);
		return;
	}
	if ((kf = calloc(1, sizeof(*kf))) == NULL) {
		doctor_say(d, DOCTOR_FAIL, "fl-kit", "out of memory");
		return;
	}
	kit_verify(kp.live, cfg->fl_kit_slot, time(NULL),
		   &(struct kit_trust){cfg->fl_kit_require_signature, cfg->fl_kit_root_ca_sha256}, kf);
	kit_check_site(kp.live, cfg->images_dir, kf);
	for (int i = 0; i < kf->nproblems; i++)
		doctor_say(d, DOCTOR_FAIL, "fl-kit", "%s", kf->problem[i]);
	if (kf->nproblems == 0) {
		char date[40] = "unknown";
		if (kf->cert_not_after) {
			struct tm tm;
			gmtime_r(&kf->cert_not_after, &tm);
			strftime(date, sizeof(date), "%Y-%m-%d", &tm);
		}
		doctor_say(d, DOCTOR_OK, "fl-kit", "slot %s verified, client.crt valid until %s",
			   cfg->fl_kit_slot, date);
	}
	for (int i = 0; i < kf->nwarnings; i++)
		doctor_say(d, DOCTOR_OK, "fl-kit", "but: %s", kf->warning[i]);
	free(kf);

	if (server_target(kp.startup, host, sizeof(host), &port) < 0) {
		doctor_say(d, DOCTOR_FAIL, "fl-server", "startup/fed_client.json names no server "
			   "target (servers[0].service.target, host:port): reinstall the kit");
		return;
	}
	if (port != cfg->fl_server_port)
		doctor_say(d, DOCTOR_OK, "fl-server", "note: the kit's server port %d is not "
			   "FL_SERVER_PORT %d; the client uses the kit's", port, cfg->fl_server_port);
	if (reach(host, port, why, sizeof(why)) < 0)
		doctor_say(d, DOCTOR_FAIL, "fl-server", "%s:%d: %s (the firewall must allow this "
			   "host out to that port, and the hub's load balancer must admit this "
			   "trust's public address)", host, port, why);
	else
		doctor_say(d, DOCTOR_OK, "fl-server", "%s:%d reachable (TCP)", host, port);
}
