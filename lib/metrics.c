/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics - node_exporter textfile metrics (see metrics.h).
 */
#include "lib/metrics.h"

#include "lib/durable.h"
#include "lib/log.h"
#include "lib/statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define METRICS_MODE 0640
#define METRICS_MAX_FILE (4u << 20)

enum { M_GAUGE, M_COUNTER, M_KEPT };	/* M_KEPT: a gauge that keeps its value until set */

struct metrics_family {
	const char *name;	/* without flip_ */
	int kind;
	const char *help;
};

/* every series the node exports; docs/operations.md lists them for people */
static const struct metrics_family metrics_families[] = {
	{"last_run_timestamp_seconds", M_GAUGE, "Start of the program's last run (Unix time)."},
	{"last_run_success", M_GAUGE, "1 if the program's last run succeeded, else 0."},
	{"last_run_duration_seconds", M_GAUGE, "Length of the program's last run."},
	{"heartbeat_last_success_timestamp_seconds", M_KEPT,
	 "When the hub last answered a heartbeat with 200 (Unix time)."},
	{"heartbeat_answer", M_GAUGE,
	 "1 for the class of the hub's answer to the last heartbeat (ok, auth_refused, "
	 "identity_mismatch, http_error, unreachable), 0 for the others."},
	{"heartbeats_total", M_COUNTER, "Heartbeats sent, by the class of the hub's answer."},
	{"poll_tasks_fetched", M_GAUGE, "Tasks in the hub's last reply."},
	{"poll_tasks_total", M_COUNTER,
	 "Tasks fetched from the hub, by what intake did (spooled, refused, redelivered, skipped)."},
	{"spool_jobs", M_GAUGE, "Jobs per spool state."},
	{"spool_oldest_age_seconds", M_GAUGE,
	 "Age of the oldest job waiting to run (new) or to be uploaded (out); 0 when none."},
	{"filesystem_avail_bytes", M_GAUGE,
	 "Bytes free for the node's user on the file system of the spool, state or log directory."},
	{"filesystem_size_bytes", M_GAUGE,
	 "Size of the file system of the spool, state or log directory."},
	{"exec_jobs", M_GAUGE, "Jobs run in flip-exec's last run, by outcome."},
	{"tasks_total", M_COUNTER, "Jobs run to an answer, by task type and outcome."},
	{"cohort_queries_refused_total", M_COUNTER,
	 "Cohort queries answered without statistics, by reason category (counts only)."},
	{"report_results", M_GAUGE, "Results uploaded in flip-report's last run, by outcome."},
	{"report_results_total", M_COUNTER, "Results uploaded, by the hub's verdict."},
	{"report_upload_retries", M_GAUGE, "Uploads deferred for retry in flip-report's last run."},
	{"imaging_instances_retrieved", M_GAUGE,
	 "DICOM instances retrieved in the worker's last run."},
	{"imaging_bytes_retrieved", M_GAUGE, "Bytes of DICOM retrieved in the worker's last run."},
	{"imaging_studies_retrieved_total", M_COUNTER, "Studies retrieved and de-identified."},
	{"imaging_instances_retrieved_total", M_COUNTER, "DICOM instances retrieved."},
	{"imaging_retrieved_bytes_total", M_COUNTER, "Bytes of de-identified DICOM stored."},
	{"imaging_studies", M_GAUGE,
	 "Studies of each imaging project by state (queued, processing, successful, failed, "
	 "queue_failed)."},
	{"imaging_unretrieved_studies", M_GAUGE,
	 "Failed and queue_failed studies of each imaging project by reason category "
	 "(burned_in_annotation: quarantined for burned-in annotation)."},
	{"fl_kit_check_ok", M_GAUGE, "1 if the FL kit passed flip-fl check."},
	{"fl_client_cert_expiry_timestamp_seconds", M_GAUGE,
	 "When the FL kit's client certificate expires (Unix time)."},
	{"fl_client_running", M_GAUGE, "1 if the FL client is running."},
	{"fl_client_stopped", M_GAUGE, "1 if an operator stopped the FL client (flip-fl stop)."},
	{"fl_client_restarts_total", M_COUNTER, "Times flip-fl restarted the FL client."},
	{"fl_client_uptime_seconds", M_GAUGE, "How long the FL client has run; 0 when it is not."},
	{"fl_client_last_exit_code", M_GAUGE,
	 "Exit code of the FL client's last exit (-1: killed by a signal)."},
	{"fl_client_last_exit_signal", M_GAUGE,
	 "Signal that ended the FL client's last run, 0 when it exited."},
	{"fl_client_last_exit_timestamp_seconds", M_GAUGE,
	 "When the FL client last exited (Unix time)."},
	{"audit_chain_intact", M_GAUGE, "1 if flipctl audit verify found the audit chain intact."},
	{"audit_chain_lines", M_GAUGE, "Lines of the audit trail checked by flipctl audit verify."},
	{"audit_chain_last_verified_timestamp_seconds", M_GAUGE,
	 "When flipctl audit verify last checked the live audit trail (Unix time)."},
};

#define METRICS_NFAMILIES ((int)(sizeof(metrics_families) / sizeof(metrics_families[0])))

static int metrics_family_find(const char *name, size_t len)
{
	for (int i = 0; i < METRICS_NFAMILIES; i++)
		if (strlen(metrics_families[i].name) == len &&
		    memcmp(metrics_families[i].name, name, len) == 0)
			return i;
	return -1;
}

/* metrics_family_count, metrics_family_name - the list, for the unit test */
int metrics_family_count(void)
{
	return METRICS_NFAMILIES;
}

const char *metrics_family_name(int i)
{
	return i >= 0 && i < METRICS_NFAMILIES ? metrics_families[i].name : NULL;
}

/* metrics_begin - start a program's metrics */
void metrics_begin(struct metrics *m, const char *prog)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->prog, sizeof(m->prog), "%s", prog);
}

static struct metrics_sample *metrics_find(struct metrics *m, int fam, const char *labels)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->s[i].family == fam && strcmp(m->s[i].labels, labels) == 0)
			return &m->s[i];
	return NULL;
}

/* metrics_store - set, or add to, the sample of a family with rendered labels */
static void metrics_store(struct metrics *m, int fam, const char *rendered, double value,
			  int delta)
{
	struct metrics_sample *s = metrics_find(m, fam, rendered);
	size_t len = strlen(rendered);

	if (s) {
		s->value = delta && s->delta ? s->value + value : value;
		s->delta = delta && s->delta;
		return;
	}
	if (len >= sizeof(s->labels))
		return;
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		struct metrics_sample *ns = realloc(m->s, ncap * sizeof(*ns));
		if (ns == NULL)
			return;
		m->s = ns;
		m->cap = ncap;
	}
	s = &m->s[m->n++];
	s->family = fam;
	s->delta = delta;
	s->value = value;
	memcpy(s->labels, rendered, len + 1);
}

static void metrics_put(struct metrics *m, const char *name, const char *labels, double value,
			int delta)
{
	char rendered[sizeof(m->s[0].labels)];
	int fam = metrics_family_find(name, strlen(name));
	int len;

	if (fam < 0) {
		log_debug("metrics: flip_%s is not a known series; dropped", name);
		return;
	}
	len = snprintf(rendered, sizeof(rendered), "prog=\"%s\"%s%s", m->prog, labels ? "," : "",
		       labels ? labels : "");
	if (len < 0 || (size_t)len >= sizeof(rendered))
		return;
	metrics_store(m, fam, rendered, value, delta);
}

/* metrics_add - one gauge sample (or a counter's absolute value) */
void metrics_add(struct metrics *m, const char *name, const char *labels, double value)
{
	metrics_put(m, name, labels, value, 0);
}

/* metrics_count - add to a counter kept across runs */
void metrics_count(struct metrics *m, const char *name, const char *labels, double delta)
{
	metrics_put(m, name, labels, delta, 1);
}

/* metrics_label_value - a value safe inside a label's quotes */
const char *metrics_label_value(const char *v, char *buf, size_t len)
{
	size_t i = 0;

	if (v == NULL || *v == 0)
		v = "unknown";
	for (; v[i] && i + 1 < len; i++) {
		char c = v[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' || c == '-';
		buf[i] = ok ? c : '_';
	}
	buf[i] = 0;
	return buf;
}

/* metrics_spool_depth - jobs per state and the age of the oldest waiting job */
void metrics_spool_depth(struct metrics *m, struct spool *sp)
{
	for (int st = SPOOL_NEW; st < SPOOL_NSTATES; st++) {
		char **names, labels[64];
		size_t cnt;
		double age = 0;

		if (spool_list(sp, (enum spool_state)st, &names, &cnt) < 0)
			continue;
		snprintf(labels, sizeof(labels), "state=\"%s\"", spool_state_name((enum spool_state)st));
		metrics_add(m, "spool_jobs", labels, (double)cnt);
		if (st == SPOOL_NEW || st == SPOOL_OUT) {
			struct stat stt;
			if (cnt > 0 &&
			    fstatat(sp->statefd[st], names[0], &stt, AT_SYMLINK_NOFOLLOW) == 0)
				age = difftime(time(NULL), stt.st_mtime);
			metrics_add(m, "spool_oldest_age_seconds", labels, age);
		}
		spool_list_free(names, cnt);
	}
}

/* metrics_filesystems - free and total bytes where the spool, state and log live */
void metrics_filesystems(struct metrics *m, struct node *n)
{
	const char *dirs[][2] = {{"spool", n->cfg.spool_dir}, {"state", n->cfg.state_dir},
				 {"log", n->cfg.log_dir}};

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		struct statvfs vfs;
		char labels[32];

		if (dirs[i][1] == NULL || statvfs(dirs[i][1], &vfs) < 0)
			continue;
		snprintf(labels, sizeof(labels), "dir=\"%s\"", dirs[i][0]);
		metrics_add(m, "filesystem_avail_bytes", labels,
			    (double)vfs.f_bavail * (double)vfs.f_frsize);
		metrics_add(m, "filesystem_size_bytes", labels,
			    (double)vfs.f_blocks * (double)vfs.f_frsize);
	}
}

/* metrics_carry - counters and kept gauges of the previous file that this run continues */
static void metrics_carry(struct metrics *m, char *text)
{
	char prefix[48];
	int plen = snprintf(prefix, sizeof(prefix), "prog=\"%s\"", m->prog);

	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (strncmp(line, "flip_", 5) != 0)
			continue;
		char *open = strchr(line, '{'), *close = strrchr(line, '}');
		if (open == NULL || close == NULL || close < open || close[1] != ' ')
			continue;
		int fam = metrics_family_find(line + 5, (size_t)(open - line - 5));
		if (fam < 0 || metrics_families[fam].kind == M_GAUGE)
			continue;
		*close = 0;
		if (strncmp(open + 1, prefix, (size_t)plen) != 0)
			continue;
		char *end;
		double old = strtod(close + 2, &end);
		if (end == close + 2)
			continue;
		struct metrics_sample *s = metrics_find(m, fam, open + 1);
		if (s == NULL) {
			metrics_store(m, fam, open + 1, old, 0);
		} else if (s->delta) {
			s->value += old;
			s->delta = 0;
		}
	}
}

/* metrics_append - printf at off in buf; -1 when it does not fit */
static int metrics_append(char *buf, size_t cap, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int metrics_append(char *buf, size_t cap, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *off, cap - *off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *off)
		return -1;
	*off += (size_t)n;
	return 0;
}

/* metrics_render - families in list order, each with its HELP and TYPE */
static char *metrics_render(struct metrics *m, size_t *len)
{
	size_t cap = 1024 + m->n * 1024;	/* a sample, with its family's HELP and TYPE */
	char *buf = malloc(cap);
	size_t off = 0;

	if (buf == NULL)
		return NULL;
	buf[0] = 0;
	for (int f = 0; f < METRICS_NFAMILIES; f++) {
		const struct metrics_family *fam = &metrics_families[f];
		int first = 1;
		for (size_t i = 0; i < m->n; i++) {
			if (m->s[i].family != f)
				continue;
			if (first && metrics_append(buf, cap, &off,
						    "# HELP flip_%s %s\n# TYPE flip_%s %s\n", fam->name,
						    fam->help, fam->name,
						    fam->kind == M_COUNTER ? "counter" : "gauge") < 0)
				goto full;
			first = 0;
			if (metrics_append(buf, cap, &off, "flip_%s{%s} %.17g\n", fam->name,
					   m->s[i].labels, m->s[i].value) < 0)
				goto full;
		}
	}
	*len = off;
	return buf;
full:
	free(buf);
	errno = EOVERFLOW;
	return NULL;
}

/* metrics_write_all - all of data, through short writes and EINTR */
static int metrics_write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, data, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

/* metrics_write - temporary file, mode 0640 whatever the umask, then rename */
static int metrics_write(int dirfd, const char *file, const char *data, size_t len)
{
	char tmp[96];
	int fd;

	snprintf(tmp, sizeof(tmp), ".%s.tmp.%ld", file, (long)getpid());
	(void)unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, METRICS_MODE);
	if (fd < 0)
		return -1;
	/* no fsync: metrics are rewritten every run; rename keeps each file whole */
	if (fchmod(fd, METRICS_MODE) < 0 || metrics_write_all(fd, data, len) < 0) {
		int saved = errno;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return -1;
	}
	if (close(fd) < 0 || renameat(dirfd, tmp, dirfd, file) < 0) {
		int saved = errno;
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

/* metrics_commit - add to the previous counters, write the file atomically, free */
void metrics_commit(struct metrics *m, struct node *n)
{
	char file[64], *old = NULL, *text = NULL;
	size_t oldlen, len = 0;
	int fd = node_state_dirfd(n, STATEDIR_METRICS);

	snprintf(file, sizeof(file), "%s.prom", m->prog);
	if (fd < 0)
		goto fail;
	if (flock(fd, LOCK_EX) < 0)
		goto fail;
	if (durable_read(fd, file, METRICS_MAX_FILE, &old, &oldlen) == 0) {
		metrics_carry(m, old);
		free(old);
	}
	text = metrics_render(m, &len);
	if (text == NULL || metrics_write(fd, file, text, len) < 0)
		goto fail;
	goto out;
fail:
	log_debug("cannot write metrics %s: %s", file, strerror(errno));
out:
	if (fd >= 0)
		close(fd);	/* releases the flock */
	free(text);
	free(m->s);
	memset(m, 0, sizeof(*m));
}
