/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bundle - the support tarball (see bundle.h for the contract).
 *
 * What goes in is chosen, never found: each member is built from a source this file
 * names (the versions, config_public(), status_collect(), the files directly in
 * FLIP_LOG_DIR, the .prom files). Nothing walks the spool, the state folder or the
 * kit, so a payload, a result or a snapshot cannot slip in by being nearby. The
 * scrub of known secret values is the second guard, for the logs above all: a
 * vendor FL client writes its own log into FLIP_LOG_DIR, and its lines are not ours.
 *
 * The tarball is streamed to the temporary file through a write callback that also
 * hashes it, so the audit event can name what left the building by its SHA-256
 * without reading the file back.
 *
 * Refusing to overwrite is the rename's job (RENAME_NOREPLACE is atomic: a file
 * that appears at path while the bundle is written wins, and the bundle is
 * removed). The check before writing only spares the work and gives a clearer
 * message.
 */
#include "bin/flipctl/bundle.h"

#include "lib/audit.h"
#include "lib/digest.h"
#include "lib/durable.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/statedir.h"
#include "bin/flipctl/status.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pg_query.h>

/*
 * dcmtk reports its version only to C++ (dcuid.h); its generated configuration
 * header is plain preprocessor text and names the version it was built as.
 */
#if __has_include(<dcmtk/config/osconfig.h>)
#include <dcmtk/config/osconfig.h>
#define BUNDLE_DCMTK PACKAGE_VERSION " (compiled against)"
#else
#define BUNDLE_DCMTK "unknown"
#endif

#define BUNDLE_OS_RELEASE_MAX (64u << 10)
#define BUNDLE_NSECRETS 16
#define BUNDLE_TOP_MAX 128

/* This node's secret values, to scrub every member with; wiped when done. */
struct bundle_secrets {
	struct bundle_secret s[BUNDLE_NSECRETS];
	size_t n;
	char aes_hex[2 * CONFIG_AES_KEY_LEN + 1];
	unsigned char deid[64];
	size_t deid_len;
	char deid_hex[129];
};

/* One tarball being written. */
struct bundle {
	struct archive *a;
	int fd;
	EVP_MD_CTX *md;
	unsigned long long bytes;
	time_t now;
	char top[BUNDLE_TOP_MAX];	/* the folder every member sits in */
	json_t *members, *skipped;	/* the manifest's rows */
	struct bundle_secrets sec;
	struct bundle_result *res;
	unsigned flags;			/* BUNDLE_WITH_* */
};

/* A file of FLIP_LOG_DIR, for choosing the newest. */
struct bundle_log {
	char name[256];
	time_t mtime;
};

/* bundle_name_ok - 1..255 of [A-Za-z0-9._-], not starting with '.' */
static int bundle_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 256 && s[0] != '.' &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* bundle_hex - lower-case hex of len bytes into out (2 * len + 1) */
static void bundle_hex(const unsigned char *p, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * len] = 0;
}

/* bundle_time - now as RFC 3339 UTC, or (compact) as YYYYMMDDTHHMMSSZ */
static void bundle_time(time_t now, int compact, char *out, size_t outlen)
{
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, outlen, compact ? "%Y%m%dT%H%M%SZ" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* bundle_scrub - replace each secret value by BUNDLE_REDACTED */
int bundle_scrub(char **buf, size_t *len, const struct bundle_secret *s, size_t nsecrets,
		 unsigned *count)
{
	static const char red[] = BUNDLE_REDACTED;
	const size_t rl = sizeof(red) - 1;

	*count = 0;
	for (size_t i = 0; i < nsecrets; i++) {
		const size_t n = s[i].len;
		const char *p, *end = *buf + *len, *from;
		size_t hits = 0, newlen;
		char *out, *w;

		if (s[i].data == NULL || n == 0)
			continue;
		for (p = *buf; (p = memmem(p, (size_t)(end - p), s[i].data, n)) != NULL; p += n)
			hits++;
		if (hits == 0)
			continue;
		newlen = *len - hits * n + hits * rl;
		out = malloc(newlen + 1);
		if (out == NULL)
			return -1;
		for (from = *buf, w = out; (p = memmem(from, (size_t)(end - from), s[i].data, n)) != NULL;
		     from = p + n) {
			memcpy(w, from, (size_t)(p - from));
			w += p - from;
			memcpy(w, red, rl);
			w += rl;
		}
		memcpy(w, from, (size_t)(end - from));
		out[newlen] = 0;
		OPENSSL_cleanse(*buf, *len);
		free(*buf);
		*buf = out;
		*len = newlen;
		*count += (unsigned)hits;
	}
	return 0;
}

/* bundle_tail - the last whole lines of a file, within its last max_bytes */
int bundle_tail(int dirfd, const char *name, size_t max_lines, size_t max_bytes,
		struct bundle_tail *t)
{
	struct stat st;
	unsigned long long size, off, first;
	size_t want, got = 0, lines = 0;
	char *buf, *start, *end;
	int fd, saved;

	memset(t, 0, sizeof(*t));
	if ((fd = durable_open_file(dirfd, name, &st)) < 0)
		return -1;
	size = (unsigned long long)st.st_size;
	t->source_bytes = size;
	off = size > max_bytes ? size - max_bytes : 0;
	/* and the byte before the window: it tells whether the window's first line is whole */
	first = off > 0 ? off - 1 : 0;
	want = (size_t)(size - first);
	buf = malloc(want + 1);
	if (buf == NULL)
		goto fail;
	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, (off_t)(first + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			saved = errno;
			free(buf);
			errno = saved;
			goto fail;
		}
		if (r == 0)
			break;	/* the file shrank meanwhile */
		got += (size_t)r;
	}
	close(fd);
	start = buf;
	end = buf + got;
	if (off > 0) {
		/* drop through the first newline: a line the window cut is never shown in part */
		char *nl = memchr(start, '\n', got);
		start = nl != NULL ? nl + 1 : end;
		t->cut = 1;
	}
	for (const char *p = start; p < end; p++)
		lines += *p == '\n';
	if (end > start && end[-1] != '\n')
		lines++;	/* a last line still being written */
	for (; lines > max_lines; lines--) {
		char *nl = memchr(start, '\n', (size_t)(end - start));
		start = nl != NULL ? nl + 1 : end;
		t->cut = 1;
	}
	t->lines = lines;
	t->len = (size_t)(end - start);
	memmove(buf, start, t->len);
	buf[t->len] = 0;
	t->text = buf;
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* bundle_secret_add - one more value to scrub (empty ones are not secrets) */
static void bundle_secret_add(struct bundle_secrets *s, const void *data, size_t len)
{
	if (data != NULL && len > 0 && s->n < BUNDLE_NSECRETS) {
		s->s[s->n].data = data;
		s->s[s->n].len = len;
		s->n++;
	}
}

/* bundle_secret_url - a URL's user:password and password, when it carries them */
static void bundle_secret_url(struct bundle_secrets *s, const char *url, int whole)
{
	const char *scheme, *start, *end, *at = NULL, *colon;

	if (url == NULL)
		return;
	scheme = strstr(url, "://");
	start = scheme != NULL ? scheme + 3 : url;
	end = start + strcspn(start, "/?#");
	for (const char *p = start; p < end; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return;
	if (whole)
		bundle_secret_add(s, url, strlen(url));
	bundle_secret_add(s, start, (size_t)(at - start));
	colon = memchr(start, ':', (size_t)(at - start));
	if (colon != NULL)
		bundle_secret_add(s, colon + 1, (size_t)(at - colon - 1));
}

/* bundle_secrets_collect - every secret value this node holds */
static void bundle_secrets_collect(struct node *n, struct bundle_secrets *s)
{
	const struct config *cfg = &n->cfg;
	char *key;
	size_t len;
	int fd;

	memset(s, 0, sizeof(*s));
	if (cfg->api_key)
		bundle_secret_add(s, cfg->api_key, strlen(cfg->api_key));
	if (cfg->aes_key_b64)
		bundle_secret_add(s, cfg->aes_key_b64, strlen(cfg->aes_key_b64));
	if (cfg->have_aes_key) {
		bundle_secret_add(s, cfg->aes_key, CONFIG_AES_KEY_LEN);
		bundle_hex(cfg->aes_key, CONFIG_AES_KEY_LEN, s->aes_hex);
		bundle_secret_add(s, s->aes_hex, strlen(s->aes_hex));
	}
	if (cfg->internal_key)
		bundle_secret_add(s, cfg->internal_key, strlen(cfg->internal_key));
	if (cfg->omop_password)
		bundle_secret_add(s, cfg->omop_password, strlen(cfg->omop_password));
	bundle_secret_url(s, cfg->https_proxy, 1);
	bundle_secret_url(s, cfg->hub_url, 0);
	/* the de-identification key is no config key, but a secret all the same */
	fd = statedir_open(cfg->state_dir);
	if (fd >= 0 && durable_read(fd, STATEDIR_DEID_KEY, sizeof(s->deid), &key, &len) == 0) {
		memcpy(s->deid, key, len);
		s->deid_len = len;
		OPENSSL_cleanse(key, len);
		free(key);
		bundle_secret_add(s, s->deid, s->deid_len);
		bundle_hex(s->deid, s->deid_len, s->deid_hex);
		bundle_secret_add(s, s->deid_hex, strlen(s->deid_hex));
	}
	if (fd >= 0)
		close(fd);
}

/* bundle_write_cb - libarchive's output: to the temporary file, and into the hash */
static la_ssize_t bundle_write_cb(struct archive *a, void *arg, const void *buf, size_t len)
{
	struct bundle *b = arg;
	const char *p = buf;
	size_t left = len;

	while (left > 0) {
		ssize_t w = write(b->fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			archive_set_error(a, errno, "cannot write the bundle");
			return -1;
		}
		p += w;
		left -= (size_t)w;
	}
	if (EVP_DigestUpdate(b->md, buf, len) != 1) {
		archive_set_error(a, ENOMEM, "cannot hash the bundle");
		return -1;
	}
	b->bytes += len;
	return (la_ssize_t)len;
}

/* bundle_add - one member, scrubbed first; data (malloc'd) and row are consumed */
static int bundle_add(struct bundle *b, const char *name, char *data, size_t len, json_t *row,
		      int listed)
{
	struct archive_entry *e = NULL;
	char path[BUNDLE_TOP_MAX + 320];
	unsigned count = 0;
	int rc = -1;

	if (data == NULL || bundle_scrub(&data, &len, b->sec.s, b->sec.n, &count) < 0) {
		errno = ENOMEM;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", b->top, name);
	e = archive_entry_new();
	if (e == NULL) {
		errno = ENOMEM;
		goto out;
	}
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, b->now, 0);
	if (archive_write_header(b->a, e) != ARCHIVE_OK ||
	    (len > 0 && archive_write_data(b->a, data, len) != (la_ssize_t)len)) {
		errno = archive_errno(b->a) ? archive_errno(b->a) : EIO;
		goto out;
	}
	b->res->members++;
	b->res->redacted += count;
	if (listed) {
		json_t *r = json_pack("{s:s,s:I}", "name", name, "bytes", (json_int_t)len);
		if (r != NULL && row != NULL)
			json_object_update(r, row);
		if (r != NULL)
			json_object_set_new(r, "redacted", json_integer(count));
		if (json_is_true(json_object_get(r, "cut")))
			b->res->cut++;
		json_array_append_new(b->members, r);
	}
	rc = 0;
out:
	archive_entry_free(e);
	free(data);
	json_decref(row);
	return rc;
}

/* bundle_add_json - a JSON member, indented for people; v is consumed */
static int bundle_add_json(struct bundle *b, const char *name, json_t *v, json_t *row)
{
	char *text = v != NULL ? json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	char *data = NULL;

	json_decref(v);
	if (text != NULL && asprintf(&data, "%s\n", text) < 0)
		data = NULL;
	free(text);
	if (data == NULL) {
		json_decref(row);
		errno = ENOMEM;
		return -1;
	}
	return bundle_add(b, name, data, strlen(data), row, 1);
}

/* bundle_skip - a file left out, and why */
static void bundle_skip(struct bundle *b, const char *dir, const char *name, const char *why)
{
	char path[4608];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	json_t *src = json_string(path);
	json_array_append_new(b->skipped, json_pack("{s:o,s:s}", "source",
						    src ? src : json_string("(name not UTF-8)"),
						    "why", why));
}

/* bundle_add_tail - the kept lines of dir/name as member prefix/name */
static int bundle_add_tail(struct bundle *b, int dirfd, const char *dir, const char *prefix,
			   const char *name, size_t max_lines, size_t max_bytes)
{
	struct bundle_tail t;
	char member[320], source[4608], kept[96];

	if (bundle_tail(dirfd, name, max_lines, max_bytes, &t) < 0) {
		bundle_skip(b, dir, name, strerror(errno));
		return 0;
	}
	snprintf(member, sizeof(member), "%s/%s", prefix, name);
	snprintf(source, sizeof(source), "%s/%s", dir, name);
	if (max_lines == SIZE_MAX)
		snprintf(kept, sizeof(kept), "the last %zu KiB", max_bytes >> 10);
	else
		snprintf(kept, sizeof(kept), "the last %zu lines within the last %zu KiB", max_lines,
			 max_bytes >> 10);
	return bundle_add(b, member, t.text, t.len,
			  json_pack("{s:s,s:I,s:I,s:s,s:b}", "source", source, "source_bytes",
				    (json_int_t)t.source_bytes, "lines", (json_int_t)t.lines,
				    "kept", kept, "cut", t.cut),
			  1);
}

/* bundle_log_newest - qsort: newest first */
static int bundle_log_newest(const void *x, const void *y)
{
	const struct bundle_log *a = x, *b = y;

	return a->mtime < b->mtime ? 1 : a->mtime > b->mtime ? -1 : strcmp(a->name, b->name);
}

/* bundle_log_name - qsort: by name */
static int bundle_log_name(const void *x, const void *y)
{
	return strcmp(((const struct bundle_log *)x)->name, ((const struct bundle_log *)y)->name);
}

/*
 * bundle_add_dir - the regular files of dir (not its dot files, not through links),
 * the newest max of them when there are more, as prefix/NAME; suffix filters names.
 */
static int bundle_add_dir(struct bundle *b, const char *dir, const char *prefix,
			  const char *suffix, size_t max, size_t max_lines, size_t max_bytes)
{
	struct bundle_log *logs = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *d = NULL;
	int fd, rc = 0;

	/* the configured folder may be a link (the operator's choice); what is in it is not */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		bundle_skip(b, dir, ".", strerror(errno));
		return 0;
	}
	d = fdopendir(dup(fd));
	if (d == NULL) {
		bundle_skip(b, dir, ".", strerror(errno));
		close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		size_t nl = strlen(de->d_name), sl = suffix ? strlen(suffix) : 0;

		if (de->d_name[0] == '.')
			continue;	/* . and .., and temporaries such as audit rotation's */
		if (strncmp(de->d_name, BUNDLE_FL_CLIENT_LOG, strlen(BUNDLE_FL_CLIENT_LOG)) == 0 &&
		    !(b->flags & BUNDLE_WITH_FL_CLIENT_LOG)) {
			bundle_skip(b, dir, de->d_name,
				    "the FL client's own output, not held to the node's "
				    "no-patient-data rule: review it, then flipctl bundle "
				    "--with-fl-client-log");
			continue;
		}
		if (suffix && (nl <= sl || strcmp(de->d_name + nl - sl, suffix) != 0))
			continue;
		if (!bundle_name_ok(de->d_name)) {
			bundle_skip(b, dir, de->d_name, "name outside [A-Za-z0-9._-]");
			continue;
		}
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			bundle_skip(b, dir, de->d_name, strerror(errno));
			continue;
		}
		if (S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode)) {
			bundle_skip(b, dir, de->d_name, S_ISLNK(st.st_mode)
				    ? "a symbolic link (not followed)" : "not a regular file");
			continue;
		}
		if (cnt == cap) {
			struct bundle_log *nlogs = realloc(logs, (cap ? cap * 2 : 16) * sizeof(*logs));
			if (nlogs == NULL) {
				errno = ENOMEM;
				rc = -1;
				goto out;
			}
			logs = nlogs;
			cap = cap ? cap * 2 : 16;
		}
		snprintf(logs[cnt].name, sizeof(logs[cnt].name), "%s", de->d_name);
		logs[cnt++].mtime = st.st_mtime;
	}
	if (cnt > max) {
		qsort(logs, cnt, sizeof(*logs), bundle_log_newest);
		for (size_t i = max; i < cnt; i++)
			bundle_skip(b, dir, logs[i].name, "older than the newest files kept");
		cnt = max;
	}
	if (cnt > 0)
		qsort(logs, cnt, sizeof(*logs), bundle_log_name);
	for (size_t i = 0; i < cnt && rc == 0; i++)
		rc = bundle_add_tail(b, fd, dir, prefix, logs[i].name, max_lines, max_bytes);
out:
	free(logs);
	closedir(d);
	close(fd);
	return rc;
}

/* bundle_os_release - the identifying keys of /etc/os-release */
static json_t *bundle_os_release(void)
{
	static const char *const keep[] = {"PRETTY_NAME", "ID", "VERSION_ID", "VERSION_CODENAME",
					   NULL};
	json_t *out = json_object();
	char *buf, *line, *next;
	ssize_t r;
	size_t len = 0;
	/* usually a link to /usr/lib/os-release: a system file, followed */
	int fd = open("/etc/os-release", O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0 || out == NULL || (buf = malloc(BUNDLE_OS_RELEASE_MAX + 1)) == NULL) {
		if (fd >= 0)
			close(fd);
		return out;
	}
	while (len < BUNDLE_OS_RELEASE_MAX &&
	       ((r = read(fd, buf + len, BUNDLE_OS_RELEASE_MAX - len)) > 0 ||
		(r < 0 && errno == EINTR)))
		len += r > 0 ? (size_t)r : 0;
	close(fd);
	buf[len] = 0;
	for (line = buf; line != NULL && *line; line = next) {
		char *eq, *val;
		size_t vl;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = 0;
		eq = strchr(line, '=');
		if (eq == NULL)
			continue;
		*eq = 0;
		val = eq + 1;
		vl = strlen(val);
		if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
			val[vl - 1] = 0;
			val++;
		}
		for (const char *const *k = keep; *k != NULL; k++)
			if (strcmp(*k, line) == 0)
				json_object_set_new(out, line, json_string(val));
	}
	free(buf);
	return out;
}

/* bundle_versions - flip-node, its libraries, the kernel and the OS */
json_t *bundle_versions(void)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
	int pv = PQlibVersion();
	char pq[32];
	struct utsname u;
	json_t *kernel;

	/* libpq 10 and later: major * 10000 + minor */
	snprintf(pq, sizeof(pq), "%d.%d", pv / 10000, pv % 10000);
	if (uname(&u) == 0)
		kernel = json_pack("{s:s,s:s,s:s,s:s,s:s}", "sysname", u.sysname, "release",
				   u.release, "version", u.version, "machine", u.machine, "host",
				   u.nodename);
	else
		kernel = json_null();
	return json_pack("{s:s,s:{s:s?,s:s?,s:s,s:s,s:s,s:s,s:s,s:s,s:s},s:o,s:o}", "flip_node",
			 FLIP_VERSION, "libraries", "libcurl", cv ? cv->version : NULL,
			 "libcurl_tls", cv ? cv->ssl_version : NULL, "openssl",
			 OpenSSL_version(OPENSSL_VERSION), "libpq", pq, "jansson",
			 jansson_version_str(), "libarchive", archive_version_details(),
			 "libmicrohttpd", MHD_get_version(), "libpg_query",
			 PG_VERSION " (compiled in)", "dcmtk", BUNDLE_DCMTK, "kernel", kernel, "os",
			 bundle_os_release());
}

/* bundle_config - config_public() with the fingerprints the node already shows */
json_t *bundle_config(const struct config *cfg)
{
	json_t *v = config_public(cfg);
	char fp[65];

	if (v == NULL)
		return NULL;
	if (cfg->have_aes_key) {
		envelope_fingerprint(cfg->aes_key, fp);
		json_object_set_new(json_object_get(v, "AES_KEY_BASE64"), "fingerprint",
				    json_string(fp));
	}
	if (cfg->api_key != NULL) {
		digest_sha256_hex(cfg->api_key, strlen(cfg->api_key), fp);
		fp[12] = 0;	/* enough to compare with flipctl key-hash; no more is needed */
		json_object_set_new(json_object_get(v, "TRUST_API_KEY"), "fingerprint",
				    json_string(fp));
	}
	return v;
}

/* bundle_label - the trust name of the last heartbeat answer, else the host name */
static void bundle_label(struct node *n, char *out, size_t outlen)
{
	char raw[256] = "", *text;
	size_t len, w = 0;
	const char *p;
	int fd = statedir_open(n->cfg.state_dir);

	if (fd >= 0 && durable_read(fd, STATEDIR_HUB, STATEDIR_HUB_CAP, &text, &len) == 0) {
		json_t *v = json_loadb(text, len, 0, NULL);
		const char *name = json_string_value(
			json_object_get(json_object_get(v, "reply"), "trust_name"));
		if (name != NULL)
			snprintf(raw, sizeof(raw), "%s", name);
		json_decref(v);
		free(text);
	}
	if (fd >= 0)
		close(fd);
	if (raw[0] == 0 && gethostname(raw, sizeof(raw) - 1) < 0)
		raw[0] = 0;
	raw[sizeof(raw) - 1] = 0;
	for (p = raw; *p && w + 1 < outlen && w < 48; p++) {
		char c = isalnum((unsigned char)*p) || *p == '.' || *p == '_' ? *p : '-';
		if (w == 0 && (c == '.' || c == '-'))
			continue;	/* never a hidden file, never an option */
		out[w++] = c;
	}
	if (w == 0)
		w = (size_t)snprintf(out, outlen, "node");
	out[w < outlen ? w : outlen - 1] = 0;
}

/* bundle_default_name - flip-bundle-<label>-<UTC stamp>.tar.gz */
int bundle_default_name(struct node *n, time_t now, char *out, size_t outlen)
{
	char label[64], stamp[32];

	bundle_label(n, label, sizeof(label));
	bundle_time(now, 1, stamp, sizeof(stamp));
	if (snprintf(out, outlen, "flip-bundle-%s-%s.tar.gz", label, stamp) >= (int)outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static const char bundle_readme[] =
	"flip-node support bundle\n"
	"========================\n"
	"\n"
	"Made by `flipctl bundle` on %s, flip-node %s, for the FLIP support team.\n"
	"Every member is text; manifest.json lists each with its source, what a cap cut\n"
	"and how many secret values were replaced by " BUNDLE_REDACTED ".\n"
	"\n"
	"  README.txt         this file\n"
	"  manifest.json      every member, the files left out and why\n"
	"  versions.json      flip-node, its libraries, the kernel, the OS release\n"
	"  config.json        the effective configuration (the kit file, then the\n"
	"                     environment of the flipctl that made this bundle): only keys\n"
	"                     known to hold no secret are shown; every secret is just\n"
	"                     \"set\", the AES key and the API key with the short\n"
	"                     fingerprints flipctl doctor and key-hash show\n"
	"  status.json        flipctl status --json: the last hub answer, spool counts by\n"
	"                     state with the oldest age, each program's last run, imaging\n"
	"                     counts, the FL client\n"
	"  audit-verify.json  the audit trail's hash chain check (flipctl audit verify)\n"
	"  logs/NAME          the last %d lines (within the last %u KiB) of each file in\n"
	"                     FLIP_LOG_DIR, audit.log included; the FL client's own\n"
	"                     output (fl-client.log) only when asked for with\n"
	"                     --with-fl-client-log, after review\n"
	"  metrics/NAME.prom  each program's node_exporter metrics\n"
	"\n"
	"Never included: the kit file, secrets (API key, AES key, internal service key,\n"
	"database password, proxy credentials, the de-identification key), job payloads\n"
	"and SQL, results, cohort snapshots, imaging data, the FL kit. Nothing is read\n"
	"from the spool's jobs. The audit trail and the logs hold only counts,\n"
	"categories and fingerprints by design (never SQL, accession numbers, patient\n"
	"identifiers or row values); as a second guard every member was searched for\n"
	"this node's secret values, which were replaced, before it was written.\n"
	"\n"
	"The programs' own log lines are in the systemd journal, not here:\n"
	"  journalctl -u 'flip-*' --since -2d\n"
	"(under cron they went wherever the crontab sent them).\n";

/* bundle_members - everything but the manifest */
static int bundle_members(struct bundle *b, struct node *n, const char *problem)
{
	char created[32], path[4096], *readme = NULL;
	struct stat st;
	struct audit_verdict v;
	json_t *cfgdoc, *status, *verify;
	int rc;

	bundle_time(b->now, 0, created, sizeof(created));
	if (asprintf(&readme, bundle_readme, created, FLIP_VERSION, BUNDLE_TAIL_LINES,
		     BUNDLE_TAIL_BYTES >> 10) < 0)
		readme = NULL;
	if (bundle_add(b, "README.txt", readme, readme ? strlen(readme) : 0,
		       json_pack("{s:s}", "source", "generated"), 1) < 0 ||
	    bundle_add_json(b, "versions.json", bundle_versions(),
			    json_pack("{s:s}", "source", "generated")) < 0)
		return -1;

	cfgdoc = json_pack("{s:s?,s:n,s:o}", "file", n->cfg.path && n->cfg.path[0] ? n->cfg.path
							: NULL,
			   "file_mode", "keys", bundle_config(&n->cfg));
	if (cfgdoc && n->cfg.path && n->cfg.path[0] && lstat(n->cfg.path, &st) == 0) {
		char mode[8];
		snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
		json_object_set_new(cfgdoc, "file_mode", json_string(mode));
	}
	if (bundle_add_json(b, "config.json", cfgdoc,
			    json_pack("{s:s}", "source", "config_public()")) < 0)
		return -1;

	status = n->have_spool ? status_collect(n)
			       : json_pack("{s:s}", "error",
					   problem ? problem : "the spool was not opened");
	if (bundle_add_json(b, "status.json", status,
			    json_pack("{s:s}", "source", "flipctl status --json")) < 0)
		return -1;

	snprintf(path, sizeof(path), "%s/audit.log", n->cfg.log_dir);
	rc = audit_verify(path, &v);
	if (rc < 0)
		verify = json_pack("{s:s,s:s}", "file", path, "error", strerror(errno));
	else
		verify = json_pack("{s:s,s:b,s:I,s:I,s:s,s:s}", "file", path, "intact", rc == 0,
				   "lines", (json_int_t)v.lines, "bad_line", (json_int_t)v.bad_line,
				   "reason", v.reason, "last_hash", v.last_hash);
	if (bundle_add_json(b, "audit-verify.json", verify,
			    json_pack("{s:s}", "source", "flipctl audit verify")) < 0)
		return -1;

	if (bundle_add_dir(b, n->cfg.log_dir, "logs", NULL, BUNDLE_MAX_LOGS, BUNDLE_TAIL_LINES,
			   BUNDLE_TAIL_BYTES) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/" STATEDIR_METRICS, n->cfg.state_dir);
	return bundle_add_dir(b, path, "metrics", ".prom", BUNDLE_MAX_LOGS, SIZE_MAX,
			      BUNDLE_PROM_MAX);
}

/* bundle_manifest - the last member: what is in, what is not */
static int bundle_manifest(struct bundle *b)
{
	char created[32];
	json_t *m;

	bundle_time(b->now, 0, created, sizeof(created));
	m = json_pack("{s:i,s:s,s:s,s:s,s:O,s:O,s:[sssssssss]}", "bundle_format", 1,
		      "created_at", created, "flip_node", FLIP_VERSION, "folder", b->top,
		      "members", b->members, "skipped", b->skipped, "never_included",
		      "the kit file", "secrets (shown only as set, or as a fingerprint)",
		      "job payloads and SQL", "results", "cohort snapshots", "imaging data",
		      "the FL kit", "the de-identification key", "anything else under the spool");
	if (m == NULL) {
		errno = ENOMEM;
		return -1;
	}
	char *text = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER), *data = NULL;
	json_decref(m);
	if (text != NULL && asprintf(&data, "%s\n", text) < 0)
		data = NULL;
	free(text);
	return bundle_add(b, "manifest.json", data, data ? strlen(data) : 0, NULL, 0);
}

/* bundle_target - split path into its directory (opened) and its last component */
static int bundle_target(const char *path, const char **base, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	int fd;

	*base = slash ? slash + 1 : path;
	if (**base == 0 || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0) {
		errno = EISDIR;
		return err_set(err, errlen, "%s: names a directory; give a file name", path);
	}
	if (strlen(*base) > 200) {
		errno = ENAMETOOLONG;
		return err_set(err, errlen, "%s: file name longer than 200 characters", path);
	}
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if (snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path) >= (int)sizeof(dir)) {
		errno = ENAMETOOLONG;
		return err_set(err, errlen, "%s: path too long", path);
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, errlen, "%s: cannot open the folder: %s", dir, strerror(errno));
	return fd;
}

/* bundle_publish - the finished temporary file becomes path, never replacing anything */
static int bundle_publish(int dirfd, const char *tmp, const char *base)
{
	if (renameat2(dirfd, tmp, dirfd, base, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* a file system without RENAME_NOREPLACE: link(2) refuses an existing name too */
	if (linkat(dirfd, tmp, dirfd, base, 0) < 0)
		return -1;
	(void)unlinkat(dirfd, tmp, 0);
	return 0;
}

/* bundle_write - the whole tarball, atomically, at path */
int bundle_write(struct node *n, const char *path, const char *problem, unsigned flags,
		 struct bundle_result *res, char *err, size_t errlen)
{
	struct bundle b;
	struct stat st;
	char name[512], tmp[256], stamp[32], label[64];
	const char *base;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int dirfd, rc = -1, have_tmp = 0, saved;

	memset(&b, 0, sizeof(b));
	memset(res, 0, sizeof(*res));
	b.fd = -1;
	b.res = res;
	b.flags = flags;
	b.now = time(NULL);
	if (path == NULL) {
		if (bundle_default_name(n, b.now, name, sizeof(name)) < 0)
			return err_set(err, errlen, "cannot make a bundle name: %s", strerror(errno));
		path = name;
	}
	if (snprintf(res->path, sizeof(res->path), "%s", path) >= (int)sizeof(res->path)) {
		errno = ENAMETOOLONG;
		return err_set(err, errlen, "the path is too long");
	}
	dirfd = bundle_target(path, &base, err, errlen);
	if (dirfd < 0)
		return -1;
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		err_set(err, errlen, "%s: %s is there already; a bundle never replaces anything: "
			"remove it or name another file with -o", path,
			S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a directory"
										: "a file");
		goto out;
	}
	snprintf(tmp, sizeof(tmp), ".%s.tmp.%ld", base, (long)getpid());
	(void)unlinkat(dirfd, tmp, 0);	/* a stale one from a crashed run with our pid */
	b.fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (b.fd < 0) {
		err_set(err, errlen, "%s: cannot create a temporary file beside it: %s", path,
			strerror(errno));
		goto out;
	}
	have_tmp = 1;
	if (fchmod(b.fd, 0600) < 0) {
		err_set(err, errlen, "%s: cannot set mode 0600: %s", path, strerror(errno));
		goto out;
	}
	bundle_label(n, label, sizeof(label));
	bundle_time(b.now, 1, stamp, sizeof(stamp));
	snprintf(b.top, sizeof(b.top), "flip-bundle-%s-%s", label, stamp);
	bundle_secrets_collect(n, &b.sec);
	b.members = json_array();
	b.skipped = json_array();
	b.md = EVP_MD_CTX_new();
	b.a = archive_write_new();
	if (b.members == NULL || b.skipped == NULL || b.md == NULL || b.a == NULL ||
	    EVP_DigestInit_ex(b.md, EVP_sha256(), NULL) != 1) {
		errno = ENOMEM;
		err_set(err, errlen, "out of memory");
		goto out;
	}
	if (archive_write_add_filter_gzip(b.a) != ARCHIVE_OK ||
	    archive_write_set_format_pax_restricted(b.a) != ARCHIVE_OK ||
	    /* no padding to a 10 KiB block: gzip output needs none */
	    archive_write_set_bytes_in_last_block(b.a, 1) != ARCHIVE_OK ||
	    archive_write_open(b.a, &b, NULL, bundle_write_cb, NULL) != ARCHIVE_OK) {
		errno = archive_errno(b.a) ? archive_errno(b.a) : EINVAL;
		err_set(err, errlen, "%s: libarchive: %s", path,
			archive_error_string(b.a) ? archive_error_string(b.a) : "cannot start");
		goto out;
	}
	if (bundle_members(&b, n, problem) < 0 || bundle_manifest(&b) < 0 ||
	    archive_write_close(b.a) != ARCHIVE_OK) {
		err_set(err, errlen, "%s: cannot write: %s", path,
			archive_error_string(b.a) ? archive_error_string(b.a) : strerror(errno));
		goto out;
	}
	if (fsync(b.fd) < 0 || close(b.fd) < 0) {
		b.fd = -1;
		err_set(err, errlen, "%s: cannot write: %s", path, strerror(errno));
		goto out;
	}
	b.fd = -1;
	if (bundle_publish(dirfd, tmp, base) < 0) {
		if (errno == EEXIST)
			err_set(err, errlen, "%s: appeared while the bundle was written; it was "
				"left alone and the bundle removed", path);
		else
			err_set(err, errlen, "%s: cannot rename the finished bundle into place: %s",
				path, strerror(errno));
		goto out;
	}
	have_tmp = 0;
	if (durable_fsync_dir(dirfd) < 0) {
		err_set(err, errlen, "%s: fsync of its folder: %s", path, strerror(errno));
		goto out;
	}
	EVP_DigestFinal_ex(b.md, md, &mdlen);
	bundle_hex(md, mdlen > 32 ? 32 : mdlen, res->sha256);
	res->bytes = b.bytes;
	/* what left the building, by size and hash (the file's name says nothing more) */
	node_audit(n, "operator.bundle", NULL, NULL,
		   json_pack("{s:I,s:s,s:I,s:I,s:I}", "bytes", (json_int_t)res->bytes, "sha256",
			     res->sha256, "members", (json_int_t)res->members, "cut",
			     (json_int_t)res->cut, "redacted", (json_int_t)res->redacted));
	rc = 0;
out:
	saved = errno;
	if (b.a != NULL)
		archive_write_free(b.a);	/* after a failure this may still flush into fd */
	if (b.fd >= 0)
		close(b.fd);
	if (have_tmp)
		(void)unlinkat(dirfd, tmp, 0);
	close(dirfd);
	EVP_MD_CTX_free(b.md);
	json_decref(b.members);
	json_decref(b.skipped);
	OPENSSL_cleanse(&b.sec, sizeof(b.sec));
	errno = saved;
	return rc;
}
