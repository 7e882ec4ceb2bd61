/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fluser - the FL client's own user: who it is, switching to it, what it inherits.
 *
 * SYNOPSIS
 *	#include "lib/fluser.h"
 *
 *	int fluser_lookup(const char *name, struct fluser *u, char *err, size_t errlen);
 *	int fluser_check(const struct fluser *client, const struct fluser *node,
 *			 char *err, size_t errlen);
 *	int fluser_node_of(const char *state_dir, struct fluser *node, char *err,
 *			   size_t errlen);
 *	int fluser_enter_node(const struct fluser *node, char *err, size_t errlen);
 *	int fluser_can_switch(void);
 *	void fluser_privileged(int on);
 *	int fluser_become(const struct fluser *u, char *err, size_t errlen);
 *	char **fluser_env(const struct config *cfg, const struct fluser *u);
 *	void fluser_env_free(char **env);
 *
 * DESCRIPTION
 *	The FL client runs the FL framework and the researcher's training code, code
 *	the trust did not write (fl.md, "The FL client's own user"). It runs as its
 *	own system user, FL_CLIENT_USER (default flip-fl): never root, never the
 *	node's user, who can read the kit file, the spool, the audit trail, deid.key
 *	and the project store.
 *
 *	fluser_lookup() fills u from the password database. fluser_check() refuses a
 *	client user that is root or that is the node's user, naming both.
 *	fluser_node_of() is the node's user when a program runs as root (from root's
 *	crontab on a host without systemd): the owner of FLIP_STATE_DIR, which
 *	`flipctl init --user` gave to it (this process's user while it does not
 *	exist; a node whose state folder is root's runs as root).
 *
 *	fluser_enter_node() is how a program started as root does its work as the
 *	node's user: supplementary groups, real and effective gid and uid become the
 *	node's; only the saved uid stays 0, so that fluser_privileged(1) can take the
 *	effective uid 0 back for a moment (to signal the client's processes, or to
 *	fork the client) and fluser_privileged(0) drops it again. Everything else,
 *	files above all, happens as the node's user. fluser_can_switch() is true
 *	when this process may become another user (its saved uid is 0).
 *
 *	fluser_become() switches for good, in a child about to execute the client:
 *	initgroups(3), setresgid(2), setresuid(2) to u, then verifies that the real,
 *	effective and saved uid and gid are u's and that uid 0 cannot be taken back.
 *
 *	fluser_env() is the client's whole environment, nothing inherited: PATH, LANG
 *	(and LC_ALL, TZ, CUDA_VISIBLE_DEVICES when set), HOME, USER and LOGNAME of u,
 *	DATA_ACCESS_API_URL and IMAGING_API_URL (from this process's environment,
 *	else flip-serve's socket, http://127.0.0.1:8010), the internal service key
 *	header's name as TRUST_INTERNAL_SERVICE_KEY_HEADER and its value as
 *	TRUST_INTERNAL_SERVICE_KEY, and the proxy settings (the kit file's
 *	https_proxy and no_proxy, this environment's HTTP_PROXY/HTTPS_PROXY/NO_PROXY
 *	in both cases). Never the hub API key, the AES key or the database password.
 *	In a test build, FAKE_* variables pass too (tests/fl/fakeclient.sh's knobs).
 *	fluser_env_free() wipes and frees it.
 *
 * DIAGNOSTICS
 *	The int functions return 0, or -1 with a one-line message in err. fluser_env()
 *	returns NULL when out of memory. Nothing is printed; nothing exits.
 */
#ifndef FLIP_FLUSER_H
#define FLIP_FLUSER_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/config.h"

#define FLUSER_DEFAULT_URL "http://127.0.0.1:8010"

struct fluser {
	char name[64];
	uid_t uid;
	gid_t gid;
	char home[256];
};

int fluser_lookup(const char *name, struct fluser *u, char *err, size_t errlen);
int fluser_check(const struct fluser *client, const struct fluser *node, char *err,
		 size_t errlen);
int fluser_node_of(const char *state_dir, struct fluser *node, char *err, size_t errlen);
int fluser_enter_node(const struct fluser *node, char *err, size_t errlen);
int fluser_can_switch(void);
void fluser_privileged(int on);
int fluser_become(const struct fluser *u, char *err, size_t errlen);
char **fluser_env(const struct config *cfg, const struct fluser *u);
void fluser_env_free(char **env);

#endif
