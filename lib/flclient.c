/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flclient - flip-fl's record of the FL client (see flclient.h for the contract).
 *
 * Why start times. A pid alone may name another process after the client died
 * and the kernel reused the number; the start time in /proc/<pid>/stat tells
 * them apart, so flip-fl never signals or trusts a stranger.
 *
 * Only the record is here: starting, watching and stopping the client are
 * flip-fl's alone (bin/flip-fl/supervisor.c).
 */
#include "lib/flclient.h"

#include "lib/durable.h"
#include "lib/node.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define FLCLIENT_LOG_TAIL (1L << 20)

/* flclient_proc - state letter and start time (field 22) of /proc/<pid>/stat */
int flclient_proc(long pid, char *state, unsigned long long *ticks)
{
	char path[64], buf[1024], *p, *save = NULL, *tok;
	ssize_t n;
	int fd, field = 3;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	/* the command name is in parentheses and may hold anything: skip to the last ')' */
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return -1;
	for (tok = strtok_r(p + 2, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		if (field == 3)
			*state = tok[0];
		if (field == 22) {
			*ticks = strtoull(tok, NULL, 10);
			return 0;
		}
	}
	return -1;
}

/* flclient_alive - pid runs, is not a zombie, and started at ticks */
int flclient_alive(long pid, unsigned long long ticks)
{
	unsigned long long t;
	char state;

	if (pid <= 0 || ticks == 0 || flclient_proc(pid, &state, &t) < 0)
		return 0;
	return t == ticks && state != 'Z' && state != 'X' && state != 'x';
}

/* flclient_lock - the FL lock: one flip-fl at a time changes the client's state */
int flclient_lock(const struct flclient *fc, int wait)
{
	int fd = openat(fc->statefd, FLCLIENT_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			0600);

	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR)
			continue;
		close(fd);
		return errno == EWOULDBLOCK ? -2 : -1;
	}
	return fd;
}

/* flclient_num - a number member, 0 when absent */
static double flclient_num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : 0;
}

/* flclient_exit_read - the exit members of client.json and exit.json */
static void flclient_exit_read(json_t *o, struct flclient_exit *e)
{
	e->known = json_is_true(json_object_get(o, "known"));
	e->code = json_is_integer(json_object_get(o, "code"))
			  ? (int)json_integer_value(json_object_get(o, "code"))
			  : -1;
	e->signal = (int)flclient_num(o, "signal");
}

/* flclient_load - client.json, or a blank state when there is none */
int flclient_load(const struct flclient *fc, struct flclient_state *st)
{
	char *data;
	size_t len;
	json_t *doc;
	json_error_t jerr;
	const char *reason;

	memset(st, 0, sizeof(*st));
	if (durable_read(fc->statefd, FLCLIENT_STATE, FLCLIENT_STATE_MAX, &data, &len) < 0)
		return errno == ENOENT ? 0 : -1;
	doc = json_loadb(data, len, 0, &jerr);
	free(data);
	if (!json_is_object(doc)) {
		json_decref(doc);
		errno = EINVAL;
		return -1;
	}
	st->pid = (long)flclient_num(doc, "pid");
	st->ticks = (unsigned long long)json_integer_value(json_object_get(doc, "ticks"));
	st->pgid = (long)flclient_num(doc, "pgid");
	st->pgid_ticks = (unsigned long long)json_integer_value(json_object_get(doc, "pgid_ticks"));
	st->started_at = flclient_num(doc, "started_at");
	st->restarts = (long)flclient_num(doc, "restarts");
	st->backoff = flclient_num(doc, "backoff");
	st->next_start_at = flclient_num(doc, "next_start_at");
	reason = json_string_value(json_object_get(doc, "last_reason"));
	snprintf(st->last_reason, sizeof(st->last_reason), "%s", reason ? reason : "");
	flclient_exit_read(json_object_get(doc, "last_exit"), &st->last_exit);
	st->last_exit_at = flclient_num(doc, "last_exit_at");
	json_decref(doc);
	return 0;
}

/* flclient_exit_json - an exit as client.json keeps it */
static json_t *flclient_exit_json(const struct flclient_exit *e)
{
	return json_pack("{s:b, s:i, s:i}", "known", e->known, "code", e->code, "signal",
			 e->signal);
}

/* flclient_save - client.json, atomically */
int flclient_save(const struct flclient *fc, const struct flclient_state *st)
{
	json_t *doc = json_pack("{s:I, s:I, s:I, s:I, s:f, s:I, s:f, s:f, s:s, s:o, s:f}", "pid",
				(json_int_t)st->pid, "ticks", (json_int_t)st->ticks, "pgid",
				(json_int_t)st->pgid, "pgid_ticks", (json_int_t)st->pgid_ticks,
				"started_at", st->started_at, "restarts", (json_int_t)st->restarts,
				"backoff", st->backoff, "next_start_at", st->next_start_at,
				"last_reason", st->last_reason, "last_exit",
				flclient_exit_json(&st->last_exit), "last_exit_at",
				st->last_exit_at);
	int rc;

	if (doc == NULL) {
		errno = ENOMEM;
		return -1;
	}
	rc = durable_write_json(fc->statefd, FLCLIENT_STATE, doc, 0600);
	json_decref(doc);
	return rc;
}

/* flclient_stopped - the stop flag is set */
int flclient_stopped(const struct flclient *fc)
{
	return faccessat(fc->statefd, FLCLIENT_FLAG, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* flclient_set_stopped - set (1) or clear (0) the stop flag */
int flclient_set_stopped(const struct flclient *fc, int on)
{
	if (on) {
		char text[64];
		int n = snprintf(text, sizeof(text), "stopped at %.0f by flip-fl stop\n",
				 node_now());
		return durable_write(fc->statefd, FLCLIENT_FLAG, text, (size_t)n, 0600);
	}
	if (unlinkat(fc->statefd, FLCLIENT_FLAG, 0) < 0 && errno != ENOENT)
		return -1;
	return durable_fsync_dir(fc->statefd);
}

/* flclient_read_exit - exit.json for this client, if the waiter wrote it */
int flclient_read_exit(const struct flclient *fc, const struct flclient_state *st,
		       struct flclient_exit *e, double *at)
{
	char *data;
	size_t len;
	json_t *doc;
	json_error_t jerr;
	int rc = -1;

	if (durable_read(fc->statefd, FLCLIENT_EXIT, FLCLIENT_STATE_MAX, &data, &len) < 0)
		return -1;
	doc = json_loadb(data, len, 0, &jerr);
	free(data);
	if ((long)flclient_num(doc, "pid") == st->pid &&
	    (unsigned long long)json_integer_value(json_object_get(doc, "ticks")) == st->ticks) {
		flclient_exit_read(doc, e);
		e->known = 1;
		*at = flclient_num(doc, "at");
		rc = 0;
	}
	json_decref(doc);
	return rc;
}

/* ---- progress in the client's log ------------------------------------------------ */

enum flclient_mark { FLC_JOB, FLC_ROUND_START, FLC_ROUND_END, FLC_ABORT };

/*
 * The lines NVFLARE prints that tell where the client is, in one table:
 * a job arriving at the client, a round starting and finishing, an abort. Each
 * is a POSIX extended regular expression matched without regard to case;
 * sub-expression 1, when present, is the job id or the round number.
 */
static const struct flclient_pattern {
	enum flclient_mark mark;
	const char *re;
} flclient_patterns[] = {
	{FLC_JOB, "received new job[^A-Za-z0-9]*([A-Za-z0-9][A-Za-z0-9_-]{2,63})?"},
	{FLC_JOB, "got (the|a new|new) job[^A-Za-z0-9]*([A-Za-z0-9][A-Za-z0-9_-]{2,63})?"},
	{FLC_ROUND_START, "round ([0-9]{1,9}) started"},
	{FLC_ROUND_END, "round ([0-9]{1,9}) finished"},
	{FLC_ABORT, "abort"},
};
#define FLCLIENT_NPATTERNS (sizeof(flclient_patterns) / sizeof(flclient_patterns[0]))

static regex_t flclient_regex[FLCLIENT_NPATTERNS];
static int flclient_regex_ready; /* 1 compiled, -1 failed */

/* flclient_progress_line - update p from one line of the client's output */
void flclient_progress_line(struct flclient_progress *p, const char *line)
{
	regmatch_t m[3];

	if (flclient_regex_ready == 0) {
		flclient_regex_ready = 1;
		for (size_t i = 0; i < FLCLIENT_NPATTERNS; i++)
			if (regcomp(&flclient_regex[i], flclient_patterns[i].re,
				    REG_EXTENDED | REG_ICASE) != 0)
				flclient_regex_ready = -1;
	}
	if (flclient_regex_ready < 0)
		return;
	for (size_t i = 0; i < FLCLIENT_NPATTERNS; i++) {
		const regmatch_t *g;
		size_t len;

		if (regexec(&flclient_regex[i], line, 3, m, 0) != 0)
			continue;
		/* the last sub-expression that matched holds the id or the number */
		g = m[2].rm_so >= 0 ? &m[2] : &m[1];
		len = g->rm_so >= 0 ? (size_t)(g->rm_eo - g->rm_so) : 0;
		switch (flclient_patterns[i].mark) {
		case FLC_JOB:
			if (len >= sizeof(p->job))
				len = sizeof(p->job) - 1;
			if (len > 0)
				memcpy(p->job, line + g->rm_so, len);
			p->job[len > 0 ? len : 0] = 0;
			if (len == 0)
				snprintf(p->job, sizeof(p->job), "(unnamed)");
			p->round = -1;
			p->round_state[0] = 0;
			p->aborted = 0;
			break;
		case FLC_ROUND_START:
		case FLC_ROUND_END:
			p->round = strtol(line + g->rm_so, NULL, 10);
			snprintf(p->round_state, sizeof(p->round_state), "%s",
				 flclient_patterns[i].mark == FLC_ROUND_START ? "started"
									       : "finished");
			break;
		case FLC_ABORT:
			p->aborted = 1;
			break;
		}
		return; /* one mark per line: the first pattern in the table wins */
	}
}

/* flclient_progress - scan the end of the client's log */
void flclient_progress(const char *log_path, struct flclient_progress *p)
{
	char *buf, *line, *nl;
	struct stat sb;
	off_t from = 0;
	ssize_t n;
	size_t have = 0;
	int fd;

	memset(p, 0, sizeof(*p));
	p->round = -1;
	fd = open(log_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    (buf = malloc(FLCLIENT_LOG_TAIL + 1)) == NULL) {
		close(fd);
		return;
	}
	if (sb.st_size > FLCLIENT_LOG_TAIL)
		from = sb.st_size - FLCLIENT_LOG_TAIL;
	while (have < FLCLIENT_LOG_TAIL &&
	       (n = pread(fd, buf + have, FLCLIENT_LOG_TAIL - have, from + (off_t)have)) > 0)
		have += (size_t)n;
	close(fd);
	buf[have] = 0;
	line = buf;
	if (from > 0 && (nl = memchr(buf, '\n', have)) != NULL)
		line = nl + 1; /* the first line was cut */
	while (line < buf + have) {
		nl = memchr(line, '\n', (size_t)(buf + have - line));
		if (nl != NULL)
			*nl = 0;
		for (char *c = line; *c; c++)
			if (*c == '\r')
				*c = ' ';
		flclient_progress_line(p, line);
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	free(buf);
}

/* flclient_exit_text - an exit for people */
static const char *flclient_exit_text(const struct flclient_exit *e, char *buf, size_t len)
{
	if (!e->known)
		snprintf(buf, len, "unknown");
	else if (e->signal)
		snprintf(buf, len, "killed by signal %d (%s)", e->signal, strsignal(e->signal));
	else
		snprintf(buf, len, "exit %d", e->code);
	return buf;
}

/* flclient_status - the client's state, for status and the heartbeat */
json_t *flclient_status(const struct flclient *fc, double now)
{
	struct flclient_state st;
	struct flclient_progress pr;
	json_t *doc, *last = json_null(), *prog;
	char text[96];
	int running;

	if (flclient_load(fc, &st) < 0)
		memset(&st, 0, sizeof(st));
	running = st.pid > 0 && flclient_alive(st.pid, st.ticks);
	if (st.last_reason[0])
		last = json_pack("{s:s, s:s, s:f}", "reason", st.last_reason, "status",
				 strcmp(st.last_reason, "exited") == 0
					 ? flclient_exit_text(&st.last_exit, text, sizeof(text))
					 : st.last_reason,
				 "at", st.last_exit_at);
	flclient_progress(fc->log_path, &pr);
	prog = json_pack("{s:o, s:o, s:o, s:b}", "job", pr.job[0] ? json_string(pr.job) : json_null(),
			 "round", pr.round >= 0 ? json_integer(pr.round) : json_null(),
			 "round_state", pr.round_state[0] ? json_string(pr.round_state) : json_null(),
			 "aborted", pr.aborted);
	doc = json_pack("{s:b, s:o, s:o, s:o, s:I, s:f, s:o, s:b, s:o, s:o}", "running", running,
			"pid", running ? json_integer(st.pid) : json_null(), "started_at",
			running ? json_real(st.started_at) : json_null(), "uptime_seconds",
			running ? json_real(now - st.started_at) : json_null(), "restarts",
			(json_int_t)st.restarts, "backoff_seconds", st.backoff, "next_start_at",
			!running && st.next_start_at > now ? json_real(st.next_start_at) : json_null(),
			"stopped", flclient_stopped(fc), "last_exit", last ? last : json_null(),
			"progress", prog ? prog : json_null());
	return doc;
}
