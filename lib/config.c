/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config - the node's configuration: FLIP's kit file plus environment overrides
 * (see config.h for the contract).
 *
 * The file is read whole (at most 1 MiB) into one buffer and split in place into
 * KEY/value pairs. Then each entry of config_keys[] is looked up (the process
 * environment first, then the file; the last occurrence in the file wins, as in a
 * shell), checked according to its kind and stored at its field's offset: a new key
 * is one line in the table and one field in config.h. An empty value counts as
 * unset, in the environment as in the file, so the default applies.
 *
 * Secrets never appear in a message: a bad secret is described by its problem and
 * length only, and a malformed line by its number only (it may hold a secret).
 * The file buffer and the secret fields are wiped before they are freed.
 */
#include "lib/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "lib/b64.h"
#include "lib/log.h"
#include "lib/task.h"

#define CONFIG_DEFAULT_PATH "/etc/flip/flip.env"
#define CONFIG_MAX_FILE (1024 * 1024)
#define CONFIG_ECHO "%.64s" /* how much of a bad (non-secret) value a message repeats */

enum config_kind {
	CK_STR,	     /* text without control characters */
	CK_SECRET,   /* text, never repeated in a message */
	CK_HOST,     /* host name, address or socket directory: no white space */
	CK_NAME,     /* 1..64 of [A-Za-z0-9._-], not . or ..: becomes a path component */
	CK_INT,	     /* int field, min..max */
	CK_LONG,     /* long field, min..max */
	CK_LLONG,    /* long long field, min..max */
	CK_BOOL,     /* true/false/yes/no/1/0, any case */
	CK_URL,	     /* https:// (or http://) URL, one trailing '/' removed */
	CK_PATH,     /* absolute path without a ".." component, trailing '/' removed */
	CK_KITPATH,  /* CK_PATH, or relative in the file: resolved against the file's folder */
	CK_HEADER,   /* HTTP header name (RFC 9110 token) */
	CK_CHOICE,   /* one of choices[] */
	CK_AES,	     /* base64 of exactly 32 bytes; also fills aes_key/have_aes_key */
	CK_HOLD,     /* comma-separated task types */
	CK_AETITLE,  /* DICOM AE title: 1..16 printable ASCII, no backslash */
	CK_UUID,     /* UUID, stored in lower case */
	CK_LOGLEVEL, /* log_level_parse() name, int field */
};

struct config_key {
	const char *names[4]; /* the name to use first, then aliases; NULL-terminated */
	enum config_kind kind;
	size_t off;	 /* field in struct config */
	const char *def; /* default text, run through the same checks; NULL = none */
	long long min, max;
	const char *const *choices;
};

static const char *const config_sslmodes[] = {"disable", "allow", "prefer", "require",
					      "verify-ca", "verify-full", NULL};
static const char *const config_imaging[] = {"native", "xnat", NULL};
static const char *const config_retrieve[] = {"get", "move", NULL};
static const char *const config_fl[] = {"nvflare", "flower", NULL};

#define F(field) offsetof(struct config, field)
#define PORT 1, 65535

/* Every key of docs/design/operations.md, with its default. */
static const struct config_key config_keys[] = {
	{{"CENTRAL_HUB_API_URL"}, CK_URL, F(hub_url), NULL, 0, 0, NULL},
	{{"TRUST_API_KEY"}, CK_SECRET, F(api_key), NULL, 0, 0, NULL},
	{{"TRUST_API_KEY_HEADER"}, CK_HEADER, F(api_key_header), NULL, 0, 0, NULL},
	{{"AES_KEY_BASE64"}, CK_AES, F(aes_key_b64), NULL, 0, 0, NULL},
	{{"EXPECTED_TRUST_ID"}, CK_UUID, F(expected_trust_id), NULL, 0, 0, NULL},
	{{"POLL_INTERVAL_SECONDS"}, CK_INT, F(poll_interval), "5", 1, 3600, NULL},
	{{"FLIP_CA_BUNDLE"}, CK_PATH, F(ca_bundle), NULL, 0, 0, NULL},
	/* hospitals often allow outbound HTTPS only through a proxy: honour the kit file's */
	{{"https_proxy", "HTTPS_PROXY"}, CK_SECRET, F(https_proxy), NULL, 0, 0, NULL},
	{{"no_proxy", "NO_PROXY"}, CK_STR, F(no_proxy), NULL, 0, 0, NULL},
	{{"FLIP_HOLD_TASK_TYPES"}, CK_HOLD, F(hold_task_types), NULL, 0, 0, NULL},
	{{"TRUST_INTERNAL_SERVICE_KEY"}, CK_SECRET, F(internal_key), NULL, 0, 0, NULL},
	{{"TRUST_INTERNAL_SERVICE_KEY_HEADER"}, CK_HEADER, F(internal_key_header),
	 "X-Trust-Internal-Service-Key", 0, 0, NULL},
	{{"OMOP_DB_HOST", "OMOP_DB_SERVICE_NAME"}, CK_HOST, F(omop_host), NULL, 0, 0, NULL},
	{{"OMOP_DB_PORT"}, CK_INT, F(omop_port), "5432", PORT, NULL},
	{{"OMOP_POSTGRES_DB"}, CK_STR, F(omop_db), NULL, 0, 0, NULL},
	{{"DATA_ACCESS_POSTGRES_USER"}, CK_STR, F(omop_user), NULL, 0, 0, NULL},
	{{"DATA_ACCESS_POSTGRES_PASSWORD"}, CK_SECRET, F(omop_password), NULL, 0, 0, NULL},
	{{"OMOP_DB_SSLMODE"}, CK_CHOICE, F(omop_sslmode), NULL, 0, 0, config_sslmodes},
	{{"COHORT_QUERY_THRESHOLD"}, CK_LONG, F(cohort_threshold), "10", 1, LONG_MAX, NULL},
	/* statement_timeout is an int of milliseconds */
	{{"COHORT_QUERY_TIMEOUT_SECONDS"}, CK_LONG, F(cohort_timeout), "300", 1, INT_MAX / 1000,
	 NULL},
	{{"ACCESS_POLICY_FILE"}, CK_PATH, F(access_policy_file), NULL, 0, 0, NULL},
	{{"SNAPSHOT_MAX_BYTES"}, CK_LLONG, F(snapshot_max_bytes), "2147483648", 1, LLONG_MAX,
	 NULL},
	{{"IMAGING_BACKEND"}, CK_CHOICE, F(imaging_backend), "native", 0, 0, config_imaging},
	{{"PACS_HOST"}, CK_HOST, F(pacs_host), NULL, 0, 0, NULL},
	{{"PACS_DICOM_PORT"}, CK_INT, F(pacs_port), "4242", PORT, NULL},
	{{"PACS_AETITLE"}, CK_AETITLE, F(pacs_aetitle), "ORTHANC", 0, 0, NULL},
	{{"FLIP_AETITLE"}, CK_AETITLE, F(flip_aetitle), "FLIPNODE", 0, 0, NULL},
	{{"PACS_RETRIEVE"}, CK_CHOICE, F(pacs_retrieve), "get", 0, 0, config_retrieve},
	{{"FLIP_DICOM_PORT"}, CK_INT, F(flip_dicom_port), "11112", PORT, NULL},
	{{"REIMPORT_STUDIES_ENABLED"}, CK_BOOL, F(reimport_enabled), "true", 0, 0, NULL},
	{{"DEID_ALLOW_BURNED_IN"}, CK_BOOL, F(deid_allow_burned_in), "false", 0, 0, NULL},
	{{"BASE_IMAGES_DOWNLOAD_DIR"}, CK_KITPATH, F(images_dir), "/opt/flip/data/images", 0, 0,
	 NULL},
	/* hours are multiplied into seconds: keep it to a century */
	{{"IMAGE_CACHE_RETENTION_HOURS"}, CK_LONG, F(image_retention_hours), "168", 1, 876000,
	 NULL},
	{{"FL_KIT_DIR"}, CK_KITPATH, F(fl_kit_dir), "/opt/flip/fl-kit", 0, 0, NULL},
	{{"FL_KIT_SLOT"}, CK_NAME, F(fl_kit_slot), NULL, 0, 0, NULL},
	{{"FL_KIT_REQUIRE_SIGNATURE"}, CK_BOOL, F(fl_kit_require_signature), "false", 0, 0, NULL},
	{{"FL_KIT_ROOT_CA_SHA256"}, CK_STR, F(fl_kit_root_ca_sha256), NULL, 0, 0, NULL},
	{{"FL_BACKEND"}, CK_CHOICE, F(fl_backend), "nvflare", 0, 0, config_fl},
	{{"FL_CLIENT_COMMAND"}, CK_STR, F(fl_client_command), NULL, 0, 0, NULL},
	/* the FL client's own system user: training code never runs as the node's user */
	{{"FL_CLIENT_USER"}, CK_NAME, F(fl_client_user), "flip-fl", 0, 0, NULL},
	{{"FL_SERVER_PORT"}, CK_INT, F(fl_server_port), "8002", PORT, NULL},
	{{"NLB_SUBDOMAIN"}, CK_HOST, F(nlb_subdomain), NULL, 0, 0, NULL},
	{{"NUM_AVAILABLE_GPUS"}, CK_INT, F(num_gpus), "1", 0, 1024, NULL},
	{{"MEMORY_PER_GPU_IN_GIB"}, CK_INT, F(memory_per_gpu_gib), "16", 0, 65536, NULL},
	{{"FLIP_SPOOL_DIR"}, CK_PATH, F(spool_dir), "/var/spool/flip", 0, 0, NULL},
	{{"FLIP_STATE_DIR"}, CK_PATH, F(state_dir), "/var/lib/flip", 0, 0, NULL},
	{{"FLIP_LOG_DIR"}, CK_PATH, F(log_dir), "/var/log/flip", 0, 0, NULL},
	{{"FLIP_LOG_LEVEL", "TRUST_LOG_LEVEL", "LOG_LEVEL"}, CK_LOGLEVEL, F(log_level), "info",
	 0, 0, NULL},
	{{"FLIP_DONE_RETENTION_DAYS"}, CK_LONG, F(done_retention_days), "30", 0, 36500, NULL},
	{{"FLIP_TRANSIENT_GIVE_UP_SECONDS"}, CK_LONG, F(transient_give_up), "600", 1,
	 366L * 86400, NULL},
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/*
 * Keys flip-node knows but that are not fields here: the hub is HTTPS-only, so
 * the http and all proxy variables are left to libcurl's own reading of the
 * environment, and flip-fl renders the FL_SITE_PRIVACY_* keys itself. In the
 * file they get their own debug line.
 */
static const char *const config_elsewhere[] = {
	"HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", NULL,
};
#define CONFIG_PRIVACY_PREFIX "FL_SITE_PRIVACY_"

/* One KEY=value line of the file; key and val point into the file buffer. */
struct config_entry {
	const char *key;
	const char *val;
	int used;
};

struct config_file {
	const char *path; /* "" when no file was read */
	char *buf;
	size_t cap; /* bytes allocated for buf (wiped in full) */
	struct config_entry *ent;
	size_t n;
};

/* Where a value came from, for the message. */
struct config_val {
	const char *name; /* the key name that supplied it */
	const char *text;
	enum { SRC_ENV, SRC_FILE, SRC_DEFAULT } src;
	const char *path;
};

/* config_default_path - the file config_load(cfg, NULL, ...) reads */
const char *config_default_path(void)
{
	const char *p = getenv("FLIP_ENV_FILE");

	return p != NULL && *p != 0 ? p : CONFIG_DEFAULT_PATH;
}

/* config_err - format a message into err, return -1 */
static int config_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int config_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* config_bad - "KEY in FILE: problem", return -1 */
static int config_bad(char *err, size_t errlen, const struct config_val *v, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));
static int config_bad(char *err, size_t errlen, const struct config_val *v, const char *fmt,
		      ...)
{
	char problem[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	if (v->src == SRC_FILE)
		return config_err(err, errlen, "%s in %s: %s", v->name, v->path, problem);
	if (v->src == SRC_ENV)
		return config_err(err, errlen, "%s in the environment: %s", v->name, problem);
	return config_err(err, errlen, "%s (built-in default): %s", v->name, problem);
}

/* config_key_ok - [A-Za-z_][A-Za-z0-9_]* */
static int config_key_ok(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return 0;
	for (s++; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return 0;
	return 1;
}

/* config_blank - space or tab */
static int config_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* config_parse_line - split one line in place; 0 = entry, 1 = nothing, -1 = bad */
static int config_parse_line(char *s, const char **key, const char **val, const char **why)
{
	char *eq, *end, *v;

	end = s + strlen(s);
	while (end > s && (config_blank(end[-1]) || end[-1] == '\r'))
		*--end = 0;
	while (config_blank(*s))
		s++;
	if (*s == 0 || *s == '#')
		return 1;
	if (strncmp(s, "export", 6) == 0 && config_blank(s[6]))
		for (s += 6; config_blank(*s); s++)
			;
	eq = strchr(s, '=');
	if (eq == NULL) {
		*why = "expected KEY=value";
		return -1;
	}
	for (end = eq; end > s && config_blank(end[-1]); end--)
		;
	*end = 0;
	if (!config_key_ok(s)) {
		*why = "the key must be letters, digits and _, not starting with a digit";
		return -1;
	}
	*key = s;
	for (v = eq + 1; config_blank(*v); v++)
		;
	if (*v == '"' || *v == '\'') {
		char *close = strchr(v + 1, *v), *rest;

		if (close == NULL) {
			*why = "unterminated quote";
			return -1;
		}
		for (rest = close + 1; config_blank(*rest); rest++)
			;
		if (*rest != 0 && *rest != '#') {
			*why = "text after the closing quote";
			return -1;
		}
		*close = 0;
		*val = v + 1;
		return 0;
	}
	/* unquoted: " #" starts a comment, as in docker compose and python-dotenv */
	for (end = v; *end; end++)
		if (*end == '#' && end > v && config_blank(end[-1]))
			break;
	while (end > v && config_blank(end[-1]))
		end--;
	*end = 0;
	*val = v;
	return 0;
}

/* config_parse - split the file buffer into entries */
static int config_parse(struct config_file *f, size_t len, char *err, size_t errlen)
{
	char *p = f->buf, *nl;
	size_t lines = 1;
	int lineno = 0;

	if (memchr(f->buf, 0, len) != NULL)
		return config_err(err, errlen, "%s: contains a NUL byte; not a kit file", f->path);
	for (size_t i = 0; i < len; i++)
		lines += f->buf[i] == '\n';
	f->ent = calloc(lines, sizeof(*f->ent));
	if (f->ent == NULL)
		return config_err(err, errlen, "%s: out of memory", f->path);
	for (; p != NULL && *p; p = nl) {
		const char *key = NULL, *val = NULL, *why = NULL;
		int rc;

		nl = strchr(p, '\n');
		if (nl != NULL)
			*nl++ = 0;
		lineno++;
		rc = config_parse_line(p, &key, &val, &why);
		if (rc < 0)
			return config_err(err, errlen, "%s: line %d: %s", f->path, lineno, why);
		if (rc > 0)
			continue;
		f->ent[f->n].key = key;
		f->ent[f->n].val = val;
		f->n++;
	}
	return 0;
}

/* config_mode_problem - what a too-open mode allows, NULL when it is fine */
static const char *config_mode_problem(mode_t mode)
{
	if ((mode & 0027) == 0)
		return NULL;
	if (mode & 0004)
		return "lets other users read secrets";
	if (mode & 0022)
		return "lets other users change it";
	return "is open to other users";
}

/* config_read - open, check and read the kit file; 1 when the default is absent */
static int config_read(struct config_file *f, int explicit_path, char *err, size_t errlen)
{
	struct stat st;
	const char *problem;
	size_t len = 0;
	int fd, rc = -1;

	/* O_NONBLOCK: opening a FIFO must not hang; it is refused below */
	fd = open(f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT && !explicit_path)
			return 1;
		if (errno == ELOOP)
			return config_err(err, errlen,
					  "%s: is a symbolic link; name the file itself (it is "
					  "opened without following links)",
					  f->path);
		return config_err(err, errlen, "%s: cannot open: %s", f->path, strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		config_err(err, errlen, "%s: cannot stat: %s", f->path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		config_err(err, errlen, "%s: not a regular file", f->path);
		goto out;
	}
	problem = config_mode_problem(st.st_mode);
	if (problem != NULL) {
		config_err(err, errlen,
			   "%s: mode %04o %s; run: chmod 640 %s (owner root, group flip) or chmod 600",
			   f->path, (unsigned)(st.st_mode & 07777), problem, f->path);
		goto out;
	}
	if (st.st_size > CONFIG_MAX_FILE) {
		config_err(err, errlen, "%s: larger than 1 MiB; not a kit file", f->path);
		goto out;
	}
	f->cap = CONFIG_MAX_FILE + 2;
	f->buf = malloc(f->cap);
	if (f->buf == NULL) {
		config_err(err, errlen, "%s: out of memory", f->path);
		goto out;
	}
	/* read to EOF (the file may have grown since fstat), one byte past the cap */
	while (len <= CONFIG_MAX_FILE) {
		ssize_t r = read(fd, f->buf + len, CONFIG_MAX_FILE + 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			config_err(err, errlen, "%s: cannot read: %s", f->path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > CONFIG_MAX_FILE) {
		config_err(err, errlen, "%s: larger than 1 MiB; not a kit file", f->path);
		goto out;
	}
	f->buf[len] = 0;
	rc = config_parse(f, len, err, errlen);
out:
	close(fd);
	return rc;
}

/* config_file_find - the last non-empty value of name in the file, marking it used */
static const struct config_entry *config_file_find(struct config_file *f, const char *name)
{
	const struct config_entry *found = NULL;

	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->ent[i].key, name) != 0)
			continue;
		f->ent[i].used = 1;
		if (f->ent[i].val[0] != 0)
			found = &f->ent[i];
	}
	return found;
}

/* config_lookup - the value of a key: environment, then file, then default; 0 = none */
static int config_lookup(const struct config_key *k, struct config_file *f,
			 struct config_val *v)
{
	const struct config_entry *e = NULL;
	size_t i;

	v->path = f->path;
	for (i = 0; i < 4 && k->names[i] != NULL; i++) {
		const char *env = getenv(k->names[i]);

		if (env != NULL && *env != 0 && v->text == NULL) {
			v->name = k->names[i];
			v->text = env;
			v->src = SRC_ENV;
		}
	}
	/* look every name up even when found, so that all of them count as used */
	for (i = 0; i < 4 && k->names[i] != NULL; i++) {
		const struct config_entry *x = config_file_find(f, k->names[i]);

		if (x != NULL && e == NULL) {
			e = x;
			if (v->text == NULL) {
				v->name = k->names[i];
				v->text = x->val;
				v->src = SRC_FILE;
			}
		}
	}
	if (v->text == NULL && k->def != NULL) {
		v->name = k->names[0];
		v->text = k->def;
		v->src = SRC_DEFAULT;
	}
	return v->text != NULL;
}

/* config_int - strict decimal integer in min..max */
static int config_int(const struct config_key *k, const struct config_val *v, long long *out,
		      char *err, size_t errlen)
{
	const char *s = v->text, *p = s;
	long long type_max = k->kind == CK_INT ? INT_MAX : k->kind == CK_LONG ? LONG_MAX : LLONG_MAX;
	char *end;

	if (*p == '-')
		p++;
	for (; *p; p++)
		if (!isdigit((unsigned char)*p))
			break;
	errno = 0;
	if (*p == 0 && p > s && isdigit((unsigned char)p[-1])) {
		*out = strtoll(s, &end, 10);
		if (errno == 0 && *end == 0 && *out >= k->min && *out <= k->max)
			return 0;
	}
	if (k->max == type_max)
		return config_bad(err, errlen, v, "must be a %s integer, got '" CONFIG_ECHO "'",
				  k->min > 0 ? "positive" : "non-negative", s);
	return config_bad(err, errlen, v, "must be an integer from %lld to %lld, got '" CONFIG_ECHO "'",
			  k->min, k->max, s);
}

/* config_bool - true/false/yes/no/1/0 in any case */
static int config_bool(const struct config_val *v, bool *out, char *err, size_t errlen)
{
	static const char *const yes[] = {"true", "yes", "1"}, *const no[] = {"false", "no", "0"};

	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(v->text, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v->text, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return config_bad(err, errlen, v, "must be true or false (or yes/no, 1/0), got '" CONFIG_ECHO "'",
			  v->text);
}

/* config_hold_name - the n bytes at s name a known task type */
static int config_hold_name(const char *s, size_t n)
{
	char name[32];

	if (n == 0 || n >= sizeof(name))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
			return 0;
	memcpy(name, s, n);
	name[n] = 0;
	return task_type_known(name);
}

/* config_hold - comma-separated known task types, stored as "a,b" (NULL when none) */
static int config_hold(const struct config_val *v, char **out, char *err, size_t errlen)
{
	const char *p = v->text;
	char *norm = malloc(strlen(p) + 1), *w = norm;

	if (norm == NULL)
		return config_bad(err, errlen, v, "out of memory");
	for (;;) {
		size_t n;

		p += strspn(p, " ,");
		if (*p == 0)
			break;
		n = strcspn(p, " ,");
		if (!config_hold_name(p, n)) {
			free(norm);
			return config_bad(err, errlen, v,
					  "unknown task type '%.*s' (known: cohort_query "
					  "persist_cohort create_imaging delete_imaging "
					  "get_imaging_status reimport_studies update_user_profile)",
					  (int)(n > 64 ? 64 : n), p);
		}
		if (w != norm)
			*w++ = ',';
		memcpy(w, p, n);
		w += n;
		p += n;
	}
	*w = 0;
	if (w == norm) {
		free(norm);
		norm = NULL;
	}
	*out = norm;
	return 0;
}

/* config_aes - decode the AES key into cfg */
static int config_aes(struct config *cfg, const struct config_val *v, char *err, size_t errlen)
{
	unsigned char *key = NULL;
	size_t len = 0;

	if (b64_decode(v->text, strlen(v->text), &key, &len) < 0)
		return config_bad(err, errlen, v,
				  "not valid base64 (%zu characters; generate a key with: openssl "
				  "rand -base64 32)",
				  strlen(v->text));
	if (len != CONFIG_AES_KEY_LEN) {
		OPENSSL_cleanse(key, len);
		free(key);
		return config_bad(err, errlen, v,
				  "decodes to %zu bytes, need exactly %d (generate one with: "
				  "openssl rand -base64 32)",
				  len, CONFIG_AES_KEY_LEN);
	}
	memcpy(cfg->aes_key, key, CONFIG_AES_KEY_LEN);
	cfg->have_aes_key = true;
	OPENSSL_cleanse(key, len);
	free(key);
	return 0;
}

/* config_header_ok - an RFC 9110 token */
static int config_header_ok(const char *s)
{
	if (*s == 0)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return 0;
	return 1;
}

/* config_path_ok - absolute, no ".." component */
static int config_path_ok(const char *s)
{
	if (*s != '/')
		return 0;
	for (const char *p = s; (p = strstr(p, "..")) != NULL; p += 2)
		if (p[-1] == '/' && (p[2] == '/' || p[2] == 0))
			return 0;
	return 1;
}

/* config_name_ok - [A-Za-z0-9._-]{1,64}, not . or .. */
static int config_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* config_aetitle_ok - 1..16 printable ASCII, no backslash */
static int config_aetitle_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 16)
		return 0;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '\\')
			return 0;
	return 1;
}

/* config_text - a checked string value into a malloc'd copy (NULL on error) */
static char *config_text(const struct config_key *k, const struct config_val *v, char *err,
			 size_t errlen)
{
	char uuid[37], *s;
	const char *host;
	size_t n;

	switch (k->kind) {
	case CK_URL:
		if (strncmp(v->text, "https://", 8) != 0 && strncmp(v->text, "http://", 7) != 0) {
			config_bad(err, errlen, v,
				   "must start with https:// (or http:// for a test hub), got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		host = v->text + (v->text[4] == 's' ? 8 : 7);
		if (strpbrk(v->text, " \t") != NULL || *host == 0 || *host == '/') {
			config_bad(err, errlen, v, "not a URL with a host, got '" CONFIG_ECHO "'", v->text);
			return NULL;
		}
		break;
	case CK_KITPATH:
		/*
		 * FLIP's docker kits write these relative to the compose folder
		 * (BASE_IMAGES_DOWNLOAD_DIR=./data/trust). A kit copied as it is must still
		 * work, so a relative path from the file means "beside the kit file".
		 */
		if (v->text[0] != '/' && v->src == SRC_FILE && v->path && v->path[0] == '/') {
			const char *rel = strncmp(v->text, "./", 2) == 0 ? v->text + 2 : v->text;
			int dirlen = (int)(strrchr(v->path, '/') - v->path);
			char *abs = NULL;
			if (asprintf(&abs, "%.*s/%s", dirlen, v->path, rel) < 0) {
				config_bad(err, errlen, v, "out of memory");
				return NULL;
			}
			if (!config_path_ok(abs)) {
				free(abs);
				config_bad(err, errlen, v,
					   "must be a path without a '..' component, got '" CONFIG_ECHO "'",
					   v->text);
				return NULL;
			}
			log_debug("%s is relative in %s; using %s", v->name, v->path, abs);
			n = strlen(abs);
			if (n > 1 && abs[n - 1] == '/')
				abs[n - 1] = 0;
			return abs;
		}
		/* fall through */
	case CK_PATH:
		if (!config_path_ok(v->text)) {
			config_bad(err, errlen, v,
				   "must be an absolute path without a '..' component, got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		break;
	case CK_HEADER:
		if (!config_header_ok(v->text)) {
			config_bad(err, errlen, v,
				   "not a valid HTTP header name (letters, digits and !#$%%&'*+-.^_`|~), got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		break;
	case CK_HOST:
		if (strpbrk(v->text, " \t") != NULL) {
			config_bad(err, errlen, v, "must not contain white space, got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		break;
	case CK_NAME:
		if (!config_name_ok(v->text)) {
			config_bad(err, errlen, v,
				   "must be 1 to 64 of letters, digits, '.', '_' and '-', got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		break;
	case CK_AETITLE:
		if (!config_aetitle_ok(v->text)) {
			config_bad(err, errlen, v,
				   "must be 1 to 16 printable ASCII characters without '\\', got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		break;
	case CK_UUID:
		if (task_uuid_canonical(v->text, uuid) < 0) {
			config_bad(err, errlen, v, "must be a UUID (the trust's id on the hub), got '" CONFIG_ECHO "'",
				   v->text);
			return NULL;
		}
		return strdup(uuid);
	case CK_CHOICE:
		for (const char *const *c = k->choices; *c != NULL; c++)
			if (strcmp(*c, v->text) == 0)
				return strdup(v->text);
		{
			char list[128] = "";

			for (const char *const *c = k->choices; *c != NULL; c++) {
				strncat(list, *c, sizeof(list) - strlen(list) - 1);
				if (c[1] != NULL)
					strncat(list, c[2] == NULL ? " or " : ", ",
						sizeof(list) - strlen(list) - 1);
			}
			config_bad(err, errlen, v, "must be %s, got '" CONFIG_ECHO "'", list, v->text);
		}
		return NULL;
	default:
		break;
	}
	s = strdup(v->text);
	if (s == NULL) {
		config_bad(err, errlen, v, "out of memory");
		return NULL;
	}
	n = strlen(s);
	/* URLs lose one trailing slash, paths all of them but the root's */
	if (k->kind == CK_URL && s[n - 1] == '/')
		s[n - 1] = 0;
	if (k->kind == CK_PATH || k->kind == CK_KITPATH)
		while (n > 1 && s[n - 1] == '/')
			s[--n] = 0;
	return s;
}

/* config_control - the value holds a control character */
static int config_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* config_set - check one value and store it in its field */
static int config_set(struct config *cfg, const struct config_key *k, const struct config_val *v,
		      char *err, size_t errlen)
{
	void *field = (char *)cfg + k->off;
	long long n = 0;
	int level;

	if (config_control(v->text)) {
		if (k->kind == CK_SECRET || k->kind == CK_AES)
			return config_bad(err, errlen, v, "contains a control character (%zu characters)",
					  strlen(v->text));
		return config_bad(err, errlen, v, "contains a control character");
	}
	switch (k->kind) {
	case CK_INT:
	case CK_LONG:
	case CK_LLONG:
		if (config_int(k, v, &n, err, errlen) < 0)
			return -1;
		if (k->kind == CK_INT)
			*(int *)field = (int)n;
		else if (k->kind == CK_LONG)
			*(long *)field = (long)n;
		else
			*(long long *)field = n;
		return 0;
	case CK_BOOL:
		return config_bool(v, (bool *)field, err, errlen);
	case CK_LOGLEVEL:
		level = log_level_parse(v->text);
		if (level < 0)
			return config_bad(err, errlen, v,
					  "must be debug, info, warning, error or critical, got '" CONFIG_ECHO "'",
					  v->text);
		*(int *)field = level;
		return 0;
	case CK_HOLD:
		return config_hold(v, (char **)field, err, errlen);
	case CK_AES:
		if (config_aes(cfg, v, err, errlen) < 0)
			return -1;
		break;
	default:
		break;
	}
	*(char **)field = config_text(k, v, err, errlen);
	return *(char **)field != NULL ? 0 : -1;
}

/* config_elsewhere_key - a proxy key, which libcurl takes from the environment */
static int config_elsewhere_key(const char *key)
{
	for (const char *const *p = config_elsewhere; *p != NULL; p++)
		if (strcmp(*p, key) == 0)
			return 1;
	return 0;
}

/* config_log_ignored - one debug line per distinct file key nobody reads here */
static void config_log_ignored(const struct config_file *f)
{
	for (size_t i = 0; i < f->n; i++) {
		const char *key = f->ent[i].key;
		size_t j;

		if (f->ent[i].used)
			continue;
		for (j = i + 1; j < f->n; j++)
			if (strcmp(f->ent[j].key, key) == 0)
				break;
		if (j < f->n)
			continue; /* logged at its last occurrence */
		if (strncmp(key, CONFIG_PRIVACY_PREFIX, strlen(CONFIG_PRIVACY_PREFIX)) == 0)
			continue;	/* kept in cfg->fl_privacy for flip-fl */
		else if (config_elsewhere_key(key))
			log_debug("%s in %s has no effect: libcurl reads it from the process "
				  "environment only",
				  key, f->path);
		else
			log_debug("ignoring %s (used only by FLIP's containers)", key);
	}
}

/* config_privacy_value - a privacy key's value: printable text, stored as given */
static int config_privacy_value(json_t *out, const char *key, const char *val, const char *src,
				char *err, size_t errlen)
{
	if (*val == 0) {
		json_object_del(out, key);	/* empty is unset, as for every key */
		return 0;
	}
	for (const char *p = val; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return config_err(err, errlen, "%s in %s: control character in the value", key,
					  src);
	json_t *v = json_string(val);
	if (v == NULL)
		return config_err(err, errlen, "a FL_SITE_PRIVACY_ key in %s: the value is not UTF-8",
				  src);
	if (json_object_set_new(out, key, v) < 0)
		return config_err(err, errlen, "a FL_SITE_PRIVACY_ key in %s: the name is not UTF-8",
				  src);
	return 0;
}

extern char **environ;

/*
 * config_privacy - FL_SITE_PRIVACY_* from the file, then the environment: the set of
 * keys is open (FL_SITE_PRIVACY_SVT_*), and flip-fl's privacy module is the one that
 * knows which belong to which preset, so config keeps them as text.
 */
static int config_privacy(struct config *cfg, const struct config_file *f, char *err,
			  size_t errlen)
{
	size_t plen = strlen(CONFIG_PRIVACY_PREFIX);

	cfg->fl_privacy = json_object();
	if (cfg->fl_privacy == NULL)
		return config_err(err, errlen, "out of memory");
	for (size_t i = 0; i < f->n; i++) {
		if (strncmp(f->ent[i].key, CONFIG_PRIVACY_PREFIX, plen) != 0)
			continue;
		if (config_privacy_value(cfg->fl_privacy, f->ent[i].key, f->ent[i].val, f->path, err,
					 errlen) < 0)
			return -1;
	}
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		char key[128];

		if (eq == NULL || strncmp(*e, CONFIG_PRIVACY_PREFIX, plen) != 0 ||
		    (size_t)(eq - *e) >= sizeof(key))
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)(eq - *e), *e);
		if (config_privacy_value(cfg->fl_privacy, key, eq + 1, "the environment", err,
					 errlen) < 0)
			return -1;
	}
	return 0;
}

/* config_load - read, check and store the whole configuration */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct config_file f = {0};
	int explicit_path = 1, rc = -1, r;

	memset(cfg, 0, sizeof(*cfg));
	if (err != NULL && errlen > 0)
		err[0] = 0;
	if (path == NULL || *path == 0) {
		path = getenv("FLIP_ENV_FILE");
		if (path == NULL || *path == 0) {
			path = CONFIG_DEFAULT_PATH;
			explicit_path = 0;
		}
	}
	f.path = path;
	r = config_read(&f, explicit_path, err, errlen);
	if (r < 0)
		goto out;
	if (r > 0)
		f.path = ""; /* no default file: the environment alone */
	cfg->path = strdup(f.path);
	if (cfg->path == NULL) {
		config_err(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		struct config_val v = {0};

		if (config_lookup(&config_keys[i], &f, &v) &&
		    config_set(cfg, &config_keys[i], &v, err, errlen) < 0)
			goto out;
	}
	if (config_privacy(cfg, &f, err, errlen) < 0)
		goto out;
	/* the level is known now: the debug lines below honour it */
	log_set_level(cfg->log_level);
	config_log_ignored(&f);
	rc = 0;
out:
	if (f.buf != NULL) {
		OPENSSL_cleanse(f.buf, f.cap);
		free(f.buf);
	}
	free(f.ent);
	if (rc < 0)
		config_free(cfg);
	return rc;
}

/* config_free - wipe the secrets and free every string */
void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		char **field = (char **)((char *)cfg + k->off);

		switch (k->kind) {
		case CK_INT:
		case CK_LONG:
		case CK_LLONG:
		case CK_BOOL:
		case CK_LOGLEVEL:
			continue;
		default:
			break;
		}
		if (*field != NULL && (k->kind == CK_SECRET || k->kind == CK_AES))
			OPENSSL_cleanse(*field, strlen(*field));
		free(*field);
		*field = NULL;
	}
	free(cfg->path);
	json_decref(cfg->fl_privacy);
	OPENSSL_cleanse(cfg->aes_key, sizeof(cfg->aes_key));
	memset(cfg, 0, sizeof(*cfg));
}

/* config_require_hub - the hub keys are present */
int config_require_hub(const struct config *cfg, char *err, size_t errlen)
{
	const char *missing = NULL;

	if (cfg->hub_url == NULL)
		missing = "CENTRAL_HUB_API_URL";
	else if (cfg->api_key == NULL)
		missing = "TRUST_API_KEY";
	else if (cfg->api_key_header == NULL)
		missing = "TRUST_API_KEY_HEADER";
	else if (!cfg->have_aes_key)
		missing = "AES_KEY_BASE64";
	if (missing == NULL)
		return 0;
	if (cfg->path == NULL || cfg->path[0] == 0)
		return config_err(err, errlen,
				  "%s is not set: no config file at %s and not in the environment",
				  missing, CONFIG_DEFAULT_PATH);
	return config_err(err, errlen, "%s is not set in %s (nor in the environment)", missing,
			  cfg->path);
}

/* config_hold_type - task_type is listed in FLIP_HOLD_TASK_TYPES */
bool config_hold_type(const struct config *cfg, const char *task_type)
{
	const char *p = cfg->hold_task_types;
	size_t n;

	if (p == NULL || task_type == NULL)
		return false;
	n = strlen(task_type);
	while (*p) {
		size_t len = strcspn(p, ",");

		if (len == n && strncmp(p, task_type, n) == 0)
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

/*
 * Free text (CK_STR) that config_public() may show. FL_CLIENT_COMMAND is not here:
 * it is a command line, and a vendor client may take a password as an argument.
 */
static const char *const config_public_text[] = {"no_proxy", "OMOP_POSTGRES_DB",
						 "DATA_ACCESS_POSTGRES_USER", NULL};

/* config_secret_name - a key name that says it holds a secret (checked on top of the kind) */
static int config_secret_name(const char *name)
{
	static const char *const words[] = {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL",
					    "PRIVATE", "APIKEY", NULL};
	char up[128];
	size_t n = strlen(name);

	if (n >= sizeof(up))
		return 1;
	for (size_t i = 0; i <= n; i++)
		up[i] = (char)toupper((unsigned char)name[i]);
	for (const char *const *w = words; *w != NULL; w++)
		if (strstr(up, *w) != NULL)
			return 1;
	if (n >= 4 && strcmp(up + n - 4, "_KEY") == 0)
		return 1;
	/* TRUST_API_KEY_HEADER names a header; AES_KEY_BASE64 is a key */
	return strstr(up, "_KEY_") != NULL && !(n >= 7 && strcmp(up + n - 7, "_HEADER") == 0);
}

/* config_public_redacted - {"redacted": true, "set": set} (and what may be shown) */
static json_t *config_public_redacted(int set, const char *shown)
{
	json_t *v = json_pack("{s:b,s:b}", "redacted", 1, "set", set);

	if (v != NULL && shown != NULL)
		json_object_set_new(v, "shown", json_string(shown));
	return v;
}

/*
 * config_public_url - a URL without user:password@, query or fragment (authority_only:
 * scheme://host:port alone); NULL when out of memory. curl takes a proxy without a
 * scheme too, so the authority starts at the text's start when there is no "://".
 */
static char *config_public_url(const char *url, int authority_only)
{
	const char *scheme = strstr(url, "://"), *start = scheme ? scheme + 3 : url;
	const char *end = start + strcspn(start, "/?#"), *host = start, *stop;
	char *out = NULL;

	for (const char *p = start; p < end; p++)
		if (*p == '@')
			host = p + 1;
	stop = authority_only ? end : end + strcspn(end, "?#");
	if (asprintf(&out, "%.*s%.*s", (int)(start - url), url, (int)(stop - host), host) < 0)
		return NULL;
	return out;
}

/* config_public_string - s as a JSON string, or a note when it is not UTF-8 */
static json_t *config_public_string(const char *s)
{
	json_t *v;

	if (s == NULL)
		return json_null();
	v = json_string(s);
	return v != NULL ? v : json_string("(not UTF-8)");
}

/* config_public_value - one key's value as config_public() shows it */
static json_t *config_public_value(const struct config *cfg, const struct config_key *k)
{
	const void *field = (const char *)cfg + k->off;
	const char *s = NULL;
	char *clean;
	json_t *v;

	switch (k->kind) {
	case CK_INT:
		return json_integer(*(const int *)field);
	case CK_LONG:
		return json_integer(*(const long *)field);
	case CK_LLONG:
		return json_integer(*(const long long *)field);
	case CK_BOOL:
		return json_boolean(*(const bool *)field);
	case CK_LOGLEVEL: {
		int l = *(const int *)field;
		return json_string(l >= LOG_DEBUG ? "debug" : l >= LOG_INFO ? "info"
						: l >= LOG_WARN ? "warning" : "error");
	}
	default:
		s = *(char *const *)field;
		break;
	}
	if (config_secret_name(k->names[0]))
		return config_public_redacted(s != NULL, NULL);
	switch (k->kind) {
	case CK_HOST:
	case CK_NAME:
	case CK_PATH:
	case CK_KITPATH:
	case CK_HEADER:
	case CK_CHOICE:
	case CK_HOLD:
	case CK_AETITLE:
	case CK_UUID:
		return config_public_string(s);
	case CK_URL:
		if (s == NULL)
			return json_null();
		clean = config_public_url(s, 0);
		v = clean != NULL ? config_public_string(clean) : config_public_redacted(1, NULL);
		free(clean);
		return v;
	case CK_STR:
		for (const char *const *p = config_public_text; *p != NULL; p++)
			if (strcmp(*p, k->names[0]) == 0)
				return config_public_string(s);
		break;
	case CK_SECRET:
		/* the proxy's credentials are its only secret; where it is helps support */
		if (k->off == F(https_proxy) && s != NULL) {
			clean = config_public_url(s, 1);
			v = config_public_redacted(1, clean);
			free(clean);
			return v;
		}
		break;
	default:
		break;
	}
	return config_public_redacted(s != NULL, NULL);
}

/* config_public - the configuration with every secret replaced by whether it is set */
json_t *config_public(const struct config *cfg)
{
	json_t *out = json_object(), *v;
	const char *key;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		json_object_set_new(out, config_keys[i].names[0],
				    config_public_value(cfg, &config_keys[i]));
	json_object_foreach(cfg->fl_privacy, key, v) {
		json_object_set_new(out, key, config_secret_name(key)
						      ? config_public_redacted(1, NULL)
						      : json_copy(v));
	}
	return out;
}
