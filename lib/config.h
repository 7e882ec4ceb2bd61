/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config - the node's configuration: FLIP's kit file plus environment overrides.
 *
 * SYNOPSIS
 *	#include "lib/config.h"
 *
 *	int config_load(struct config *cfg, const char *path, char *err, size_t errlen);
 *	void config_free(struct config *cfg);
 *	const char *config_default_path(void);
 *	json_t *config_public(const struct config *cfg);
 *	int config_require_hub(const struct config *cfg, char *err, size_t errlen);
 *	bool config_hold_type(const struct config *cfg, const char *task_type);
 *
 * DESCRIPTION
 *	config_load() reads the kit file at path (NULL: $FLIP_ENV_FILE, else
 *	/etc/flip/flip.env): `KEY=value` lines, `#` comments, blank lines, an optional
 *	leading `export `, values optionally in matching single or double quotes, no
 *	shell expansion. A value in the process environment overrides the file's.
 *	The file must be a regular file (opened O_NOFOLLOW) that others cannot read or
 *	write and the group cannot write (0600 or 0640); anything else is refused with
 *	the mode to set. Every key of docs/design/operations.md is validated here, at start-up, with
 *	a message naming the key, the problem and the file; keys only FLIP's containers
 *	use are ignored (one debug line each). Defaults are those of docs/design/operations.md.
 *
 *	The AES key is decoded here (standard base64 of exactly 32 bytes, else an error
 *	saying how many bytes were found). Secrets (API key, AES key, internal key,
 *	database password) live only in this structure and are wiped by config_free().
 *
 *	Required keys are checked by the programs that need them (config_require_*),
 *	so that flipctl can run on a half-written kit: config_require_hub() returns
 *	0 when the hub keys are all set (CENTRAL_HUB_API_URL, TRUST_API_KEY,
 *	TRUST_API_KEY_HEADER, AES_KEY_BASE64), else -1 with a message in err naming
 *	the first one missing and where it was looked for.
 *
 *	config_hold_type() is true when task_type is one of FLIP_HOLD_TASK_TYPES.
 *
 *	config_public() is the configuration as it may be shown to a third party
 *	(flipctl bundle): {KEY: value} for every key above under its first name, in
 *	this order, then the FL_SITE_PRIVACY_* keys. A value is shown only when its
 *	kind cannot hold a secret (an allow-list: numbers, booleans, choices, paths,
 *	header names, host names, AE titles, UUIDs, task types, the log level, and the
 *	few free-text keys named in config_public.c) and its name does not look like one
 *	(PASSWORD, SECRET, TOKEN, CREDENTIAL, PRIVATE, a *_KEY); unset is null. Every
 *	other key, a new kind included until it is listed, is {"redacted": true,
 *	"set": bool}. URLs lose any user:password@, query and fragment; the proxy URL
 *	is redacted but keeps "shown": scheme://host:port.
 *
 * DIAGNOSTICS
 *	config_load() returns 0, or -1 with a one-line message in err (the program
 *	exits 2). Nothing is printed.
 */
#ifndef FLIP_CONFIG_H
#define FLIP_CONFIG_H

#include <stddef.h>
#include <stdbool.h>
#include <jansson.h>

#define CONFIG_AES_KEY_LEN 32

struct config {
	char *path;		/* the file that was read ("" when none) */

	/* hub */
	char *hub_url;		/* CENTRAL_HUB_API_URL, no trailing slash; http:// or https:// */
	char *api_key;		/* TRUST_API_KEY (secret) */
	char *api_key_header;	/* TRUST_API_KEY_HEADER */
	unsigned char aes_key[CONFIG_AES_KEY_LEN]; /* decoded AES_KEY_BASE64 (secret) */
	bool have_aes_key;
	char *aes_key_b64;	/* AES_KEY_BASE64 text (secret: the cohort-admin proof hashes it) */
	char *expected_trust_id; /* EXPECTED_TRUST_ID, NULL when unset/empty */
	int poll_interval;	/* POLL_INTERVAL_SECONDS, 1..3600, default 5 */
	char *ca_bundle;	/* FLIP_CA_BUNDLE, NULL = system store */
	char *https_proxy;	/* https_proxy / HTTPS_PROXY (may hold credentials: secret) */
	char *no_proxy;		/* no_proxy / NO_PROXY */
	char *hold_task_types;	/* FLIP_HOLD_TASK_TYPES, comma separated, validated names; NULL = none */

	/* internal endpoints */
	char *internal_key;	/* TRUST_INTERNAL_SERVICE_KEY (secret) */
	char *internal_key_header; /* default X-Trust-Internal-Service-Key */

	/* OMOP */
	char *omop_host;	/* OMOP_DB_HOST or OMOP_DB_SERVICE_NAME */
	int omop_port;		/* OMOP_DB_PORT, default 5432 */
	char *omop_db;		/* OMOP_POSTGRES_DB */
	char *omop_user;	/* DATA_ACCESS_POSTGRES_USER */
	char *omop_password;	/* DATA_ACCESS_POSTGRES_PASSWORD (secret) */
	char *omop_sslmode;	/* OMOP_DB_SSLMODE, libpq's values, NULL = libpq default */
	long cohort_threshold;	/* COHORT_QUERY_THRESHOLD, positive, default 10 */
	long cohort_timeout;	/* COHORT_QUERY_TIMEOUT_SECONDS, positive, default 300 */
	char *access_policy_file; /* ACCESS_POLICY_FILE, NULL = none */
	long long snapshot_max_bytes; /* SNAPSHOT_MAX_BYTES, default 2 GiB */

	/* imaging */
	char *imaging_backend;	/* IMAGING_BACKEND: native (default) or xnat */
	char *pacs_host;	/* PACS_HOST */
	int pacs_port;		/* PACS_DICOM_PORT, default 4242 */
	char *pacs_aetitle;	/* PACS_AETITLE, default ORTHANC (1..16 chars) */
	char *flip_aetitle;	/* FLIP_AETITLE, default FLIPNODE */
	char *pacs_retrieve;	/* PACS_RETRIEVE: get (default) or move */
	int flip_dicom_port;	/* FLIP_DICOM_PORT, default 11112 */
	bool reimport_enabled;	/* REIMPORT_STUDIES_ENABLED, default true */
	bool deid_allow_burned_in; /* DEID_ALLOW_BURNED_IN, default false */
	char *images_dir;	/* BASE_IMAGES_DOWNLOAD_DIR, default /opt/flip/data/images */
	long image_retention_hours; /* IMAGE_CACHE_RETENTION_HOURS, default 168 */

	/* FL */
	char *fl_kit_dir;	/* FL_KIT_DIR, default /opt/flip/fl-kit */
	char *fl_kit_slot;	/* FL_KIT_SLOT */
	bool fl_kit_require_signature; /* FL_KIT_REQUIRE_SIGNATURE, default no */
	char *fl_kit_root_ca_sha256; /* FL_KIT_ROOT_CA_SHA256: the pinned root, optional */
	char *fl_backend;	/* FL_BACKEND: nvflare (default) or flower */
	char *fl_client_command; /* FL_CLIENT_COMMAND */
	char *fl_client_user;	/* FL_CLIENT_USER, default flip-fl */
	int fl_server_port;	/* FL_SERVER_PORT, default 8002 */
	char *nlb_subdomain;	/* NLB_SUBDOMAIN */
	int num_gpus;		/* NUM_AVAILABLE_GPUS, default 1 */
	json_t *fl_privacy;	/* every FL_SITE_PRIVACY_* key: {"FL_SITE_PRIVACY_X": "text"},
				   from the file, the environment overriding; flip-fl's
				   privacy module checks them (empty values are unset) */
	int memory_per_gpu_gib;	/* MEMORY_PER_GPU_IN_GIB, default 16 */

	/* node */
	char *spool_dir;	/* FLIP_SPOOL_DIR, default /var/spool/flip, absolute */
	char *state_dir;	/* FLIP_STATE_DIR, default /var/lib/flip, absolute */
	char *log_dir;		/* FLIP_LOG_DIR, default /var/log/flip, absolute */
	int log_level;		/* FLIP_LOG_LEVEL / TRUST_LOG_LEVEL / LOG_LEVEL: LOG_* of log.h, default info */
	long done_retention_days; /* FLIP_DONE_RETENTION_DAYS, default 30 */
	long transient_give_up;	/* FLIP_TRANSIENT_GIVE_UP_SECONDS, default 600 */
};

const char *config_default_path(void);
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);
void config_free(struct config *cfg);
json_t *config_public(const struct config *cfg);

/* config_require_hub - the hub keys are present (URL, API key and header, AES key). */
int config_require_hub(const struct config *cfg, char *err, size_t errlen);

/* config_hold_type - true when task_type is listed in FLIP_HOLD_TASK_TYPES. */
bool config_hold_type(const struct config *cfg, const char *task_type);

#endif
