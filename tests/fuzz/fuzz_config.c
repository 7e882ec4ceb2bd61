/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_config - libFuzzer target for the kit file parser.
 *
 * Each input is written to one kit file (mode 0600, the same path for the whole
 * run: /tmp/fuzz-config-<pid>), loaded with config_load() and freed. Every key
 * config reads is removed from the environment once at start (nothing is ever
 * set), so the file alone decides.
 *
 * Secrets must never appear in a message. When config_load() fails and the file
 * has a TRUST_API_KEY line (or another free-text secret's), the letters and digits
 * of those values are rotated (rot13, digits +5) and the file loaded again. The
 * rotation changes no quoting, comment, blank or emptiness, so the message can only
 * change if it repeats (part of) a secret: a different message aborts. This
 * catches a leak without false alarms when the same text also appears as another
 * key's value, in the path or in a message's fixed wording.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[64];

/* every name config_load() reads from the environment */
static const char *const fuzz_env_keys[] = {
	"FLIP_ENV_FILE", "CENTRAL_HUB_API_URL", "TRUST_API_KEY", "TRUST_API_KEY_HEADER",
	"AES_KEY_BASE64", "EXPECTED_TRUST_ID", "POLL_INTERVAL_SECONDS", "FLIP_CA_BUNDLE",
	"https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "FLIP_HOLD_TASK_TYPES",
	"TRUST_INTERNAL_SERVICE_KEY", "TRUST_INTERNAL_SERVICE_KEY_HEADER", "OMOP_DB_HOST",
	"OMOP_DB_SERVICE_NAME", "OMOP_DB_PORT", "OMOP_POSTGRES_DB", "DATA_ACCESS_POSTGRES_USER",
	"DATA_ACCESS_POSTGRES_PASSWORD", "OMOP_DB_SSLMODE", "COHORT_QUERY_THRESHOLD",
	"COHORT_QUERY_TIMEOUT_SECONDS", "ACCESS_POLICY_FILE", "SNAPSHOT_MAX_BYTES",
	"IMAGING_BACKEND", "PACS_HOST", "PACS_DICOM_PORT", "PACS_AETITLE", "FLIP_AETITLE",
	"PACS_RETRIEVE", "FLIP_DICOM_PORT", "REIMPORT_STUDIES_ENABLED",
	"BASE_IMAGES_DOWNLOAD_DIR", "IMAGE_CACHE_RETENTION_HOURS", "FL_KIT_DIR", "FL_KIT_SLOT",
	"FL_BACKEND", "FL_CLIENT_COMMAND", "FL_SERVER_PORT", "NLB_SUBDOMAIN",
	"NUM_AVAILABLE_GPUS", "MEMORY_PER_GPU_IN_GIB", "FLIP_SPOOL_DIR", "FLIP_STATE_DIR",
	"FLIP_LOG_DIR", "FLIP_LOG_LEVEL", "TRUST_LOG_LEVEL", "LOG_LEVEL",
	"FLIP_DONE_RETENTION_DAYS", "FLIP_TRANSIENT_GIVE_UP_SECONDS", NULL,
};

/* the free-text secrets (AES_KEY_BASE64 is not: rotating it changes its decoding) */
static const char *const fuzz_secret_keys[] = {
	"TRUST_API_KEY", "TRUST_INTERNAL_SERVICE_KEY", "DATA_ACCESS_POSTGRES_PASSWORD",
	"https_proxy", "HTTPS_PROXY", NULL,
};

static void fuzz_cleanup(void)
{
	unlink(fuzz_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	for (const char *const *k = fuzz_env_keys; *k != NULL; k++)
		unsetenv(*k);
	snprintf(fuzz_path, sizeof(fuzz_path), "/tmp/fuzz-config-%ld", (long)getpid());
	atexit(fuzz_cleanup);
	log_set_level(LOG_ERR);
	return 0;
}

/*
 * fuzz_write - the kit file, mode 0600, rewritten in place. Overwritten and then
 * cut to size rather than opened with O_TRUNC: ext4 flushes a file truncated to
 * zero when it is closed (auto_da_alloc), which made every run wait on the disk.
 */
static void fuzz_write(const uint8_t *data, size_t size)
{
	int fd = open(fuzz_path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	off_t off = 0;

	if (fd < 0 || fchmod(fd, 0600) != 0) {
		perror(fuzz_path);
		abort();
	}
	while ((size_t)off < size) {
		ssize_t w = pwrite(fd, data + off, size - (size_t)off, off);

		if (w <= 0) {
			perror(fuzz_path);
			abort();
		}
		off += w;
	}
	if (ftruncate(fd, (off_t)size) != 0) {
		perror(fuzz_path);
		abort();
	}
	close(fd);
}

/* fuzz_load - config_load() and config_free(); 0 or -1 with the message in err */
static int fuzz_load(char *err, size_t errlen)
{
	struct config cfg;
	int rc;

	err[0] = 0;
	rc = config_load(&cfg, fuzz_path, err, errlen);
	if (rc == 0) {
		if (cfg.path == NULL || strcmp(cfg.path, fuzz_path) != 0)
			abort();
		config_free(&cfg);
	} else if (rc != -1 || err[0] == 0) {
		abort();
	}
	log_set_level(LOG_ERR); /* a kit saying debug must not flood the run */
	return rc;
}

/* fuzz_blank - the characters config_parse_line() skips */
static int fuzz_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* fuzz_is_secret - the key [k, k + n) is one of the free-text secrets */
static int fuzz_is_secret(const uint8_t *k, size_t n)
{
	for (const char *const *s = fuzz_secret_keys; *s != NULL; s++)
		if (strlen(*s) == n && memcmp(*s, k, n) == 0)
			return 1;
	return 0;
}

/*
 * fuzz_rotate_secrets - rotate the letters and digits after the '=' of every line
 * whose key (as config_parse_line() reads it: leading blanks, an optional
 * "export" and blanks, the text before the first '=' without trailing blanks) is
 * a secret. Returns how many bytes changed.
 */
static size_t fuzz_rotate_secrets(uint8_t *buf, size_t len)
{
	size_t changed = 0, i = 0;

	while (i < len) {
		size_t end = i, s = i, eq, k;

		while (end < len && buf[end] != '\n')
			end++;
		while (s < end && fuzz_blank(buf[s]))
			s++;
		if (end - s > 6 && memcmp(buf + s, "export", 6) == 0 && fuzz_blank(buf[s + 6]))
			for (s += 6; s < end && fuzz_blank(buf[s]); s++)
				;
		for (eq = s; eq < end && buf[eq] != '='; eq++)
			;
		for (k = eq; k > s && fuzz_blank(buf[k - 1]); k--)
			;
		if (eq < end && fuzz_is_secret(buf + s, k - s)) {
			for (size_t j = eq + 1; j < end; j++) {
				uint8_t c = buf[j];

				if (c >= 'a' && c <= 'z')
					buf[j] = (uint8_t)('a' + (c - 'a' + 13) % 26);
				else if (c >= 'A' && c <= 'Z')
					buf[j] = (uint8_t)('A' + (c - 'A' + 13) % 26);
				else if (c >= '0' && c <= '9')
					buf[j] = (uint8_t)('0' + (c - '0' + 5) % 10);
				else
					continue;
				changed++;
			}
		}
		i = end + 1;
	}
	return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024], err2[1024];
	uint8_t *rot;

	fuzz_write(data, size);
	if (fuzz_load(err, sizeof(err)) == 0)
		return 0;

	/* it failed: does the message depend on a secret's text? */
	rot = malloc(size + 1);
	if (rot == NULL)
		abort();
	memcpy(rot, data, size);
	if (fuzz_rotate_secrets(rot, size) > 0) {
		fuzz_write(rot, size);
		if (fuzz_load(err2, sizeof(err2)) == 0 || strcmp(err, err2) != 0) {
			fprintf(stderr,
				"fuzz_config: a secret's text changes the message:\n  %s\n  %s\n",
				err, err2);
			abort();
		}
	}
	free(rot);
	return 0;
}
