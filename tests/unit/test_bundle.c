/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_bundle - the support tarball: bundle_scrub() replaces every secret value
 * (text and binary, counted); bundle_tail() keeps whole last lines within a byte
 * window, never part of a line, and refuses links and non-files; bundle_config()
 * (config_public() underneath) shows known non-secret keys and redacts the rest,
 * the proxy and hub URLs without credentials, with the two fingerprints; and
 * bundle_write() makes a mode 0600 .tar.gz whose members are the documented ones,
 * hold no secret (a log that leaked the API key comes out scrubbed and counted),
 * say when a cap cut a log, and never replace or follow what is at the path
 * (a file, a symbolic link), leaving no temporary behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "bin/flipctl/bundle.h"
#include "lib/config.h"
#include "lib/node.h"

/* "0123456789abcdef0123456789abcdef": 32 bytes */
#define AES32 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define AES_RAW "0123456789abcdef0123456789abcdef"
#define AES_HEX "3031323334353637383961626364656630313233343536373839616263646566"
#define API_KEY "sk-test-SECRET-api-key-0123456789"
#define INTERNAL_KEY "internal-SECRET-xyz"
#define DB_PASSWORD "pg-SECRET-pw"
#define PROXY_PW "proxy-SECRET-pw"
#define HUB_PW "hub-SECRET-pw"

static const char *const secrets[] = {API_KEY, AES32, AES_RAW, AES_HEX, INTERNAL_KEY,
				      DB_PASSWORD, PROXY_PW, HUB_PW, NULL};

static char dir[64], kit[128], logdir[128], statedir[128], outdir[128];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void write_file(const char *path, const char *body, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int setup(void **state)
{
	(void)state;
	clearenv();	/* nothing of the caller's FLIP_* or proxy settings */
	strcpy(dir, "/tmp/test_bundle.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(kit, sizeof(kit), "%s/flip.env", dir);
	snprintf(logdir, sizeof(logdir), "%s/log", dir);
	snprintf(statedir, sizeof(statedir), "%s/state", dir);
	snprintf(outdir, sizeof(outdir), "%s/out", dir);
	if (mkdir(logdir, 0700) < 0 || mkdir(statedir, 0700) < 0 || mkdir(outdir, 0700) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* write_kit - a kit with every secret set, and the node's folders under dir */
static void write_kit(void)
{
	char body[2048];

	snprintf(body, sizeof(body),
		 "CENTRAL_HUB_API_URL=https://trust:" HUB_PW "@hub.example/api?token=x#frag\n"
		 "TRUST_API_KEY=" API_KEY "\n"
		 "TRUST_API_KEY_HEADER=X-Trust-API-Key\n"
		 "AES_KEY_BASE64=" AES32 "\n"
		 "TRUST_INTERNAL_SERVICE_KEY=" INTERNAL_KEY "\n"
		 "DATA_ACCESS_POSTGRES_USER=flip_reader\n"
		 "DATA_ACCESS_POSTGRES_PASSWORD=" DB_PASSWORD "\n"
		 "OMOP_DB_HOST=db.trust.nhs.uk\n"
		 "HTTPS_PROXY=http://proxyuser:" PROXY_PW "@proxy.trust.nhs.uk:3128/path\n"
		 "FL_CLIENT_COMMAND=/opt/fl/client --password hunter2\n"
		 "FL_SITE_PRIVACY_GAMMA=0.5\n"
		 "FL_SITE_PRIVACY_SVT_TOKEN=abc\n"
		 "POLL_INTERVAL_SECONDS=7\n"
		 "FLIP_SPOOL_DIR=%s/spool\nFLIP_STATE_DIR=%s\nFLIP_LOG_DIR=%s\n",
		 dir, statedir, logdir);
	write_file(kit, body, 0600);
}

/* assert_no_secret - none of the secret values in len bytes at p */
static void assert_no_secret(const void *p, size_t len, const char *what)
{
	for (const char *const *s = secrets; *s != NULL; s++)
		if (memmem(p, len, *s, strlen(*s)) != NULL)
			fail_msg("a secret (%.6s...) in %s", *s, what);
}

static void test_scrub(void **state)
{
	static const unsigned char raw[] = {0x00, 0xff, 0x10, 0x00};
	const struct bundle_secret s[] = {{"SECRET", 6}, {"", 0}, {raw, sizeof(raw)}, {NULL, 3}};
	const char in[] = "a SECRET, SECRETSECRET\x00\xff\x10\x00 end";
	size_t len = sizeof(in) - 1;
	char *buf = malloc(len);
	unsigned count;

	(void)state;
	memcpy(buf, in, len);
	assert_int_equal(bundle_scrub(&buf, &len, s, 4, &count), 0);
	assert_int_equal(count, 4);
	assert_string_equal(buf, "a [REDACTED], [REDACTED][REDACTED][REDACTED] end");
	assert_int_equal(len, strlen(buf));
	/* nothing to replace: the buffer is left as it is */
	assert_int_equal(bundle_scrub(&buf, &len, s, 1, &count), 0);
	assert_int_equal(count, 0);
	free(buf);
}

static void test_tail(void **state)
{
	char path[192], big[4096];
	struct bundle_tail t;
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	(void)state;
	snprintf(path, sizeof(path), "%s/ten", dir);
	write_file(path, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", 0600);
	assert_int_equal(bundle_tail(fd, "ten", 3, 1 << 20, &t), 0);
	assert_string_equal(t.text, "8\n9\n10\n");
	assert_true(t.cut);
	assert_int_equal(t.lines, 3);
	assert_int_equal(t.source_bytes, 21);
	free(t.text);
	/* the whole file, uncut */
	assert_int_equal(bundle_tail(fd, "ten", 200, 1 << 20, &t), 0);
	assert_int_equal(t.lines, 10);
	assert_false(t.cut);
	assert_int_equal(t.len, 21);
	free(t.text);
	/* a 5-byte window "9\n10\n" starts on a line: both lines kept */
	assert_int_equal(bundle_tail(fd, "ten", 200, 5, &t), 0);
	assert_string_equal(t.text, "9\n10\n");
	assert_true(t.cut);
	free(t.text);
	/* a 4-byte window "\n10\n" cuts a line: only "10" */
	assert_int_equal(bundle_tail(fd, "ten", 200, 4, &t), 0);
	assert_string_equal(t.text, "10\n");
	free(t.text);
	/* a last line still being written counts, and is kept */
	write_file(path, "one\ntwo\nthr", 0600);
	assert_int_equal(bundle_tail(fd, "ten", 2, 1 << 20, &t), 0);
	assert_string_equal(t.text, "two\nthr");
	assert_int_equal(t.lines, 2);
	free(t.text);
	/* one line longer than the window: nothing of it is shown */
	memset(big, 'x', sizeof(big) - 2);
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = 0;
	write_file(path, big, 0600);
	assert_int_equal(bundle_tail(fd, "ten", 200, 100, &t), 0);
	assert_int_equal(t.len, 0);
	assert_true(t.cut);
	free(t.text);
	/* links are not followed, folders are not files */
	snprintf(big, sizeof(big), "%s/link", dir);
	assert_int_equal(symlink(path, big), 0);
	assert_int_equal(bundle_tail(fd, "link", 200, 100, &t), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(bundle_tail(fd, "log", 200, 100, &t), -1);
	close(fd);
}

static void test_config(void **state)
{
	struct config cfg;
	char err[512];
	json_t *v, *k;
	char *text;

	(void)state;
	write_kit();
	assert_int_equal(config_load(&cfg, kit, err, sizeof(err)), 0);
	v = bundle_config(&cfg);
	assert_non_null(v);
	text = json_dumps(v, 0);
	assert_no_secret(text, strlen(text), "config");
	assert_null(strstr(text, "hunter2"));
	assert_null(strstr(text, "token=x"));
	/* known non-secret keys are shown as they are in effect */
	assert_string_equal(json_string_value(json_object_get(v, "CENTRAL_HUB_API_URL")),
			    "https://hub.example/api");
	assert_string_equal(json_string_value(json_object_get(v, "DATA_ACCESS_POSTGRES_USER")),
			    "flip_reader");
	assert_string_equal(json_string_value(json_object_get(v, "OMOP_DB_HOST")),
			    "db.trust.nhs.uk");
	assert_int_equal(json_integer_value(json_object_get(v, "POLL_INTERVAL_SECONDS")), 7);
	assert_true(json_is_true(json_object_get(v, "REIMPORT_STUDIES_ENABLED")));
	assert_string_equal(json_string_value(json_object_get(v, "FLIP_LOG_LEVEL")), "info");
	assert_string_equal(json_string_value(json_object_get(v, "FL_SITE_PRIVACY_GAMMA")), "0.5");
	assert_true(json_is_null(json_object_get(v, "PACS_HOST")));
	/* secrets: set or not, never their value */
	k = json_object_get(v, "TRUST_API_KEY");
	assert_true(json_is_true(json_object_get(k, "redacted")));
	assert_true(json_is_true(json_object_get(k, "set")));
	assert_int_equal(json_string_length(json_object_get(k, "fingerprint")), 12);
	k = json_object_get(v, "AES_KEY_BASE64");
	assert_true(json_is_true(json_object_get(k, "redacted")));
	assert_int_equal(json_string_length(json_object_get(k, "fingerprint")), 12);
	for (const char *const *name = (const char *const[]){"TRUST_INTERNAL_SERVICE_KEY",
							     "DATA_ACCESS_POSTGRES_PASSWORD",
							     "FL_CLIENT_COMMAND",
							     "FL_SITE_PRIVACY_SVT_TOKEN", NULL};
	     *name != NULL; name++) {
		k = json_object_get(v, *name);
		assert_true(json_is_true(json_object_get(k, "redacted")));
		assert_true(json_is_true(json_object_get(k, "set")));
		assert_null(json_object_get(k, "fingerprint"));
	}
	/* the proxy: where, without who */
	k = json_object_get(v, "https_proxy");
	assert_true(json_is_true(json_object_get(k, "redacted")));
	assert_string_equal(json_string_value(json_object_get(k, "shown")),
			    "http://proxy.trust.nhs.uk:3128");
	free(text);
	json_decref(v);
	config_free(&cfg);
}

/* read_bundle - every member of a .tar.gz: names (sorted as written), and all bytes */
static json_t *read_bundle(const char *path)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	json_t *out = json_object();
	char buf[65536];

	archive_read_support_format_tar(a);
	archive_read_support_filter_gzip(a);
	assert_int_equal(archive_read_open_filename(a, path, 16384), ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		char *data = NULL;
		size_t len = 0;
		la_ssize_t r;

		while ((r = archive_read_data(a, buf, sizeof(buf))) > 0) {
			data = realloc(data, len + (size_t)r + 1);
			memcpy(data + len, buf, (size_t)r);
			len += (size_t)r;
		}
		assert_true(r == 0);
		assert_int_equal(archive_entry_perm(e), 0600);
		assert_no_secret(data ? data : "", len, archive_entry_pathname(e));
		json_object_set_new(out, archive_entry_pathname(e), json_stringn(data ? data : "", len));
		free(data);
	}
	archive_read_free(a);
	return out;
}

/* member - the text of the member whose name ends with suffix */
static const char *member(json_t *m, const char *suffix)
{
	const char *name;
	json_t *v;

	json_object_foreach(m, name, v) {
		size_t n = strlen(name), s = strlen(suffix);
		if (n >= s && strcmp(name + n - s, suffix) == 0)
			return json_string_value(v);
	}
	fail_msg("no member ending %s", suffix);
	return NULL;
}

/* only_file - the single entry of outdir is name (no temporary left) */
static void only_file(const char *name)
{
	DIR *d = opendir(outdir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		assert_string_equal(de->d_name, name);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 1);
}

static void test_write(void **state)
{
	struct node n;
	struct bundle_result res;
	struct stat st;
	char err[1024], path[256], logs[256], big[300 * 16 + 1];
	json_t *m, *manifest, *row;
	size_t i;

	(void)state;
	write_kit();
	/* a log that leaked a secret, a long log, a link and a dot file beside them */
	snprintf(path, sizeof(path), "%s/fl-client.log", logdir);
	write_file(path, "starting\nconnecting with key " API_KEY " (oops)\n", 0600);
	for (i = 0; i < 300; i++)
		snprintf(big + 16 * i, 17, "line %010zu\n", i);
	snprintf(path, sizeof(path), "%s/audit.log", logdir);
	write_file(path, big, 0600);
	snprintf(path, sizeof(path), "%s/linked.log", logdir);
	assert_int_equal(symlink(kit, path), 0);
	snprintf(path, sizeof(path), "%s/.audit.log.tmp", logdir);
	write_file(path, "tmp\n", 0600);
	assert_int_equal(node_open(&n, "flipctl", kit, 0, err, sizeof(err)), 0);

	snprintf(path, sizeof(path), "%s/b.tar.gz", outdir);
	assert_int_equal(bundle_write(&n, path, "no spool here", BUNDLE_WITH_FL_CLIENT_LOG, &res, err,
				      sizeof(err)),
			 0);
	assert_string_equal(res.path, path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal((unsigned long long)st.st_size, res.bytes);
	assert_int_equal(strlen(res.sha256), 64);
	assert_int_equal(res.redacted, 1);
	assert_int_equal(res.cut, 1);
	only_file("b.tar.gz");

	m = read_bundle(path);
	assert_int_equal(json_object_size(m), res.members);
	for (const char *const *want = (const char *const[]){"/README.txt", "/versions.json",
							     "/config.json", "/status.json",
							     "/audit-verify.json",
							     "/logs/audit.log",
							     "/logs/fl-client.log",
							     "/manifest.json", NULL};
	     *want != NULL; want++)
		member(m, *want);
	assert_non_null(strstr(member(m, "/status.json"), "no spool here"));
	assert_non_null(strstr(member(m, "/logs/fl-client.log"), "key [REDACTED] (oops)"));
	/* the last 200 of 300 lines */
	assert_int_equal(strlen(member(m, "/logs/audit.log")), 200 * 16);
	assert_non_null(strstr(member(m, "/logs/audit.log"), "line 0000000299\n"));
	assert_null(strstr(member(m, "/logs/audit.log"), "line 0000000099\n"));
	manifest = json_loads(member(m, "/manifest.json"), 0, NULL);
	assert_non_null(manifest);
	json_array_foreach(json_object_get(manifest, "members"), i, row) {
		const char *name = json_string_value(json_object_get(row, "name"));
		if (strcmp(name, "logs/audit.log") == 0) {
			assert_true(json_is_true(json_object_get(row, "cut")));
			assert_int_equal(json_integer_value(json_object_get(row, "lines")), 200);
		}
		if (strcmp(name, "logs/fl-client.log") == 0)
			assert_int_equal(json_integer_value(json_object_get(row, "redacted")), 1);
	}
	snprintf(logs, sizeof(logs), "%s/linked.log", logdir);
	assert_non_null(strstr(member(m, "/manifest.json"), logs));
	assert_null(strstr(member(m, "/manifest.json"), ".audit.log.tmp"));
	json_decref(manifest);
	json_decref(m);

	/* a second bundle at the same path is refused; the first is untouched */
	assert_int_equal(bundle_write(&n, path, NULL, 0, &res, err, sizeof(err)), -1);
	assert_int_equal(errno, EEXIST);
	assert_non_null(strstr(err, "a file is there already"));
	only_file("b.tar.gz");
	assert_int_equal(stat(path, &st), 0);

	/* a symbolic link at the path is neither followed nor replaced */
	assert_int_equal(unlink(path), 0);
	snprintf(logs, sizeof(logs), "%s/target", dir);
	assert_int_equal(symlink(logs, path), 0);
	assert_int_equal(bundle_write(&n, path, NULL, 0, &res, err, sizeof(err)), -1);
	assert_int_equal(errno, EEXIST);
	assert_non_null(strstr(err, "a symbolic link"));
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(access(logs, F_OK), -1);
	only_file("b.tar.gz");

	/* a folder is not a file name */
	snprintf(path, sizeof(path), "%s/", outdir);
	assert_int_equal(bundle_write(&n, path, NULL, 0, &res, err, sizeof(err)), -1);
	node_close(&n);
}

static void test_default_name(void **state)
{
	struct node n;
	char err[1024], name[256], hub[192];

	(void)state;
	write_kit();
	assert_int_equal(node_open(&n, "flipctl", kit, 0, err, sizeof(err)), 0);
	/* the trust's name from the last heartbeat answer, made safe for a file name */
	snprintf(hub, sizeof(hub), "%s/hub.json", statedir);
	write_file(hub, "{\"reply\": {\"trust_name\": \"../St Mary's/NHS\"}}", 0600);
	assert_int_equal(bundle_default_name(&n, 0, name, sizeof(name)), 0);
	assert_string_equal(name, "flip-bundle-St-Mary-s-NHS-19700101T000000Z.tar.gz");
	node_close(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scrub),
		cmocka_unit_test_setup_teardown(test_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_name, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
