/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config - the node's configuration: FLIP's kit file plus environment overrides
 * (see config.h for the contract). This file holds the table of keys and loads,
 * frees and checks the whole; config_file.c reads the file, config_value.c checks
 * each value, config_public.c shows the configuration to a third party
 * (config_internal.h: what they share).
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

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lib/config_internal.h"
#include "lib/err.h"
#include "lib/log.h"

#define CONFIG_DEFAULT_PATH "/etc/flip/flip.env"

static const char *const config_sslmodes[] = {"disable", "allow", "prefer", "require",
					      "verify-ca", "verify-full", NULL};
static const char *const config_imaging[] = {"native", "xnat", NULL};
static const char *const config_retrieve[] = {"get", "move", NULL};
static const char *const config_fl[] = {"nvflare", "flower", NULL};

#define PORT 1, 65535

/* Every key of docs/design/operations.md, with its default. */
const struct config_key config_keys[] = {
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

const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);

/* config_default_path - the file config_load(cfg, NULL, ...) reads */
const char *config_default_path(void)
{
	const char *p = getenv("FLIP_ENV_FILE");

	return p != NULL && *p != 0 ? p : CONFIG_DEFAULT_PATH;
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
		err_set(err, errlen, "out of memory");
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
		return err_set(err, errlen,
			       "%s is not set: no config file at %s and not in the environment",
			       missing, CONFIG_DEFAULT_PATH);
	return err_set(err, errlen, "%s is not set in %s (nor in the environment)", missing,
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
