/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bundle - the support tarball of `flipctl bundle` (docs/design/operations.md), safe to mail.
 *
 * SYNOPSIS
 *	#include "bin/flipctl/bundle.h"
 *
 *	int bundle_write(struct node *n, const char *path, const char *problem,
 *			 unsigned flags, struct bundle_result *res, char *err, size_t errlen);
 *	int bundle_default_name(struct node *n, time_t now, char *out, size_t outlen);
 *	json_t *bundle_versions(void);
 *	json_t *bundle_config(const struct config *cfg);
 *	int bundle_tail(int dirfd, const char *name, size_t max_lines, size_t max_bytes,
 *			struct bundle_tail *t);
 *	int bundle_scrub(char **buf, size_t *len, const struct bundle_secret *s,
 *			 size_t nsecrets, unsigned *count);
 *
 * DESCRIPTION
 *	bundle_write() writes a gzip'd tar (libarchive, pax) to path, or to
 *	bundle_default_name() in the current directory when path is NULL. Every
 *	member is a text file in one folder, flip-bundle-<label>-<UTC stamp>/:
 *
 *	  README.txt		what the bundle is, what it holds, what it never holds
 *	  versions.json		bundle_versions()
 *	  config.json		{"file", "file_mode", "keys": bundle_config()}
 *	  status.json		status_collect() (flipctl status --json: the last hub
 *				answer, spool counts by state with the oldest age, each
 *				program's last run, imaging counts, the FL client), or
 *				{"error": problem} when the spool could not be opened
 *	  audit-verify.json	audit_verify() of FLIP_LOG_DIR/audit.log
 *	  logs/NAME		the last BUNDLE_TAIL_LINES lines, within the last
 *				BUNDLE_TAIL_BYTES, of each regular file directly in
 *				FLIP_LOG_DIR (audit.log and its rotations included; at most
 *				BUNDLE_MAX_LOGS files, the newest; links and dot files not read).
 *				The vendor FL client's own output (BUNDLE_FL_CLIENT_LOG*) only
 *				with flags BUNDLE_WITH_FL_CLIENT_LOG: it is the FL framework's
 *				and the researcher's training code's, outside the node's rule of
 *				counts and fingerprints only, and may name accessions or
 *				values; without the flag it is listed as skipped, with why
 *	  metrics/NAME.prom	each .prom file of FLIP_STATE_DIR/metrics, at most
 *				BUNDLE_PROM_MAX
 *	  manifest.json		every member above with its source, size, lines kept,
 *				"cut" when a cap dropped anything, and "redacted", the number
 *				of secret values replaced; what was skipped and why; the
 *				categories never included
 *
 *	Never included: the kit file, secrets, job payloads and SQL, results, cohort
 *	snapshots, imaging data, the FL kit, the de-identification key. Nothing is read
 *	from the spool's jobs. The configuration is an allow-list (config_public()):
 *	secrets appear only as "set", the AES key and the API key with the 12-hex
 *	fingerprints flipctl doctor and key-hash already show. As a second guard every
 *	member, the logs above all, passes bundle_scrub() with this node's secret values
 *	(API key, AES key as base64, raw bytes and hex, internal service key, database
 *	password, proxy URL and its credentials, the hub URL's credentials, the
 *	de-identification key raw and hex) before it is written.
 *
 *	The file is written as `.<name>.tmp.<pid>` in the target's directory (O_EXCL,
 *	O_NOFOLLOW, mode 0600), fsynced, and renamed into place with RENAME_NOREPLACE
 *	(link + unlink where the file system lacks it): an existing file, directory or
 *	symbolic link at path is never replaced nor followed, and a reader never sees
 *	half a bundle. On success res holds the path, size, SHA-256 and counts, and an
 *	"operator.bundle" audit event records size, SHA-256 and counts (when n has the
 *	audit trail open). problem (may be NULL) says why n has no spool open.
 *
 *	bundle_default_name() is flip-bundle-<label>-<YYYYMMDDTHHMMSSZ>.tar.gz, label the
 *	trust name of the last heartbeat answer, else the host name, reduced to
 *	[A-Za-z0-9._-].
 *
 *	bundle_versions() is {"flip_node", "libraries": {name: version}, "kernel":
 *	uname(2), "os": PRETTY_NAME, ID, VERSION_ID, VERSION_CODENAME of /etc/os-release}.
 *	Runtime versions where the library reports one; libpg_query and dcmtk are the
 *	versions compiled against.
 *
 *	bundle_config() is config_public() plus "fingerprint" on AES_KEY_BASE64 (the
 *	hub's aes_key_fingerprint) and TRUST_API_KEY (the first 12 hex of key-hash).
 *
 *	bundle_tail() reads at most the last max_bytes of a regular file (O_NOFOLLOW)
 *	and keeps its last max_lines whole lines: a line cut by the byte window is
 *	dropped, never shown in part. t->text is malloc'd and NUL-terminated.
 *
 *	bundle_scrub() replaces every occurrence of each secret (non-empty ones) in the
 *	malloc'd buffer with BUNDLE_REDACTED, reallocating as needed and wiping the
 *	buffers it replaces; *count is the number of replacements.
 *
 * DIAGNOSTICS
 *	bundle_write() returns 0, or -1 with errno set and a one-line message in err
 *	(EEXIST: something is at path already; nothing is left behind). A log that
 *	cannot be read is listed in the manifest's "skipped", not an error.
 *	bundle_tail() and bundle_scrub() return 0, or -1 with errno set. Nothing is
 *	printed.
 */
#ifndef FLIP_BUNDLE_H
#define FLIP_BUNDLE_H

#include <stddef.h>
#include <time.h>
#include <jansson.h>

#include "lib/config.h"
#include "lib/node.h"

#define BUNDLE_TAIL_LINES 200
#define BUNDLE_TAIL_BYTES (1u << 20)
#define BUNDLE_MAX_LOGS 64
#define BUNDLE_PROM_MAX (256u << 10)
#define BUNDLE_REDACTED "[REDACTED]"
#define BUNDLE_FL_CLIENT_LOG "fl-client.log"	/* flip-fl's capture of the client's output */
#define BUNDLE_WITH_FL_CLIENT_LOG 1u		/* bundle_write() flag */

struct bundle_result {
	char path[4096];		/* where the bundle was written */
	unsigned long long bytes;
	char sha256[65];
	unsigned members;		/* files in the tarball */
	unsigned cut;			/* members a cap shortened */
	unsigned redacted;		/* secret values replaced, over all members */
};

struct bundle_tail {
	char *text;			/* whole lines, NUL-terminated */
	size_t len;
	unsigned long long source_bytes; /* the file's size when it was read */
	size_t lines;			/* lines kept */
	int cut;			/* 1 when lines were dropped */
};

struct bundle_secret {
	const void *data;
	size_t len;
};

int bundle_write(struct node *n, const char *path, const char *problem, unsigned flags,
		 struct bundle_result *res, char *err, size_t errlen);
int bundle_default_name(struct node *n, time_t now, char *out, size_t outlen);
json_t *bundle_versions(void);
json_t *bundle_config(const struct config *cfg);
int bundle_tail(int dirfd, const char *name, size_t max_lines, size_t max_bytes,
		struct bundle_tail *t);
int bundle_scrub(char **buf, size_t *len, const struct bundle_secret *s, size_t nsecrets,
		 unsigned *count);

#endif
