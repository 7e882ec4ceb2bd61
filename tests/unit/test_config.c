/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_config - config_load() on FLIP kit files: syntax, modes, every key's checks,
 * environment overrides, and that no message ever repeats a secret.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/config.h"
#include "lib/log.h"

/* "0123456789abcdef0123456789abcdef": 32 bytes */
#define AES32 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
/* "0123456789abcdef": 16 bytes */
#define AES16 "MDEyMzQ1Njc4OWFiY2RlZg=="
#define API_KEY "sk-test-SECRET-api-key-0123456789"
#define INTERNAL_KEY "internal-SECRET-xyz"
#define DB_PASSWORD "pg-SECRET-pw"

#define HUB_KEYS                                                                                   \
	"CENTRAL_HUB_API_URL=https://hub.example/api\n"                                            \
	"TRUST_API_KEY=" API_KEY "\n"                                                              \
	"TRUST_API_KEY_HEADER=X-Trust-API-Key\n"                                                   \
	"AES_KEY_BASE64=" AES32 "\n"

static char dir[64];
static char kit[96];
static char err[512];

/* every name config.c reads, so the test process environment cannot leak in */
static const char *const all_keys[] = {
	"CENTRAL_HUB_API_URL", "TRUST_API_KEY", "TRUST_API_KEY_HEADER", "AES_KEY_BASE64",
	"EXPECTED_TRUST_ID", "POLL_INTERVAL_SECONDS", "FLIP_CA_BUNDLE", "FLIP_HOLD_TASK_TYPES",
	"TRUST_INTERNAL_SERVICE_KEY", "TRUST_INTERNAL_SERVICE_KEY_HEADER", "OMOP_DB_HOST",
	"OMOP_DB_SERVICE_NAME", "OMOP_DB_PORT", "OMOP_POSTGRES_DB", "DATA_ACCESS_POSTGRES_USER",
	"DATA_ACCESS_POSTGRES_PASSWORD", "OMOP_DB_SSLMODE", "COHORT_QUERY_THRESHOLD",
	"COHORT_QUERY_TIMEOUT_SECONDS", "ACCESS_POLICY_FILE", "SNAPSHOT_MAX_BYTES",
	"IMAGING_BACKEND", "PACS_HOST", "PACS_DICOM_PORT", "PACS_AETITLE", "FLIP_AETITLE",
	"PACS_RETRIEVE", "FLIP_DICOM_PORT", "REIMPORT_STUDIES_ENABLED", "DEID_ALLOW_BURNED_IN",
	"BASE_IMAGES_DOWNLOAD_DIR",
	"IMAGE_CACHE_RETENTION_HOURS", "FL_KIT_DIR", "FL_KIT_SLOT", "FL_BACKEND",
	"FL_CLIENT_COMMAND", "FL_SERVER_PORT", "NLB_SUBDOMAIN", "NUM_AVAILABLE_GPUS",
	"MEMORY_PER_GPU_IN_GIB", "FLIP_SPOOL_DIR", "FLIP_STATE_DIR", "FLIP_LOG_DIR",
	"FLIP_LOG_LEVEL", "TRUST_LOG_LEVEL", "LOG_LEVEL", "FLIP_DONE_RETENTION_DAYS",
	"FLIP_TRANSIENT_GIVE_UP_SECONDS", "FLIP_ENV_FILE", NULL,
};

/* write_kit - write body to the kit file with mode */
static void write_kit(const char *body, mode_t mode)
{
	int fd;

	unlink(kit);
	fd = open(kit, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* load - write body (mode 0600) and load it */
static int load(const char *body, struct config *cfg)
{
	write_kit(body, 0600);
	err[0] = 0;
	return config_load(cfg, kit, err, sizeof(err));
}

/* load_bad - body must be refused; the message must name needle and hold no secret */
static void load_bad(const char *body, const char *needle)
{
	struct config cfg;

	assert_int_equal(load(body, &cfg), -1);
	if (strstr(err, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", err, needle);
	assert_null(strstr(err, "SECRET"));
	assert_null(strstr(err, AES32));
	assert_null(strstr(err, AES16));
	assert_null(cfg.path); /* freed on failure */
	config_free(&cfg);
}

static int setup(void **state __attribute__((unused)))
{
	for (const char *const *k = all_keys; *k; k++)
		unsetenv(*k);
	unlink(kit);
	return 0;
}

static int group_setup(void **state __attribute__((unused)))
{
	snprintf(dir, sizeof(dir), "/tmp/test_config.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(kit, sizeof(kit), "%s/flip.env", dir);
	log_init("test_config", LOG_ERR);
	return 0;
}

static int group_teardown(void **state __attribute__((unused)))
{
	char link[96];

	unlink(kit);
	snprintf(link, sizeof(link), "%s/link.env", dir);
	unlink(link);
	rmdir(dir);
	return 0;
}

static void test_every_key(void **state __attribute__((unused)))
{
	struct config cfg;
	static const char body[] =
		"# a full kit\n"
		"CENTRAL_HUB_API_URL=https://hub.example/api/\n"
		"TRUST_API_KEY=" API_KEY "\n"
		"TRUST_API_KEY_HEADER=X-Trust-API-Key\n"
		"AES_KEY_BASE64=" AES32 "\n"
		"EXPECTED_TRUST_ID=6F1C2B3A-0000-4000-8000-0123456789AB\n"
		"POLL_INTERVAL_SECONDS=7\n"
		"FLIP_CA_BUNDLE=/etc/flip/ca.pem\n"
		"FLIP_HOLD_TASK_TYPES=cohort_query, delete_imaging\n"
		"TRUST_INTERNAL_SERVICE_KEY=" INTERNAL_KEY "\n"
		"TRUST_INTERNAL_SERVICE_KEY_HEADER=X-Internal\n"
		"OMOP_DB_SERVICE_NAME=omop-db\n"
		"OMOP_DB_PORT=5433\n"
		"OMOP_POSTGRES_DB=omop\n"
		"DATA_ACCESS_POSTGRES_USER=reader\n"
		"DATA_ACCESS_POSTGRES_PASSWORD=" DB_PASSWORD "\n"
		"OMOP_DB_SSLMODE=verify-full\n"
		"COHORT_QUERY_THRESHOLD=20\n"
		"COHORT_QUERY_TIMEOUT_SECONDS=60\n"
		"ACCESS_POLICY_FILE=/etc/flip/policy.toml\n"
		"SNAPSHOT_MAX_BYTES=1048576\n"
		"IMAGING_BACKEND=xnat\n"
		"PACS_HOST=pacs.local\n"
		"PACS_DICOM_PORT=104\n"
		"PACS_AETITLE=PACS1\n"
		"FLIP_AETITLE=FLIPTEST\n"
		"PACS_RETRIEVE=move\n"
		"FLIP_DICOM_PORT=11113\n"
		"REIMPORT_STUDIES_ENABLED=No\n"
		"BASE_IMAGES_DOWNLOAD_DIR=/srv/images/\n"
		"IMAGE_CACHE_RETENTION_HOURS=24\n"
		"FL_KIT_DIR=/srv/fl-kit\n"
		"FL_KIT_SLOT=Trust_2\n"
		"FL_BACKEND=flower\n"
		"FL_CLIENT_COMMAND=flower-supernode --insecure\n"
		"FL_SERVER_PORT=9092\n"
		"NLB_SUBDOMAIN=nlb.example\n"
		"NUM_AVAILABLE_GPUS=2\n"
		"MEMORY_PER_GPU_IN_GIB=24\n"
		"FLIP_SPOOL_DIR=/srv/spool\n"
		"FLIP_STATE_DIR=/srv/state\n"
		"FLIP_LOG_DIR=/srv/log\n"
		"TRUST_LOG_LEVEL=warning\n"
		"FLIP_DONE_RETENTION_DAYS=7\n"
		"FLIP_TRANSIENT_GIVE_UP_SECONDS=120\n";
	static const unsigned char key[] = "0123456789abcdef0123456789abcdef";

	assert_int_equal(load(body, &cfg), 0);
	assert_string_equal(cfg.path, kit);
	assert_string_equal(cfg.hub_url, "https://hub.example/api");
	assert_string_equal(cfg.api_key, API_KEY);
	assert_string_equal(cfg.api_key_header, "X-Trust-API-Key");
	assert_true(cfg.have_aes_key);
	assert_memory_equal(cfg.aes_key, key, 32);
	assert_string_equal(cfg.aes_key_b64, AES32);
	assert_string_equal(cfg.expected_trust_id, "6f1c2b3a-0000-4000-8000-0123456789ab");
	assert_int_equal(cfg.poll_interval, 7);
	assert_string_equal(cfg.ca_bundle, "/etc/flip/ca.pem");
	assert_string_equal(cfg.hold_task_types, "cohort_query,delete_imaging");
	assert_true(config_hold_type(&cfg, "cohort_query"));
	assert_true(config_hold_type(&cfg, "delete_imaging"));
	assert_false(config_hold_type(&cfg, "create_imaging"));
	assert_false(config_hold_type(&cfg, "cohort"));
	assert_string_equal(cfg.internal_key, INTERNAL_KEY);
	assert_string_equal(cfg.internal_key_header, "X-Internal");
	assert_string_equal(cfg.omop_host, "omop-db");
	assert_int_equal(cfg.omop_port, 5433);
	assert_string_equal(cfg.omop_db, "omop");
	assert_string_equal(cfg.omop_user, "reader");
	assert_string_equal(cfg.omop_password, DB_PASSWORD);
	assert_string_equal(cfg.omop_sslmode, "verify-full");
	assert_int_equal(cfg.cohort_threshold, 20);
	assert_int_equal(cfg.cohort_timeout, 60);
	assert_string_equal(cfg.access_policy_file, "/etc/flip/policy.toml");
	assert_true(cfg.snapshot_max_bytes == 1048576);
	assert_string_equal(cfg.imaging_backend, "xnat");
	assert_string_equal(cfg.pacs_host, "pacs.local");
	assert_int_equal(cfg.pacs_port, 104);
	assert_string_equal(cfg.pacs_aetitle, "PACS1");
	assert_string_equal(cfg.flip_aetitle, "FLIPTEST");
	assert_string_equal(cfg.pacs_retrieve, "move");
	assert_int_equal(cfg.flip_dicom_port, 11113);
	assert_false(cfg.reimport_enabled);
	assert_string_equal(cfg.images_dir, "/srv/images");
	assert_int_equal(cfg.image_retention_hours, 24);
	assert_string_equal(cfg.fl_kit_dir, "/srv/fl-kit");
	assert_string_equal(cfg.fl_kit_slot, "Trust_2");
	assert_string_equal(cfg.fl_backend, "flower");
	assert_string_equal(cfg.fl_client_command, "flower-supernode --insecure");
	assert_int_equal(cfg.fl_server_port, 9092);
	assert_string_equal(cfg.nlb_subdomain, "nlb.example");
	assert_int_equal(cfg.num_gpus, 2);
	assert_int_equal(cfg.memory_per_gpu_gib, 24);
	assert_string_equal(cfg.spool_dir, "/srv/spool");
	assert_string_equal(cfg.state_dir, "/srv/state");
	assert_string_equal(cfg.log_dir, "/srv/log");
	assert_int_equal(cfg.log_level, LOG_WARN);
	assert_int_equal(cfg.done_retention_days, 7);
	assert_int_equal(cfg.transient_give_up, 120);
	assert_int_equal(config_require_hub(&cfg, err, sizeof(err)), 0);
	config_free(&cfg);
	assert_null(cfg.api_key);
	assert_null(cfg.path);
	assert_false(cfg.have_aes_key);
}

static void test_defaults(void **state __attribute__((unused)))
{
	struct config cfg;

	assert_int_equal(load(HUB_KEYS, &cfg), 0);
	assert_null(cfg.expected_trust_id);
	assert_int_equal(cfg.poll_interval, 5);
	assert_null(cfg.ca_bundle);
	assert_null(cfg.hold_task_types);
	assert_false(config_hold_type(&cfg, "cohort_query"));
	assert_null(cfg.internal_key);
	assert_string_equal(cfg.internal_key_header, "X-Trust-Internal-Service-Key");
	assert_null(cfg.omop_host);
	assert_int_equal(cfg.omop_port, 5432);
	assert_null(cfg.omop_sslmode);
	assert_int_equal(cfg.cohort_threshold, 10);
	assert_int_equal(cfg.cohort_timeout, 300);
	assert_null(cfg.access_policy_file);
	assert_true(cfg.snapshot_max_bytes == 2147483648LL);
	assert_string_equal(cfg.imaging_backend, "native");
	assert_int_equal(cfg.pacs_port, 4242);
	assert_string_equal(cfg.pacs_aetitle, "ORTHANC");
	assert_string_equal(cfg.flip_aetitle, "FLIPNODE");
	assert_string_equal(cfg.pacs_retrieve, "get");
	assert_int_equal(cfg.flip_dicom_port, 11112);
	assert_true(cfg.reimport_enabled);
	assert_string_equal(cfg.images_dir, "/opt/flip/data/images");
	assert_int_equal(cfg.image_retention_hours, 168);
	assert_string_equal(cfg.fl_kit_dir, "/opt/flip/fl-kit");
	assert_null(cfg.fl_kit_slot);
	assert_string_equal(cfg.fl_backend, "nvflare");
	assert_int_equal(cfg.fl_server_port, 8002);
	assert_int_equal(cfg.num_gpus, 1);
	assert_int_equal(cfg.memory_per_gpu_gib, 16);
	assert_string_equal(cfg.spool_dir, "/var/spool/flip");
	assert_string_equal(cfg.state_dir, "/var/lib/flip");
	assert_string_equal(cfg.log_dir, "/var/log/flip");
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_int_equal(cfg.done_retention_days, 30);
	assert_int_equal(cfg.transient_give_up, 600);
	config_free(&cfg);
	config_free(&cfg); /* twice is harmless */
}

static void test_syntax(void **state __attribute__((unused)))
{
	struct config cfg;
	static const char body[] = HUB_KEYS
		"\n"
		"   # indented comment\n"
		"export OMOP_POSTGRES_DB=\"omop db # not a comment\"\n"
		"export\tDATA_ACCESS_POSTGRES_USER='it\"s'\n"
		"PACS_HOST = pacs.local   # trailing comment\r\n"
		"FL_CLIENT_COMMAND=run#this\n"
		"NLB_SUBDOMAIN=\"$HOME\"\n"
		"FLIP_AETITLE='A B'  # comment after quotes\n"
		"OMOP_DB_PORT=1\n"
		"OMOP_DB_PORT=6543\n"
		"EXPECTED_TRUST_ID=\n"
		"POLL_INTERVAL_SECONDS=''\n"
		"\t\n";

	assert_int_equal(load(body, &cfg), 0);
	assert_string_equal(cfg.omop_db, "omop db # not a comment");
	assert_string_equal(cfg.omop_user, "it\"s");
	assert_string_equal(cfg.pacs_host, "pacs.local");
	assert_string_equal(cfg.fl_client_command, "run#this");
	assert_string_equal(cfg.nlb_subdomain, "$HOME"); /* no expansion */
	assert_string_equal(cfg.flip_aetitle, "A B");
	assert_int_equal(cfg.omop_port, 6543); /* the last one wins */
	assert_null(cfg.expected_trust_id);    /* empty = unset */
	assert_int_equal(cfg.poll_interval, 5); /* empty quotes = unset: the default */
	config_free(&cfg);

	/* a file with no trailing newline, and an empty file */
	assert_int_equal(load("OMOP_DB_PORT=7000", &cfg), 0);
	assert_int_equal(cfg.omop_port, 7000);
	config_free(&cfg);
	assert_int_equal(load("", &cfg), 0);
	assert_null(cfg.hub_url);
	config_free(&cfg);
}

static void test_syntax_errors(void **state __attribute__((unused)))
{
	load_bad("# comment\nTRUST_API_KEY SECRET-no-equals\n", ": line 2: expected KEY=value");
	load_bad("1KEY=x\n", ": line 1: the key must be");
	load_bad("\n\nFOO-BAR=SECRET\n", ": line 3:");
	load_bad("=SECRET\n", ": line 1:");
	load_bad("export TRUST_API_KEY\n", "line 1: expected KEY=value");
	load_bad("TRUST_API_KEY=\"SECRET\n", "line 1: unterminated quote");
	load_bad("TRUST_API_KEY='SECRET\"\n", "line 1: unterminated quote");
	load_bad(HUB_KEYS "OMOP_POSTGRES_DB='a'b\n", "line 5: text after the closing quote");
	assert_non_null(strstr(err, kit));
}

static void test_env_override(void **state __attribute__((unused)))
{
	struct config cfg;

	setenv("POLL_INTERVAL_SECONDS", "9", 1);
	setenv("OMOP_DB_SERVICE_NAME", "env-db", 1);
	setenv("FLIP_HOLD_TASK_TYPES", "", 1); /* empty in the environment: the file's */
	assert_int_equal(load(HUB_KEYS "POLL_INTERVAL_SECONDS=7\nOMOP_DB_HOST=file-db\n"
					"FLIP_HOLD_TASK_TYPES=reimport_studies\n",
			      &cfg),
			 0);
	assert_int_equal(cfg.poll_interval, 9);
	assert_string_equal(cfg.omop_host, "env-db"); /* the environment beats the file */
	assert_string_equal(cfg.hold_task_types, "reimport_studies");
	config_free(&cfg);

	/* FLIP_LOG_LEVEL beats TRUST_LOG_LEVEL beats LOG_LEVEL */
	setenv("LOG_LEVEL", "error", 1);
	assert_int_equal(load(HUB_KEYS "TRUST_LOG_LEVEL=debug\n", &cfg), 0);
	assert_int_equal(cfg.log_level, LOG_ERR);
	config_free(&cfg);
	setenv("FLIP_LOG_LEVEL", "WARN", 1);
	assert_int_equal(load(HUB_KEYS, &cfg), 0);
	assert_int_equal(cfg.log_level, LOG_WARN);
	config_free(&cfg);

	/* a bad value from the environment says so */
	setenv("COHORT_QUERY_THRESHOLD", "0", 1);
	load_bad(HUB_KEYS, "COHORT_QUERY_THRESHOLD in the environment: must be a positive integer, got '0'");
	unsetenv("COHORT_QUERY_THRESHOLD");

	/* FLIP_ENV_FILE names the file when no path is given */
	write_kit(HUB_KEYS "OMOP_DB_PORT=6000\n", 0600);
	setenv("FLIP_ENV_FILE", kit, 1);
	assert_string_equal(config_default_path(), kit);
	assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), 0);
	assert_string_equal(cfg.path, kit);
	assert_int_equal(cfg.omop_port, 6000);
	config_free(&cfg);

	/* an explicitly named file that is missing is an error */
	unlink(kit);
	assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, kit));
	assert_int_equal(config_load(&cfg, kit, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
	unsetenv("FLIP_ENV_FILE");
	assert_string_equal(config_default_path(), "/etc/flip/flip.env");
}

static void test_modes(void **state __attribute__((unused)))
{
	struct config cfg;
	static const mode_t good[] = {0600, 0640, 0400, 0440};
	static const mode_t bad[] = {0644, 0604, 0660, 0666, 0602, 0620};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		write_kit(HUB_KEYS, good[i]);
		assert_int_equal(config_load(&cfg, kit, err, sizeof(err)), 0);
		config_free(&cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[256];

		write_kit(HUB_KEYS, bad[i]);
		assert_int_equal(config_load(&cfg, kit, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "%s: mode %04o ", kit, (unsigned)bad[i]);
		assert_non_null(strstr(err, want));
		snprintf(want, sizeof(want), "; run: chmod 640 %s", kit);
		assert_non_null(strstr(err, want));
	}
	write_kit(HUB_KEYS, 0644);
	assert_int_equal(config_load(&cfg, kit, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "lets other users read secrets"));
	write_kit(HUB_KEYS, 0620);
	assert_int_equal(config_load(&cfg, kit, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "lets other users change it"));
}

static void test_not_a_file(void **state __attribute__((unused)))
{
	struct config cfg;
	char link[96];

	write_kit(HUB_KEYS, 0600);
	snprintf(link, sizeof(link), "%s/link.env", dir);
	unlink(link);
	assert_int_equal(symlink(kit, link), 0);
	assert_int_equal(config_load(&cfg, link, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "symbolic link"));
	assert_non_null(strstr(err, link));
	unlink(link);

	assert_int_equal(config_load(&cfg, dir, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
}

static void test_too_large(void **state __attribute__((unused)))
{
	struct config cfg;
	size_t n = 1024 * 1024 + 10;
	char *body = malloc(n + 1);

	assert_non_null(body);
	memset(body, '#', n);
	body[n] = 0;
	assert_int_equal(load(body, &cfg), -1);
	assert_non_null(strstr(err, "larger than 1 MiB"));
	free(body);
}

static void test_aes_key(void **state __attribute__((unused)))
{
	char want[256];

	load_bad("AES_KEY_BASE64=" AES16 "\n", "decodes to 16 bytes, need exactly 32");
	snprintf(want, sizeof(want), "AES_KEY_BASE64 in %s: ", kit);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "openssl rand -base64 32"));
	load_bad("AES_KEY_BASE64=SECRET-not-base64!!\n", "AES_KEY_BASE64");
	assert_non_null(strstr(err, "not valid base64"));
	load_bad("AES_KEY_BASE64=\"" AES32 " \"\n", "not valid base64");
	load_bad("AES_KEY_BASE64=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		 "decodes to 48 bytes");
}

static void test_require_hub(void **state __attribute__((unused)))
{
	struct config cfg;
	static const struct {
		const char *body, *missing;
	} cases[] = {
		{"TRUST_API_KEY=" API_KEY "\nTRUST_API_KEY_HEADER=X\nAES_KEY_BASE64=" AES32 "\n",
		 "CENTRAL_HUB_API_URL"},
		{"CENTRAL_HUB_API_URL=https://h/api\nTRUST_API_KEY_HEADER=X\nAES_KEY_BASE64=" AES32 "\n",
		 "TRUST_API_KEY"},
		{"CENTRAL_HUB_API_URL=https://h/api\nTRUST_API_KEY=" API_KEY "\nAES_KEY_BASE64=" AES32 "\n",
		 "TRUST_API_KEY_HEADER"},
		{"CENTRAL_HUB_API_URL=https://h/api\nTRUST_API_KEY=" API_KEY "\nTRUST_API_KEY_HEADER=X\n",
		 "AES_KEY_BASE64"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[256];

		assert_int_equal(load(cases[i].body, &cfg), 0);
		assert_int_equal(config_require_hub(&cfg, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "%s is not set in %s", cases[i].missing, kit);
		if (strstr(err, want) == NULL)
			fail_msg("'%s' lacks '%s'", err, want);
		assert_null(strstr(err, "SECRET"));
		config_free(&cfg);
	}
	/* the environment completes a half-written kit */
	setenv("AES_KEY_BASE64", AES32, 1);
	assert_int_equal(load(cases[3].body, &cfg), 0);
	assert_int_equal(config_require_hub(&cfg, err, sizeof(err)), 0);
	config_free(&cfg);
}

static void test_integers(void **state __attribute__((unused)))
{
	struct config cfg;
	char want[256];

	load_bad(HUB_KEYS "COHORT_QUERY_THRESHOLD=0\n", "must be a positive integer, got '0'");
	snprintf(want, sizeof(want), "COHORT_QUERY_THRESHOLD in %s: ", kit);
	assert_non_null(strstr(err, want));
	load_bad(HUB_KEYS "COHORT_QUERY_THRESHOLD=-1\n", "must be a positive integer, got '-1'");
	load_bad(HUB_KEYS "COHORT_QUERY_THRESHOLD=junk\n", "must be a positive integer, got 'junk'");
	load_bad(HUB_KEYS "COHORT_QUERY_THRESHOLD=10abc\n", "got '10abc'");
	load_bad(HUB_KEYS "COHORT_QUERY_THRESHOLD=+10\n", "got '+10'");
	load_bad(HUB_KEYS "COHORT_QUERY_THRESHOLD=1.5\n", "got '1.5'");
	load_bad(HUB_KEYS "COHORT_QUERY_THRESHOLD=99999999999999999999999\n", "positive integer");
	load_bad(HUB_KEYS "POLL_INTERVAL_SECONDS=3601\n", "must be an integer from 1 to 3600");
	load_bad(HUB_KEYS "OMOP_DB_PORT=65536\n", "OMOP_DB_PORT");
	load_bad(HUB_KEYS "PACS_DICOM_PORT=0\n", "from 1 to 65535, got '0'");
	load_bad(HUB_KEYS "NUM_AVAILABLE_GPUS=-1\n", "from 0 to 1024");
	load_bad(HUB_KEYS "SNAPSHOT_MAX_BYTES=0\n", "SNAPSHOT_MAX_BYTES");
	assert_int_equal(load(HUB_KEYS "COHORT_QUERY_THRESHOLD=007\nNUM_AVAILABLE_GPUS=0\n"
					"SNAPSHOT_MAX_BYTES=10737418240\n",
			      &cfg),
			 0);
	assert_int_equal(cfg.cohort_threshold, 7);
	assert_int_equal(cfg.num_gpus, 0);
	assert_true(cfg.snapshot_max_bytes == 10737418240LL);
	config_free(&cfg);
}

static void test_values(void **state __attribute__((unused)))
{
	struct config cfg;

	load_bad("CENTRAL_HUB_API_URL=ftp://hub/api\n",
		 "must start with https:// (or http:// for a test hub)");
	load_bad("CENTRAL_HUB_API_URL=hub.example/api\n", "must start with https://");
	load_bad("CENTRAL_HUB_API_URL=https:///api\n", "host");
	assert_int_equal(load("CENTRAL_HUB_API_URL=http://localhost:8000/api\n", &cfg), 0);
	assert_string_equal(cfg.hub_url, "http://localhost:8000/api");
	config_free(&cfg);

	load_bad("FLIP_SPOOL_DIR=spool\n", "FLIP_SPOOL_DIR");
	assert_non_null(strstr(err, "absolute path"));
	load_bad("FLIP_STATE_DIR=/var/lib/../etc\n", "'..'");
	load_bad("FLIP_LOG_DIR=/var/log/flip/..\n", "'..'");
	load_bad("FLIP_LOG_DIR=./log\n", "absolute");
	load_bad("BASE_IMAGES_DOWNLOAD_DIR=../images\n", "'..'");
	assert_int_equal(load("FLIP_LOG_DIR=/var/log/a..b//\n", &cfg), 0);
	assert_string_equal(cfg.log_dir, "/var/log/a..b");
	config_free(&cfg);

	load_bad("FLIP_HOLD_TASK_TYPES=cohort_query,drop_tables\n", "unknown task type 'drop_tables'");
	load_bad("FLIP_HOLD_TASK_TYPES=Cohort_Query\n", "unknown task type 'Cohort_Query'");
	assert_int_equal(load("FLIP_HOLD_TASK_TYPES=update_user_profile,\n", &cfg), 0);
	assert_string_equal(cfg.hold_task_types, "update_user_profile");
	assert_true(config_hold_type(&cfg, "update_user_profile"));
	config_free(&cfg);

	load_bad("TRUST_API_KEY_HEADER=X Trust\n", "not a valid HTTP header name");
	load_bad("TRUST_INTERNAL_SERVICE_KEY_HEADER=X:Key\n", "TRUST_INTERNAL_SERVICE_KEY_HEADER");
	load_bad("PACS_RETRIEVE=fetch\n", "must be get or move, got 'fetch'");
	load_bad("IMAGING_BACKEND=orthanc\n", "must be native or xnat");
	load_bad("FL_BACKEND=pytorch\n", "must be nvflare or flower");
	load_bad("OMOP_DB_SSLMODE=on\n", "must be disable, allow, prefer, require, verify-ca or verify-full");
	load_bad("REIMPORT_STUDIES_ENABLED=maybe\n", "must be true or false");
	load_bad("FLIP_LOG_LEVEL=loud\n", "FLIP_LOG_LEVEL");
	load_bad("LOG_LEVEL=loud\n", "LOG_LEVEL in");
	load_bad("PACS_AETITLE=THIS_IS_TOO_LONG_X\n", "1 to 16");
	load_bad("FL_KIT_SLOT=../Trust_2\n", "FL_KIT_SLOT");
	load_bad("EXPECTED_TRUST_ID=trust-2\n", "must be a UUID");
	load_bad("PACS_HOST='pacs local'\n", "white space");
}

static void test_ignored_keys(void **state __attribute__((unused)))
{
	struct config cfg;
	char out[4096], path[128];
	int fd, saved;
	ssize_t n;

	/* catch the debug lines on stderr */
	snprintf(path, sizeof(path), "%s/stderr", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	assert_int_equal(load(HUB_KEYS "FLIP_LOG_LEVEL=debug\n"
					"DATA_ACCESS_API_URL=http://data-access-api:8000\n"
					"IMAGING_API_URL=http://imaging-api:8000\n"
					"XNAT_URL=http://xnat:8080\nXNAT_SERVICE_USER_PASSWORD=SECRET\n"
					"TRUST_NAME=Trust_1\nFL_SITE_PRIVACY_POLICY=percentile\n"
					"HTTP_PROXY=http://proxy:3128\nXNAT_URL=http://xnat:8081\n",
			      &cfg),
			 0);
	dup2(saved, STDERR_FILENO);
	close(saved);
	log_set_level(LOG_ERR);
	config_free(&cfg);
	n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	out[n] = 0;
	assert_non_null(strstr(out, "ignoring DATA_ACCESS_API_URL (used only by FLIP's containers)"));
	assert_non_null(strstr(out, "ignoring XNAT_SERVICE_USER_PASSWORD (used only"));
	assert_non_null(strstr(out, "ignoring TRUST_NAME"));
	assert_null(strstr(out, "ignoring FL_SITE_PRIVACY_POLICY"));	/* kept for flip-fl */
	assert_non_null(strstr(out, "HTTP_PROXY in "));
	assert_non_null(strstr(out, "has no effect"));
	assert_null(strstr(out, "ignoring FLIP_LOG_LEVEL"));
	assert_null(strstr(out, "ignoring CENTRAL_HUB_API_URL"));
	/* one line per key, and never a value */
	assert_non_null(strstr(out, "ignoring XNAT_URL"));
	assert_null(strstr(strstr(out, "ignoring XNAT_URL") + 1, "ignoring XNAT_URL"));
	assert_null(strstr(out, "SECRET"));
	assert_null(strstr(out, "xnat:80"));
	assert_null(strstr(out, "proxy:3128"));
}

/* FLIP's docker kits give some folders relative to the kit: they resolve beside it */
static void test_relative_kit_paths(void **state __attribute__((unused)))
{
	struct config cfg;
	char want[600];

	assert_int_equal(load(HUB_KEYS "BASE_IMAGES_DOWNLOAD_DIR=./data/trust\n"
				       "FL_KIT_DIR=fl-kit/\n", &cfg), 0);
	snprintf(want, sizeof(want), "%s/data/trust", dir);
	assert_string_equal(cfg.images_dir, want);
	snprintf(want, sizeof(want), "%s/fl-kit", dir);
	assert_string_equal(cfg.fl_kit_dir, want);
	config_free(&cfg);
	load_bad(HUB_KEYS "BASE_IMAGES_DOWNLOAD_DIR=../elsewhere\n", "BASE_IMAGES_DOWNLOAD_DIR");
	load_bad(HUB_KEYS "FLIP_SPOOL_DIR=./spool\n", "FLIP_SPOOL_DIR");
}

/* FL_SITE_PRIVACY_* are kept as text for flip-fl, the environment overriding the file */
static void test_fl_privacy_keys(void **state __attribute__((unused)))
{
	struct config cfg;

	setenv("FL_SITE_PRIVACY_GAMMA", "0.05", 1);
	assert_int_equal(load(HUB_KEYS "FL_SITE_PRIVACY_POLICY=percentile\n"
				       "FL_SITE_PRIVACY_PERCENTILE=10\nFL_SITE_PRIVACY_GAMMA=0.01\n"
				       "FL_SITE_PRIVACY_SVT_EPSILON=\n", &cfg), 0);
	unsetenv("FL_SITE_PRIVACY_GAMMA");
	assert_int_equal(json_object_size(cfg.fl_privacy), 3);
	assert_string_equal(json_string_value(json_object_get(cfg.fl_privacy,
							      "FL_SITE_PRIVACY_POLICY")), "percentile");
	assert_string_equal(json_string_value(json_object_get(cfg.fl_privacy,
							      "FL_SITE_PRIVACY_GAMMA")), "0.05");
	assert_null(json_object_get(cfg.fl_privacy, "FL_SITE_PRIVACY_SVT_EPSILON"));
	config_free(&cfg);
}

/* the kit file's proxy is honoured (hospitals allow outbound HTTPS only through one) */
static void test_proxy(void **state __attribute__((unused)))
{
	struct config cfg;

	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
	assert_int_equal(load(HUB_KEYS "HTTPS_PROXY=http://user:pw@proxy.trust.nhs.uk:3128\n"
				       "NO_PROXY=localhost,127.0.0.1\n", &cfg), 0);
	assert_string_equal(cfg.https_proxy, "http://user:pw@proxy.trust.nhs.uk:3128");
	assert_string_equal(cfg.no_proxy, "localhost,127.0.0.1");
	config_free(&cfg);
	/* the environment wins, lower case first as curl reads it */
	setenv("https_proxy", "http://envproxy:8080", 1);
	assert_int_equal(load(HUB_KEYS "HTTPS_PROXY=http://fileproxy:3128\n", &cfg), 0);
	assert_string_equal(cfg.https_proxy, "http://envproxy:8080");
	config_free(&cfg);
	unsetenv("https_proxy");
	assert_int_equal(load(HUB_KEYS, &cfg), 0);
	assert_null(cfg.https_proxy);
	config_free(&cfg);
}

static void test_no_secret_in_messages(void **state __attribute__((unused)))
{
	/* control characters in secrets: the problem and the length, not the value */
	load_bad("TRUST_API_KEY=\"SECRET\tkey\"\n", "TRUST_API_KEY");
	assert_non_null(strstr(err, "control character (10 characters)"));
	load_bad("TRUST_INTERNAL_SERVICE_KEY=\"SECRET\x01\"\n", "TRUST_INTERNAL_SERVICE_KEY");
	load_bad("DATA_ACCESS_POSTGRES_PASSWORD=\"SECRET\x7f\"\n", "DATA_ACCESS_POSTGRES_PASSWORD");
	load_bad("AES_KEY_BASE64=\"SECRET\x02\"\n", "AES_KEY_BASE64");
	load_bad("AES_KEY_BASE64=SECRET" AES16 "\n", "AES_KEY_BASE64");
	/* a malformed line is named by number only */
	load_bad("SECRET-on-a-line-by-itself\n", "line 1");
	load_bad("TRUST_API_KEY='SECRET'x\n", "line 1");
	/* the env path of a secret too */
	setenv("TRUST_API_KEY", "SECRET\x03", 1);
	load_bad(HUB_KEYS, "TRUST_API_KEY in the environment");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_every_key, setup),
		cmocka_unit_test_setup(test_defaults, setup),
		cmocka_unit_test_setup(test_syntax, setup),
		cmocka_unit_test_setup(test_syntax_errors, setup),
		cmocka_unit_test_setup(test_env_override, setup),
		cmocka_unit_test_setup(test_modes, setup),
		cmocka_unit_test_setup(test_not_a_file, setup),
		cmocka_unit_test_setup(test_too_large, setup),
		cmocka_unit_test_setup(test_aes_key, setup),
		cmocka_unit_test_setup(test_require_hub, setup),
		cmocka_unit_test_setup(test_integers, setup),
		cmocka_unit_test_setup(test_values, setup),
		cmocka_unit_test_setup(test_ignored_keys, setup),
		cmocka_unit_test_setup(test_proxy, setup),
		cmocka_unit_test_setup(test_fl_privacy_keys, setup),
		cmocka_unit_test_setup(test_relative_kit_paths, setup),
		cmocka_unit_test_setup(test_no_secret_in_messages, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
