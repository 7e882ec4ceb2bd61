/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit - the tamper-evident audit trail, FLIP_LOG_DIR/audit.log (docs/design/operations.md).
 *
 * SYNOPSIS
 *	#include "lib/audit.h"
 *
 *	int audit_open(struct audit *a, const char *log_dir, const char *prog);
 *	int audit_event(struct audit *a, const char *event, const char *task_id,
 *			const char *task_type, json_t *detail);
 *	void audit_close(struct audit *a);
 *	int audit_batch_begin(struct audit *a);
 *	int audit_batch_end(struct audit *a);
 *	int audit_verify(const char *path, struct audit_verdict *v);
 *	int audit_rotate(const char *log_dir, char *err, size_t errlen);
 *
 * DESCRIPTION
 *	One JSON object per line, appended with O_APPEND under an exclusive flock on
 *	the file and fsynced before the lock is released:
 *	  {"ts": RFC 3339 UTC with ms, "prog", "pid", "event", "task_id" (or null),
 *	   "task_type" (or null), "detail": {...}, "prev": <hash of the previous line>,
 *	   "hash": <hex SHA-256>}
 *	The hash covers the line's own text without its hash member: the line is
 *	written as TEXT + `,"hash":"<h>"}` + "\n" where TEXT is the object's text up to
 *	(not including) its closing brace and h = SHA-256(TEXT + "}"). `prev` of the
 *	first line of the first file is 64 zeros. The previous hash is read from the
 *	last line of the file under the lock, so concurrent programs chain correctly.
 *	detail (may be NULL) is stolen (json_decref'd by audit_event); it carries only
 *	counts, categories and fingerprints: never SQL, keys, accession numbers,
 *	patient identifiers or row values.
 *
 *	audit_batch_begin() takes the lock and reads the chain's last hash once;
 *	audit_event() calls until audit_batch_end() only build their lines in memory,
 *	and audit_batch_end() appends them in one write, fsyncs once and unlocks. A
 *	program that records many events at once (flip-poll spooling 50 tasks) pays
 *	one fsync instead of fifty. Other writers wait on the lock meanwhile, so keep
 *	the batch short and free of I/O other than the caller's own.
 *
 *	audit_rotate() renames audit.log to audit.log.<UTC timestamp> and starts a new
 *	file whose first line, event "audit.rotated", has prev = the old file's last
 *	hash and detail {"previous_file": name}.
 *
 *	audit_verify() walks a file and fills v: lines checked, and for the first bad
 *	line its number and the reason ("hash mismatch", "prev does not match line N",
 *	"not JSON", "truncated line"). Returns 0 when the chain is intact, 1 when broken,
 *	-1 when the file cannot be read.
 *
 * DIAGNOSTICS
 *	audit_open/audit_event return 0 or -1 with errno set; nothing is printed.
 */
#ifndef FLIP_AUDIT_H
#define FLIP_AUDIT_H

#include <stddef.h>
#include <jansson.h>

struct audit {
	int fd;
	int dirfd;		/* FLIP_LOG_DIR: to reopen audit.log after a rotation */
	char prog[32];
	int batch;		/* inside audit_batch_begin/end: lines collect in buf */
	char last[65];		/* batch: the hash the next line chains to */
	char *buf;
	size_t len, cap;
};

struct audit_verdict {
	long lines;		/* lines checked */
	long bad_line;		/* 1-based number of the first bad line, 0 when intact */
	char reason[128];
	char first_prev[65];	/* prev of the first line (the chain's anchor) */
	char last_hash[65];	/* hash of the last good line */
};

int audit_open(struct audit *a, const char *log_dir, const char *prog);
int audit_event(struct audit *a, const char *event, const char *task_id,
		const char *task_type, json_t *detail);
void audit_close(struct audit *a);
int audit_batch_begin(struct audit *a);
int audit_batch_end(struct audit *a);
int audit_verify(const char *path, struct audit_verdict *v);
int audit_rotate(const char *log_dir, char *err, size_t errlen);

#endif
