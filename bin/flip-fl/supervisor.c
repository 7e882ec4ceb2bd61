/* SPDX-License-Identifier: Apache-2.0 */
/*
 * supervisor - keep the vendor FL client running (see supervisor.h for the contract).
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
 * them apart, so flip-fl never signals or trusts a stranger (lib/flclient.h).
 *
 * Why the whole process group. NVFLARE's sub_start.sh starts Python in the
 * background; killing the script leaves Python running, and a second client
 * with the same identity would then be refused by the server. Everything the
 * client starts stays in the waiter's process group (the client never calls
 * setsid), so the group is what is stopped and what is cleaned up after a crash.
 * A group id cannot be reused while any member is alive, so a group that still
 * has members after our client is one we made.
 */
#include "bin/flip-fl/supervisor.h"

#include "lib/err.h"
#include "lib/flclient.h"
#include "lib/fluser.h"
#include "lib/node.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUPERVISOR_REPORT_WAIT_MS 10000	/* the waiter reports the client's pid */
#define SUPERVISOR_LEFTOVER_GRACE 5.0	/* group members left after a crash */

/* supervisor_sleep - sleep s seconds, whatever signals arrive */
static void supervisor_sleep(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * supervisor_kill - kill(2) with the privilege it takes: the client runs as its own
 * user, so a flip-fl started as root (entered as the node's user, fluser.h) takes
 * the effective uid 0 back for the call
 */
static int supervisor_kill(pid_t pid, int sig)
{
	int rc, e;

	fluser_privileged(1);
	rc = kill(pid, sig);
	e = errno;
	fluser_privileged(0);
	errno = e;
	return rc;
}

/* supervisor_group_alive - the process group has a member we may signal */
static int supervisor_group_alive(long pgid)
{
	return pgid > 1 && supervisor_kill((pid_t)-pgid, 0) == 0;
}

/* supervisor_group_wait - wait up to secs for the group to be gone; 1 when it is */
static int supervisor_group_wait(long pgid, double secs)
{
	double end = node_now() + secs;

	while (supervisor_group_alive(pgid)) {
		if (node_now() >= end)
			return 0;
		supervisor_sleep(0.05);
	}
	return 1;
}

/* supervisor_start - fork the waiter, which forks the client; fills pid, ticks, pgid */
static int supervisor_start(const struct supervisor *sv, struct flclient_state *st, char *err,
			    size_t errlen)
{
	const struct flclient *fc = &sv->rec;
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
	if (sv->command != NULL) {
		argv[4] = "/bin/sh";
		argv[5] = "-c";
		argv[6] = sv->command;
		argv[7] = NULL;
	} else {
		argv[4] = "./sub_start.sh";
		argv[5] = NULL;
	}
	logfd = open(fc->log_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (logfd < 0) {
		err_set(err, errlen, "cannot open the client's log %s: %s", fc->log_path,
			strerror(errno));
		goto out;
	}
	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	env = fluser_env(sv->cfg, sv->client);
	/* the waiter, as the client's user, cannot open the state folder: it writes
	 * the client's exit into this file, made here as the node's user */
	exitfd = openat(fc->statefd, FLCLIENT_EXIT, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
			O_CLOEXEC, 0600);
	if (nullfd < 0 || env == NULL || exitfd < 0 || pipe2(p, O_CLOEXEC) < 0) {
		err_set(err, errlen, "cannot prepare the client's start: %s", strerror(errno));
		goto out;
	}
	w = fork();
	if (w < 0) {
		err_set(err, errlen, "cannot fork: %s", strerror(errno));
		goto out;
	}
	if (w == 0) {
		char why[256];

		/* the waiter-to-be: its own session, the log for output, nothing else open,
		 * and the client's user for good before anything of the client runs */
		if (setsid() < 0 || dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0 ||
		    dup2(p[1], 3) < 0 || dup2(exitfd, 4) < 0)
			_exit(127);
		if (fluser_become(sv->client, why, sizeof(why)) < 0) {
			dprintf(2, "flip-fl: %s\n", why);
			_exit(126);
		}
		if (chdir(sv->startup) < 0) {
			dprintf(2, "flip-fl: the FL client's user %s cannot enter %s: %s\n",
				sv->client->name, sv->startup, strerror(errno));
			_exit(126);
		}
		closefrom(5);
		execve(sv->self, (char *const *)(uintptr_t)argv, env);
		dprintf(2, "flip-fl: cannot execute %s as the FL client's waiter: %s\n", sv->self,
			strerror(errno));
		_exit(127);
	}
	close(p[1]);
	p[1] = -1;
	/* the waiter writes "<client pid> <client start time>\n" once it has forked */
	for (;;) {
		struct pollfd pfd = {p[0], POLLIN, 0};
		ssize_t n;
		int pr = poll(&pfd, 1, SUPERVISOR_REPORT_WAIT_MS);

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
			err_set(err, errlen, "the client's waiter failed (exit %d); see %s",
				WEXITSTATUS(status), fc->log_path);
		else
			err_set(err, errlen, "the client's waiter did not report; see %s",
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


/* supervisor_reap_group - terminate what is left of the client's process group */
static void supervisor_reap_group(long pgid, double grace)
{
	if (!supervisor_group_alive(pgid))
		return;
	supervisor_kill((pid_t)-pgid, SIGTERM);
	if (!supervisor_group_wait(pgid, grace)) {
		supervisor_kill((pid_t)-pgid, SIGKILL);
		(void)supervisor_group_wait(pgid, 2.0);
	}
}

/* supervisor_run - one look at the client: record an exit, start when due */
int supervisor_run(const struct supervisor *sv, double now, int now_please,
		   struct supervisor_outcome *o, char *err, size_t errlen)
{
	const struct flclient *fc = &sv->rec;
	struct flclient_state st;
	int saved_needed = 0;

	memset(o, 0, sizeof(*o));
	if (flclient_load(fc, &st) < 0)
		return err_set(err, errlen,
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
		if (st.backoff != 0 && now - st.started_at >= sv->healthy_after) {
			st.backoff = 0;
			o->backoff = 0;
			if (flclient_save(fc, &st) < 0)
				return err_set(err, errlen,
					       "cannot write %s/" FLCLIENT_STATE ": %s",
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
			supervisor_sleep(0.05);
		}
		if (!e.known)
			at = now;
		supervisor_reap_group(st.pgid, SUPERVISOR_LEFTOVER_GRACE);
		o->exited = 1;
		o->exited_pid = st.pid;
		o->exit = e;
		o->uptime = at - st.started_at;
		if (st.backoff == 0 || o->uptime >= sv->healthy_after)
			st.backoff = sv->backoff_base;
		else
			st.backoff = st.backoff * 2 > sv->backoff_max ? sv->backoff_max
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
			return err_set(err, errlen, "cannot write %s/" FLCLIENT_STATE ": %s",
				       fc->state_dir, strerror(errno));
		return 0;
	}
	if (supervisor_start(sv, &st, err, errlen) < 0) {
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
		return err_set(err, errlen,
			       "started the client (pid %ld) but cannot record it in "
			       "%s/" FLCLIENT_STATE ": %s",
			       st.pid, fc->state_dir, strerror(errno));
	return 0;
}

/* supervisor_run_stop_script - startup/stop_fl.sh, bounded by the deadline */
static int supervisor_run_stop_script(const struct supervisor *sv, double deadline)
{
	const struct flclient *fc = &sv->rec;
	char path[4096];
	char *const argv[] = {(char *)(uintptr_t) "./stop_fl.sh", NULL};
	char **env;
	int status, logfd;
	pid_t pid;

	if (snprintf(path, sizeof(path), "%s/stop_fl.sh", sv->startup) >= (int)sizeof(path) ||
	    access(path, X_OK) < 0)
		return -1;
	logfd = open(fc->log_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	env = fluser_env(sv->cfg, sv->client);
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
		if (fluser_become(sv->client, path, sizeof(path)) < 0 || chdir(sv->startup) < 0)
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
		if (node_now() >= deadline) {
			supervisor_kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return 128 + SIGKILL;
		}
		supervisor_sleep(0.05);
	}
}

/* supervisor_stop - SIGTERM, stop_fl.sh, SIGKILL after the grace period */
int supervisor_stop(const struct supervisor *sv, double now, struct supervisor_stop *r, char *err,
		    size_t errlen)
{
	const struct flclient *fc = &sv->rec;
	struct flclient_state st;
	int client_ours, waiter_ours;
	double deadline = node_now() + sv->grace;

	memset(r, 0, sizeof(*r));
	r->script_rc = -1;
	if (flclient_load(fc, &st) < 0)
		return err_set(err, errlen, "%s/" FLCLIENT_STATE ": unreadable (%s)",
			       fc->state_dir, strerror(errno));
	client_ours = st.pid > 0 && flclient_alive(st.pid, st.ticks);
	waiter_ours = st.pgid > 0 && flclient_alive(st.pgid, st.pgid_ticks);
	r->pid = st.pid;
	if (client_ours || waiter_ours) {
		r->was_running = client_ours;
		supervisor_kill((pid_t)-st.pgid, SIGTERM);
		r->script_rc = supervisor_run_stop_script(sv, deadline);
		if (!supervisor_group_wait(st.pgid, deadline - node_now())) {
			supervisor_kill((pid_t)-st.pgid, SIGKILL);
			r->forced = 1;
			(void)supervisor_group_wait(st.pgid, 2.0);
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
			return err_set(err, errlen, "cannot write %s/" FLCLIENT_STATE ": %s",
				       fc->state_dir, strerror(errno));
	}
	return 0;
}

/* ---- the waiter ------------------------------------------------------------------ */

/* supervisor_waiter - `flip-fl supervise STATE_DIR -- ARGV...`: run the client, record its end */
int supervisor_waiter(const char *state_dir, char **argv)
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
			"signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0, "at", node_now());
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
