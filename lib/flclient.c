/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flclient - keep the vendor FL client running (see flclient.h for the contract).
 *
 * Why a waiter process. flip-fl runs for a moment every 30 s, so the client it
 * starts cannot be its child for long, and only a parent learns a child's exit
 * status. The waiter (`flip-fl supervise`) is that parent: small, freshly
 * executed (no configuration, no secrets in its memory), sleeping in waitpid(2)
 * and writing exit.json when the client ends. If the waiter itself is killed,
 * the client's exit is still noticed (its pid is gone), only its status is
 * "unknown".
 *
 * Why start times. A pid alone may name another process after the client died
 * and the kernel reused the number; the start time in /proc/<pid>/stat tells
 * them apart, so flip-fl never signals or trusts a stranger.
 *
 * Why the whole process group. NVFLARE's sub_start.sh starts Python in the
 * background; killing the script leaves Python running, and a second client
 * with the same identity would then be refused by the server. Everything the
 * client starts stays in the waiter's process group (the client never calls
 * setsid), so the group is what is stopped and what is cleaned up after a crash.
 * A group id cannot be reused while any member is alive, so a group that still
 * has members after our client is one we made.
 */
#include "lib/flclient.h"

#include "lib/durable.h"
#include "lib/fluser.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FLCLIENT_STATE "client.json"
#define FLCLIENT_EXIT "exit.json"
#define FLCLIENT_FLAG "stopped"
#define FLCLIENT_LOCK ".lock"
#define FLCLIENT_STATE_MAX (64 * 1024)
#define FLCLIENT_LOG_TAIL (1L << 20)
#define FLCLIENT_REPORT_WAIT_MS 10000	/* the waiter reports the client's pid */
#define FLCLIENT_LEFTOVER_GRACE 5.0	/* group members left after a crash */

/* flclient_err - message into err; always returns -1 */
__attribute__((format(printf, 3, 4))) static int flclient_err(char *err, size_t errlen,
							      const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* flclient_sleep - sleep s seconds, whatever signals arrive */
static void flclient_sleep(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* flclient_now - wall-clock seconds */
static double flclient_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* flclient_proc - state letter and start time (field 22) of /proc/<pid>/stat */
static int flclient_proc(long pid, char *state, unsigned long long *ticks)
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

/*
 * flclient_kill - kill(2) with the privilege it takes: the client runs as its own
 * user, so a flip-fl started as root (entered as the node's user, fluser.h) takes
 * the effective uid 0 back for the call
 */
static int flclient_kill(pid_t pid, int sig)
{
	int rc, e;

	fluser_privileged(1);
	rc = kill(pid, sig);
	e = errno;
	fluser_privileged(0);
	errno = e;
	return rc;
}

/* flclient_group_alive - the process group has a member we may signal */
static int flclient_group_alive(long pgid)
{
	return pgid > 1 && flclient_kill((pid_t)-pgid, 0) == 0;
}

/* flclient_group_wait - wait up to secs for the group to be gone; 1 when it is */
static int flclient_group_wait(long pgid, double secs)
{
	double end = flclient_now() + secs;

	while (flclient_group_alive(pgid)) {
		if (flclient_now() >= end)
			return 0;
		flclient_sleep(0.05);
	}
	return 1;
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
				 flclient_now());
		return durable_write(fc->statefd, FLCLIENT_FLAG, text, (size_t)n, 0600);
	}
	if (unlinkat(fc->statefd, FLCLIENT_FLAG, 0) < 0 && errno != ENOENT)
		return -1;
	return durable_fsync_dir(fc->statefd);
}

/* flclient_start - fork the waiter, which forks the client; fills pid, ticks, pgid */
static int flclient_start(const struct flclient *fc, struct flclient_state *st, char *err,
			  size_t errlen)
{
	char report[64];
	const char *argv[8];
	char **env = NULL;
	int p[2] = {-1, -1}, logfd = -1, nullfd = -1, exitfd = -1, status, rc = -1;
	pid_t w;
	size_t got = 0;
	char state;

	argv[0] = "flip-fl";
	argv[1] = "supervise";
	argv[2] = fc->state_dir;
	argv[3] = "--";
	if (fc->command != NULL) {
		argv[4] = "/bin/sh";
		argv[5] = "-c";
		argv[6] = fc->command;
		argv[7] = NULL;
	} else {
		argv[4] = "./sub_start.sh";
		argv[5] = NULL;
	}
	logfd = open(fc->log_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (logfd < 0) {
		flclient_err(err, errlen, "cannot open the client's log %s: %s", fc->log_path,
			     strerror(errno));
		goto out;
	}
	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	env = fluser_env(fc->cfg, fc->client);
	/* the waiter, as the client's user, cannot open the state folder: it writes
	 * the client's exit into this file, made here as the node's user */
	exitfd = openat(fc->statefd, FLCLIENT_EXIT, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
			O_CLOEXEC, 0600);
	if (nullfd < 0 || env == NULL || exitfd < 0 || pipe2(p, O_CLOEXEC) < 0) {
		flclient_err(err, errlen, "cannot prepare the client's start: %s", strerror(errno));
		goto out;
	}
	w = fork();
	if (w < 0) {
		flclient_err(err, errlen, "cannot fork: %s", strerror(errno));
		goto out;
	}
	if (w == 0) {
		char why[256];

		/* the waiter-to-be: its own session, the log for output, nothing else open,
		 * and the client's user for good before anything of the client runs */
		if (setsid() < 0 || dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0 ||
		    dup2(p[1], 3) < 0 || dup2(exitfd, 4) < 0)
			_exit(127);
		if (fluser_become(fc->client, why, sizeof(why)) < 0) {
			dprintf(2, "flip-fl: %s\n", why);
			_exit(126);
		}
		if (chdir(fc->startup) < 0) {
			dprintf(2, "flip-fl: the FL client's user %s cannot enter %s: %s\n",
				fc->client->name, fc->startup, strerror(errno));
			_exit(126);
		}
		closefrom(5);
		execve(fc->self, (char *const *)(uintptr_t)argv, env);
		dprintf(2, "flip-fl: cannot execute %s as the FL client's waiter: %s\n", fc->self,
			strerror(errno));
		_exit(127);
	}
	close(p[1]);
	p[1] = -1;
	/* the waiter writes "<client pid> <client start time>\n" once it has forked */
	for (;;) {
		struct pollfd pfd = {p[0], POLLIN, 0};
		ssize_t n;
		int pr = poll(&pfd, 1, FLCLIENT_REPORT_WAIT_MS);

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			break;
		n = read(p[0], report + got, sizeof(report) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(report, '\n', got) || got >= sizeof(report) - 1)
			break;
	}
	report[got] = 0;
	if (sscanf(report, "%ld %llu", &st->pid, &st->ticks) != 2 || st->pid <= 0) {
		if (waitpid(w, &status, WNOHANG) == w && WIFEXITED(status))
			flclient_err(err, errlen, "the client's waiter failed (exit %d); see %s",
				     WEXITSTATUS(status), fc->log_path);
		else
			flclient_err(err, errlen, "the client's waiter did not report; see %s",
				     fc->log_path);
		st->pid = 0;
		goto out;
	}
	st->pgid = (long)w;
	/* the waiter is our child until we exit: its stat stays readable even as a zombie */
	if (flclient_proc((long)w, &state, &st->pgid_ticks) < 0)
		st->pgid_ticks = 0;
	rc = 0;
out:
	fluser_env_free(env);
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	if (logfd >= 0)
		close(logfd);
	if (nullfd >= 0)
		close(nullfd);
	if (exitfd >= 0)
		close(exitfd);
	return rc;
}

/* flclient_read_exit - exit.json for this client, if the waiter wrote it */
static int flclient_read_exit(const struct flclient *fc, const struct flclient_state *st,
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

/* flclient_reap_group - terminate what is left of the client's process group */
static void flclient_reap_group(long pgid, double grace)
{
	if (!flclient_group_alive(pgid))
		return;
	flclient_kill((pid_t)-pgid, SIGTERM);
	if (!flclient_group_wait(pgid, grace)) {
		flclient_kill((pid_t)-pgid, SIGKILL);
		(void)flclient_group_wait(pgid, 2.0);
	}
}

/* flclient_supervise - one look at the client: record an exit, start when due */
int flclient_supervise(const struct flclient *fc, double now, int now_please,
		       struct flclient_outcome *o, char *err, size_t errlen)
{
	struct flclient_state st;
	int saved_needed = 0;

	memset(o, 0, sizeof(*o));
	if (flclient_load(fc, &st) < 0)
		return flclient_err(err, errlen,
				    "%s/" FLCLIENT_STATE ": unreadable (%s); remove it if the "
				    "client is not running",
				    fc->state_dir, strerror(errno));
	o->restarts = st.restarts;
	o->backoff = st.backoff;
	if (flclient_stopped(fc)) {
		o->stopped = 1;
		return 0;
	}
	if (st.pid > 0 && flclient_alive(st.pid, st.ticks)) {
		o->running = 1;
		o->pid = st.pid;
		/* healthy long enough: the next exit starts the backoff from its base again */
		if (st.backoff != 0 && now - st.started_at >= fc->healthy_after) {
			st.backoff = 0;
			o->backoff = 0;
			if (flclient_save(fc, &st) < 0)
				return flclient_err(err, errlen, "cannot write %s/" FLCLIENT_STATE ": %s",
						    fc->state_dir, strerror(errno));
		}
		return 0;
	}
	if (st.pid > 0) {
		struct flclient_exit e = {0, -1, 0};
		double at = 0;

		/* the waiter writes exit.json just after the client ends: give it a moment */
		for (int i = 0; i < 40 && flclient_read_exit(fc, &st, &e, &at) < 0; i++) {
			if (!flclient_alive(st.pgid, st.pgid_ticks))
				break;
			flclient_sleep(0.05);
		}
		if (!e.known)
			at = now;
		flclient_reap_group(st.pgid, FLCLIENT_LEFTOVER_GRACE);
		o->exited = 1;
		o->exited_pid = st.pid;
		o->exit = e;
		o->uptime = at - st.started_at;
		if (st.backoff == 0 || o->uptime >= fc->healthy_after)
			st.backoff = fc->backoff_base;
		else
			st.backoff = st.backoff * 2 > fc->backoff_max ? fc->backoff_max
								     : st.backoff * 2;
		st.next_start_at = at + st.backoff;
		snprintf(st.last_reason, sizeof(st.last_reason), "exited");
		st.last_exit = e;
		st.last_exit_at = at;
		st.pid = 0;
		st.ticks = 0;
		o->backoff = st.backoff;
		saved_needed = 1;
	}
	if (now < st.next_start_at && !now_please) {
		o->wait = st.next_start_at - now;
		if (saved_needed && flclient_save(fc, &st) < 0)
			return flclient_err(err, errlen, "cannot write %s/" FLCLIENT_STATE ": %s",
					    fc->state_dir, strerror(errno));
		return 0;
	}
	if (flclient_start(fc, &st, err, errlen) < 0) {
		if (saved_needed)
			(void)flclient_save(fc, &st);
		return -1;
	}
	/* a restart is a start after an exit that came after the previous start */
	if (strcmp(st.last_reason, "exited") == 0 && st.last_exit_at >= st.started_at)
		st.restarts++;
	st.started_at = now;
	st.next_start_at = 0;
	o->started = 1;
	o->pid = st.pid;
	o->restarts = st.restarts;
	if (flclient_save(fc, &st) < 0)
		return flclient_err(err, errlen,
				    "started the client (pid %ld) but cannot record it in "
				    "%s/" FLCLIENT_STATE ": %s",
				    st.pid, fc->state_dir, strerror(errno));
	return 0;
}

/* flclient_run_stop_script - startup/stop_fl.sh, bounded by the deadline */
static int flclient_run_stop_script(const struct flclient *fc, double deadline)
{
	char path[4096];
	char *const argv[] = {(char *)(uintptr_t) "./stop_fl.sh", NULL};
	char **env;
	int status, logfd;
	pid_t pid;

	if (snprintf(path, sizeof(path), "%s/stop_fl.sh", fc->startup) >= (int)sizeof(path) ||
	    access(path, X_OK) < 0)
		return -1;
	logfd = open(fc->log_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	env = fluser_env(fc->cfg, fc->client);
	if (env == NULL) {
		if (logfd >= 0)
			close(logfd);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		int nullfd = open("/dev/null", O_RDONLY);
		if (nullfd < 0 || dup2(nullfd, 0) < 0)
			_exit(127);
		if (logfd >= 0 && (dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0))
			_exit(127);
		/* the kit's script is the client's: it runs as the client's user */
		if (fluser_become(fc->client, path, sizeof(path)) < 0 || chdir(fc->startup) < 0)
			_exit(126);
		closefrom(3);
		execve(argv[0], argv, env);
		_exit(127);
	}
	fluser_env_free(env);
	if (logfd >= 0)
		close(logfd);
	if (pid < 0)
		return -1;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (r < 0 && errno != EINTR)
			return -1;
		if (flclient_now() >= deadline) {
			flclient_kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return 128 + SIGKILL;
		}
		flclient_sleep(0.05);
	}
}

/* flclient_stop - SIGTERM, stop_fl.sh, SIGKILL after the grace period */
int flclient_stop(const struct flclient *fc, double now, struct flclient_stop *r, char *err,
		  size_t errlen)
{
	struct flclient_state st;
	int client_ours, waiter_ours;
	double deadline = flclient_now() + fc->grace;

	memset(r, 0, sizeof(*r));
	r->script_rc = -1;
	if (flclient_load(fc, &st) < 0)
		return flclient_err(err, errlen, "%s/" FLCLIENT_STATE ": unreadable (%s)",
				    fc->state_dir, strerror(errno));
	client_ours = st.pid > 0 && flclient_alive(st.pid, st.ticks);
	waiter_ours = st.pgid > 0 && flclient_alive(st.pgid, st.pgid_ticks);
	r->pid = st.pid;
	if (client_ours || waiter_ours) {
		r->was_running = client_ours;
		flclient_kill((pid_t)-st.pgid, SIGTERM);
		r->script_rc = flclient_run_stop_script(fc, deadline);
		if (!flclient_group_wait(st.pgid, deadline - flclient_now())) {
			flclient_kill((pid_t)-st.pgid, SIGKILL);
			r->forced = 1;
			(void)flclient_group_wait(st.pgid, 2.0);
		}
	}
	if (st.pid > 0 || st.pgid > 0) {
		st.pid = 0;
		st.ticks = 0;
		st.pgid = 0;
		st.pgid_ticks = 0;
		snprintf(st.last_reason, sizeof(st.last_reason), "stopped");
		memset(&st.last_exit, 0, sizeof(st.last_exit));
		st.last_exit.code = -1;
		st.last_exit_at = now;
		/* a stop is not a crash: the next start is immediate and the backoff fresh */
		st.backoff = 0;
		st.next_start_at = 0;
		if (flclient_save(fc, &st) < 0)
			return flclient_err(err, errlen, "cannot write %s/" FLCLIENT_STATE ": %s",
					    fc->state_dir, strerror(errno));
	}
	return 0;
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

/* ---- the waiter ------------------------------------------------------------------ */

/* flclient_waiter - `flip-fl supervise STATE_DIR -- ARGV...`: run the client, record its end */
int flclient_waiter(const char *state_dir, char **argv)
{
	struct sigaction ign = {.sa_handler = SIG_IGN}, dfl = {.sa_handler = SIG_DFL};
	unsigned long long ticks = 0;
	char state, *text;
	size_t len;
	int status;
	pid_t pid, r;
	json_t *doc;

	/* outlive the client's SIGTERM so that its status is written */
	sigaction(SIGTERM, &ign, NULL);
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGHUP, &ign, NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "flip-fl supervise: cannot fork the FL client: %s\n",
			strerror(errno));
		return 1;
	}
	if (pid == 0) {
		sigset_t none;

		sigaction(SIGTERM, &dfl, NULL);
		sigaction(SIGINT, &dfl, NULL);
		sigaction(SIGHUP, &dfl, NULL);
		sigaction(SIGPIPE, &dfl, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close(3);
		close(4);
		execvp(argv[0], argv);
		fprintf(stderr, "flip-fl supervise: cannot run the FL client %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	/* not reaped before the report: its stat is readable even if it already ended */
	if (flclient_proc((long)pid, &state, &ticks) < 0)
		ticks = 0;
	dprintf(3, "%ld %llu\n", (long)pid, ticks);
	close(3);
	while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (r != pid)
		return 1;
	if (WIFSIGNALED(status))
		fprintf(stderr, "flip-fl supervise: the FL client (pid %ld) was killed by signal %d\n",
			(long)pid, WTERMSIG(status));
	else
		fprintf(stderr, "flip-fl supervise: the FL client (pid %ld) exited with status %d\n",
			(long)pid, WEXITSTATUS(status));
	doc = json_pack("{s:I, s:I, s:i, s:i, s:f}", "pid", (json_int_t)pid, "ticks",
			(json_int_t)ticks, "code", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			"signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0, "at", flclient_now());
	/* fd 4: state_dir/exit.json, opened by flip-fl (this user cannot open it) */
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	len = text ? strlen(text) : 0;
	if (text == NULL || ftruncate(4, 0) < 0 || pwrite(4, text, len, 0) != (ssize_t)len ||
	    fsync(4) < 0)
		fprintf(stderr, "flip-fl supervise: cannot record the exit in %s/" FLCLIENT_EXIT
				": %s\n",
			state_dir, strerror(errno));
	free(text);
	json_decref(doc);
	return 0;
}
