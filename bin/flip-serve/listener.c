/* SPDX-License-Identifier: Apache-2.0 */
/*
 * listener - how connections reach flip-serve: the one socket systemd passed, or a
 * --listen socket with one forked child per connection (see serve.h for the contract).
 *
 * The accept loop (--listen) blocks SIGTERM, SIGINT and SIGCHLD except inside
 * ppoll(), so a signal can never slip in between the check of the flags and the
 * wait (the classic race of pause()). One peer holds at most half the slots; its
 * further connections wait in a bounded queue, each at most SERVE_REQUEST_DEADLINE
 * seconds by serve_mono(), the clock of every deadline here and in http.c.
 */
#include "bin/flip-serve/serve.h"

#include "lib/err.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* serve_mono - monotonic seconds */
double serve_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* serve_same_file - two fds name the same open object */
static int serve_same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* serve_activation_fd - the connection systemd passed (fd 3 with LISTEN_FDS=1, else fd 0) */
int serve_activation_fd(char *err, size_t errlen)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	int fd = 0, type = 0, listening = 0, nfd, null;
	socklen_t len = sizeof(type);
	struct stat st;

	if (fds && strcmp(fds, "1") == 0 && pid && strtol(pid, NULL, 10) == (long)getpid())
		fd = 3;
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
		return err_set(err, errlen, "fd %d is not a stream socket: run flip-serve from "
			       "flip-serve.socket (Accept=yes, StandardInput=socket) or with "
			       "--listen ADDR", fd);
	}
	len = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
		return err_set(err, errlen, "fd %d is a listening socket: flip-serve.socket needs "
			       "Accept=yes (or run flip-serve --listen ADDR)", fd);
	}
	if (fd == 3) {
		(void)fcntl(3, F_SETFD, FD_CLOEXEC);
		return 3;
	}
	/* fd 0 (and fd 1 under inetd-style units) must not keep the connection open */
	nfd = fcntl(0, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return err_set(err, errlen, "dup: %s", strerror(errno));
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		if (serve_same_file(1, nfd))
			dup2(null, 1);
		dup2(null, 0);
		if (null > 2)
			close(null);
	}
	return nfd;
}

/* serve_listen_unix - bind an absolute path (a stale socket there is replaced) */
static int serve_listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return err_set(err, errlen, "socket path %s is too long", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(err, errlen, "%s exists and is not a socket", path);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 64) < 0) {
		err_set(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* serve_listen - listen on host:port, [v6]:port or an absolute UNIX socket path */
int serve_listen(const char *addr, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res, *ai;
	char host[256];
	const char *colon, *port;
	size_t hlen;
	int fd = -1, rc, one = 1, saved = 0;

	if (addr[0] == '/')
		return serve_listen_unix(addr, err, errlen);
	colon = strrchr(addr, ':');
	if (colon == NULL || colon == addr || colon[1] == 0) {
		return err_set(err, errlen, "--listen %s: want host:port, [v6]:port or an absolute "
			       "socket path", addr);
	}
	port = colon + 1;
	hlen = (size_t)(colon - addr);
	if (addr[0] == '[' && hlen >= 2 && addr[hlen - 1] == ']')
		addr++, hlen -= 2;
	if (hlen >= sizeof(host))
		return err_set(err, errlen, "--listen: host name too long");
	memcpy(host, addr, hlen);
	host[hlen] = 0;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		return err_set(err, errlen, "--listen %s:%s: %s", host, port, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		err_set(err, errlen, "cannot listen on %s:%s: %s", host, port, strerror(saved));
	return fd;
}

/* serve_unlisten - close the listening socket; remove a UNIX socket's path */
void serve_unlisten(const char *addr, int fd)
{
	if (fd >= 0)
		close(fd);
	if (addr && addr[0] == '/')
		unlink(addr);
}

static volatile sig_atomic_t serve_stop;

static void serve_on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		serve_stop = 1;
}

/* serve_reap - collect exited children; returns how many are still running */
static int serve_reap(pid_t *kids, int max)
{
	int running = 0, status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < max; i++)
			if (kids[i] == pid)
				kids[i] = 0;
		if (WIFSIGNALED(status))
			log_error("connection handler %ld killed by signal %d", (long)pid,
				  WTERMSIG(status));
	}
	for (int i = 0; i < max; i++)
		running += kids[i] != 0;
	return running;
}

/*
 * serve_peer - who is at the other end, for the cap per peer: the address of an
 * IPv4 or IPv6 peer (the port left out), the uid of a UNIX socket's peer.
 */
static void serve_peer(int fd, const struct sockaddr_storage *sa, char key[64])
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (sa->ss_family == AF_INET)
		snprintf(key, 64, "4:%08x",
			 (unsigned)((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);
	else if (sa->ss_family == AF_INET6) {
		const unsigned char *a =
			((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		snprintf(key, 64, "6:");
		for (int i = 0; i < 16; i++)
			snprintf(key + 2 + 2 * i, 3, "%02x", a[i]);
	} else if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		snprintf(key, 64, "u:%ld", (long)cred.uid);
	else
		snprintf(key, 64, "?");
}

/* a connection accepted while its peer had all the slots a peer may have */
struct serve_pending {
	int fd;
	char peer[64];
	double at;		/* monotonic seconds of the accept */
};

/* what serve_loop keeps between its steps */
struct serve_pool {
	int lfd, max, per_peer, npend;
	pid_t *kids;
	char (*peers)[64];
	struct serve_pending *pend;
	struct sigaction old_term, old_int, old_chld;
	sigset_t orig;
	int (*child)(int fd, void *arg);
	void *arg;
};

/* serve_peer_count - running children for this peer */
static int serve_peer_count(const struct serve_pool *sp, const char *peer)
{
	int n = 0;

	for (int i = 0; i < sp->max; i++)
		n += sp->kids[i] != 0 && strcmp(sp->peers[i], peer) == 0;
	return n;
}

/* serve_spawn - fork a child for fd in a free slot; fd is closed here */
static void serve_spawn(struct serve_pool *sp, int fd, const char *peer)
{
	int slot;
	pid_t pid;

	for (slot = 0; sp->kids[slot] != 0; slot++)
		;
	pid = fork();
	if (pid == 0) {
		sigaction(SIGTERM, &sp->old_term, NULL);
		sigaction(SIGINT, &sp->old_int, NULL);
		sigaction(SIGCHLD, &sp->old_chld, NULL);
		sigprocmask(SIG_SETMASK, &sp->orig, NULL);
		close(sp->lfd);
		for (int i = 0; i < sp->npend; i++)
			close(sp->pend[i].fd);
		_exit(sp->child(fd, sp->arg));
	}
	if (pid < 0) {
		log_error("cannot fork a connection handler: %s", strerror(errno));
	} else {
		sp->kids[slot] = pid;
		memcpy(sp->peers[slot], peer, sizeof(sp->peers[slot]));
	}
	close(fd);
}

/*
 * serve_pending_run - drop what waited longer than a request may take, then start
 * the oldest waiting connections whose peers are below their share; returns the
 * number of children running
 */
static int serve_pending_run(struct serve_pool *sp, int running)
{
	double now = serve_mono();
	int k = 0;

	for (int i = 0; i < sp->npend; i++) {
		struct serve_pending *q = &sp->pend[i];
		if (now - q->at > SERVE_REQUEST_DEADLINE) {
			close(q->fd);
		} else if (running < sp->max && serve_peer_count(sp, q->peer) < sp->per_peer) {
			struct serve_pending go = *q;
			sp->pend[i].fd = -1;
			serve_spawn(sp, go.fd, go.peer);
			running++;
		} else {
			sp->pend[k++] = *q;
		}
	}
	sp->npend = k;
	return running;
}

/* serve_loop - accept and fork one child per connection until SIGTERM/SIGINT */
int serve_loop(int lfd, int max_children, int (*child)(int fd, void *arg), void *arg)
{
	struct sigaction sa = {.sa_handler = serve_on_signal};
	sigset_t block;
	struct serve_pool sp = {.lfd = lfd, .max = max_children, .child = child, .arg = arg};
	int running = 0, rc = 0;

	sp.per_peer = max_children / 2 > 0 ? max_children / 2 : 1;
	sp.kids = calloc((size_t)max_children, sizeof(*sp.kids));
	sp.peers = calloc((size_t)max_children, sizeof(*sp.peers));
	sp.pend = calloc(SERVE_PENDING_MAX, sizeof(*sp.pend));
	if (sp.kids == NULL || sp.peers == NULL || sp.pend == NULL) {
		free(sp.kids);
		free(sp.peers);
		free(sp.pend);
		return -1;
	}
	pid_t *kids = sp.kids;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &sp.orig);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &sp.old_term);
	sigaction(SIGINT, &sa, &sp.old_int);
	sigaction(SIGCHLD, &sa, &sp.old_chld);	/* a handler, not SIG_IGN: we reap ourselves */
	serve_stop = 0;
	for (;;) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		struct timespec tick = {1, 0};	/* waiting connections expire */
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		char peer[64];
		int fd, pr;

		running = serve_reap(kids, max_children);
		if (serve_stop)
			break;
		running = serve_pending_run(&sp, running);
		/* full: the kernel's backlog holds new connections until a child exits */
		pr = ppoll(running >= max_children ? NULL : &p, running >= max_children ? 0 : 1,
			   sp.npend ? &tick : NULL, &sp.orig);
		if (pr < 0 && errno != EINTR) {
			rc = -1;
			break;
		}
		if (pr <= 0 || running >= max_children)
			continue;
		memset(&from, 0, sizeof(from));
		fd = accept4(lfd, (struct sockaddr *)&from, &fromlen, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED) {
				struct timespec ts = {0, 100 * 1000 * 1000};
				log_error("accept: %s", strerror(errno));
				nanosleep(&ts, NULL);	/* EMFILE and friends: do not spin */
			}
			continue;
		}
		/* one peer holds at most half the slots: it cannot starve the others; its
		 * further connections wait their turn here (a bounded queue) */
		serve_peer(fd, &from, peer);
		if (serve_peer_count(&sp, peer) >= sp.per_peer) {
			if (sp.npend >= SERVE_PENDING_MAX) {
				log_debug("closed a connection at once: too many waiting");
				close(fd);
				continue;
			}
			sp.pend[sp.npend].fd = fd;
			memcpy(sp.pend[sp.npend].peer, peer, sizeof(peer));
			sp.pend[sp.npend++].at = serve_mono();
			continue;
		}
		serve_spawn(&sp, fd, peer);
	}
	for (int i = 0; i < sp.npend; i++)
		close(sp.pend[i].fd);
	sp.npend = 0;
	/* stopping: let the children finish their answers, then ask them to stop */
	struct timespec end, now;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += SERVE_GRACE;
	while ((running = serve_reap(kids, max_children)) > 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
			break;
		struct timespec wait = {0, 50 * 1000 * 1000};
		ppoll(NULL, 0, &wait, &sp.orig);
	}
	for (int i = 0; i < max_children; i++)
		if (kids[i] > 0) {
			kill(kids[i], SIGTERM);
			waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
	sigaction(SIGTERM, &sp.old_term, NULL);
	sigaction(SIGINT, &sp.old_int, NULL);
	sigaction(SIGCHLD, &sp.old_chld, NULL);
	sigprocmask(SIG_SETMASK, &sp.orig, NULL);
	free(sp.kids);
	free(sp.peers);
	free(sp.pend);
	return rc;
}
