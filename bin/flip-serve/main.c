/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flip-serve - the FL client's data endpoints over HTTP, one connection per process.
 *
 * Two ways to run (docs/design/fl.md):
 *   flip-serve [-c FILE]                 socket activation: flip-serve.socket
 *                                        (Accept=yes) hands over one accepted
 *                                        connection on fd 0 (StandardInput=socket) or
 *                                        fd 3 (LISTEN_FDS=1); serve it and exit.
 *   flip-serve [-c FILE] --listen ADDR   hosts without systemd, and tests: listen on
 *                                        host:port or an absolute UNIX socket path,
 *                                        fork one child per connection (at most 16).
 * Order of steps: flags; config (a broken kit: exit 2 in --listen mode; in
 * socket mode the connection still gets a 503 before exit 2); then per
 * connection: the node opened afresh (the kit, policy and threshold an operator
 * changes apply to the next request), its own audit trail, serve_connection().
 * Exit codes: 0 served (whatever the HTTP status) or stopped by SIGTERM, 1 the
 * connection could not be served, 2 usage or configuration error.
 */
#include "lib/log.h"
#include "lib/node.h"
#include "bin/flip-serve/serve.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: flip-serve [-c FILE]                 serve the connection systemd passed\n"
		"       flip-serve [-c FILE] --listen ADDR   accept connections on ADDR\n"
		"       flip-serve --help | --version\n"
		"  -c FILE          config file (default $FLIP_ENV_FILE, else /etc/flip/flip.env)\n"
		"  --listen ADDR    host:port, [v6]:port or an absolute UNIX socket path\n");
	exit(code);
}

/* serve_one - open the node for this connection and answer it; the exit code */
static int serve_one(int fd, void *arg)
{
	const char *config = *(const char **)arg;
	char err[1024];
	struct node n;
	int rc;

	if (node_open(&n, "flip-serve", config, NODE_AUDIT, err, sizeof(err)) < 0) {
		log_error("%s", err);
		/* the client still gets an answer: 503 on every keyed endpoint */
		if (serve_connection(NULL, fd, err, sizeof(err)) < 0)
			log_error("%s", err);
		return 2;
	}
	rc = serve_connection(&n, fd, err, sizeof(err));
	if (rc < 0)
		log_error("%s", err);
	node_close(&n);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL, *listen_addr = NULL;
	char err[1024];
	struct node n;
	int c, fd, rc;

	log_init("flip-serve", LOG_INFO);
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'l': listen_addr = optarg; break;
		case 'h': usage(0); break;
		case 'V': printf("flip-serve %s\n", FLIP_VERSION); return 0;
		default: usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	/* the snapshot reader writes into a pipe whose reader may go away */
	signal(SIGPIPE, SIG_IGN);

	if (listen_addr == NULL) {
		fd = serve_activation_fd(err, sizeof(err));
		if (fd < 0) {
			log_error("%s", err);
			return 2;
		}
		return serve_one(fd, &config);
	}

	/* --listen: a broken kit stops us here, before anyone can connect */
	if (node_open(&n, "flip-serve", config, NODE_AUDIT, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 2;
	}
	serve_check_config(&n);	/* once here, not once per child */
	node_close(&n);
	fd = serve_listen(listen_addr, err, sizeof(err));
	if (fd < 0) {
		log_error("%s", err);
		return 2;
	}
	log_info("listening on %s", listen_addr);
	rc = serve_loop(fd, SERVE_MAX_CHILDREN, serve_one, &config);
	serve_unlisten(listen_addr, fd);
	if (rc < 0) {
		log_error("the accept loop failed");
		return 1;
	}
	log_info("stopped");
	return 0;
}
