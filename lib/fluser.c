/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fluser - the FL client's own user (see fluser.h for the contract).
 *
 * Why a saved uid of 0 and not a helper. On a host without systemd, root's
 * crontab starts flip-fl, which must both write the node's files as the node's
 * user (so that they stay the node's) and start and signal a client that runs
 * as another user. Keeping only the saved uid at 0 gives the first for free
 * (every file access is the node's user's) and the second for the few moments
 * it is needed; a process of the node's user cannot ptrace or signal it (its
 * saved uid differs, and it is not dumpable).
 */
#include "lib/fluser.h"

#include "lib/err.h"

#include <errno.h>
#include <grp.h>
#include <openssl/crypto.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define FLUSER_ENV_MAX 32

/* fluser_fill - u from a password entry */
static int fluser_fill(const struct passwd *pw, struct fluser *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	if (snprintf(u->name, sizeof(u->name), "%s", pw->pw_name) >= (int)sizeof(u->name))
		return err_set(err, errlen, "user name %.40s...: too long", pw->pw_name);
	snprintf(u->home, sizeof(u->home), "%s", pw->pw_dir ? pw->pw_dir : "/");
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	return 0;
}

/* fluser_lookup - a user by name */
int fluser_lookup(const char *name, struct fluser *u, char *err, size_t errlen)
{
	struct passwd *pw;

	errno = 0;
	pw = name != NULL ? getpwnam(name) : NULL;
	if (pw == NULL)
		return err_set(err, errlen,
			       "FL_CLIENT_USER %s: no such user on this host (the package "
			       "creates flip-fl; elsewhere: useradd --system --user-group %s)",
			       name ? name : "(unset)", name ? name : "flip-fl");
	return fluser_fill(pw, u, err, errlen);
}

/* fluser_check - the client's user is neither root nor the node's user */
int fluser_check(const struct fluser *client, const struct fluser *node, char *err,
		 size_t errlen)
{
	if (client->uid == 0)
		return err_set(err, errlen,
			       "FL_CLIENT_USER is %s, which is root: the FL client runs code the "
			       "trust did not write and never runs as root; use its own user "
			       "(default flip-fl)",
			       client->name);
	if (client->uid == node->uid)
		return err_set(err, errlen,
			       "FL_CLIENT_USER is %s (uid %ld), the node's own user %s: the FL "
			       "client must not read the kit file, the spool, the audit trail or "
			       "the project store; give it its own user (default flip-fl)",
			       client->name, (long)client->uid, node->name);
	return 0;
}

/* fluser_node_of - the owner of FLIP_STATE_DIR: the node's user, for a program run as root */
int fluser_node_of(const char *state_dir, struct fluser *node, char *err, size_t errlen)
{
	struct passwd *pw;
	struct stat sb;

	/* not made yet (flipctl init has not run): whoever runs makes it, as until now */
	if (stat(state_dir, &sb) < 0) {
		if (errno != ENOENT)
			return err_set(err, errlen, "cannot find the node's user: %s: %s (run "
				       "flipctl init --user flip)", state_dir, strerror(errno));
		sb.st_uid = geteuid();
	}
	pw = getpwuid(sb.st_uid);
	if (pw == NULL)
		return err_set(err, errlen, "%s belongs to uid %ld, which has no user name",
			       state_dir, (long)sb.st_uid);
	return fluser_fill(pw, node, err, errlen);
}

/* fluser_enter_node - work as the node's user, keeping only the saved uid 0 */
int fluser_enter_node(const struct fluser *node, char *err, size_t errlen)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (initgroups(node->name, node->gid) < 0 || setresgid(node->gid, node->gid, node->gid) < 0 ||
	    setresuid(node->uid, node->uid, 0) < 0)
		return err_set(err, errlen, "cannot become the node's user %s: %s", node->name,
			       strerror(errno));
	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0 || r != node->uid ||
	    e != node->uid || s != 0 || rg != node->gid || eg != node->gid || sg != node->gid)
		return err_set(err, errlen, "the switch to the node's user %s did not take",
			       node->name);
	return 0;
}

/* fluser_can_switch - this process may become another user (saved or effective uid 0) */
int fluser_can_switch(void)
{
	uid_t r, e, s;

	return getresuid(&r, &e, &s) == 0 && (e == 0 || s == 0);
}

/* fluser_privileged - take the effective uid 0 back (on) or drop it again */
void fluser_privileged(int on)
{
	uid_t r, e, s;

	if (getresuid(&r, &e, &s) < 0 || s != 0 || r == 0)
		return; /* not entered as the node's user: nothing to take or drop */
	if (seteuid(on ? 0 : r) < 0)
		return; /* the caller's next step fails with EPERM and says so */
}

/* fluser_become - be u for good (a child about to execute the client) */
int fluser_become(const struct fluser *u, char *err, size_t errlen)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	fluser_privileged(1);
	if (initgroups(u->name, u->gid) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0)
		return err_set(err, errlen, "cannot become the FL client's user %s: %s", u->name,
			       strerror(errno));
	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0 || r != u->uid ||
	    e != u->uid || s != u->uid || rg != u->gid || eg != u->gid || sg != u->gid)
		return err_set(err, errlen, "the switch to %s did not take", u->name);
	/* and there is no way back */
	if (u->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return err_set(err, errlen, "after the switch to %s, uid 0 could be taken back",
			       u->name);
	return 0;
}

/* fluser_add - "NAME=value" into env; -1 when out of memory or full */
static int fluser_add(char **env, size_t *n, const char *name, const char *value)
{
	if (value == NULL)
		return 0;
	if (*n + 1 >= FLUSER_ENV_MAX)
		return -1;
	if (asprintf(&env[*n], "%s=%s", name, value) < 0) {
		env[*n] = NULL;
		return -1;
	}
	(*n)++;
	return 0;
}

/* fluser_env - the client's whole environment (see fluser.h) */
char **fluser_env(const struct config *cfg, const struct fluser *u)
{
	static const char *const passed[] = {"PATH", "LANG", "LC_ALL", "TZ", "CUDA_VISIBLE_DEVICES",
					     "HTTP_PROXY", "http_proxy", NULL};
	char **env = calloc(FLUSER_ENV_MAX, sizeof(*env));
	const char *v;
	size_t n = 0;
	int bad = 0;

	if (env == NULL)
		return NULL;
	for (int i = 0; passed[i] && !bad; i++)
		bad = fluser_add(env, &n, passed[i], getenv(passed[i]));
	if (!bad && getenv("PATH") == NULL)
		bad = fluser_add(env, &n, "PATH", "/usr/local/bin:/usr/bin:/bin");
	bad = bad || fluser_add(env, &n, "HOME", u->home) || fluser_add(env, &n, "USER", u->name) ||
	      fluser_add(env, &n, "LOGNAME", u->name);
	v = getenv("DATA_ACCESS_API_URL");
	bad = bad || fluser_add(env, &n, "DATA_ACCESS_API_URL", v && *v ? v : FLUSER_DEFAULT_URL);
	v = getenv("IMAGING_API_URL");
	bad = bad || fluser_add(env, &n, "IMAGING_API_URL", v && *v ? v : FLUSER_DEFAULT_URL);
	bad = bad || fluser_add(env, &n, "TRUST_INTERNAL_SERVICE_KEY_HEADER",
				cfg->internal_key_header) ||
	      fluser_add(env, &n, "TRUST_INTERNAL_SERVICE_KEY", cfg->internal_key);
	if (cfg->https_proxy != NULL)
		bad = bad || fluser_add(env, &n, "https_proxy", cfg->https_proxy) ||
		      fluser_add(env, &n, "HTTPS_PROXY", cfg->https_proxy);
	if (cfg->no_proxy != NULL)
		bad = bad || fluser_add(env, &n, "no_proxy", cfg->no_proxy) ||
		      fluser_add(env, &n, "NO_PROXY", cfg->no_proxy);
#ifdef FLIP_TEST_BUILD
	for (char **e = environ; *e && !bad; e++)
		if (strncmp(*e, "FAKE_", 5) == 0 && n + 1 < FLUSER_ENV_MAX)
			bad = (env[n++] = strdup(*e)) == NULL;
#endif
	if (bad) {
		fluser_env_free(env);
		return NULL;
	}
	return env;
}

/* fluser_env_free - wipe (it holds the internal key) and free */
void fluser_env_free(char **env)
{
	if (env == NULL)
		return;
	for (char **e = env; *e; e++) {
		OPENSSL_cleanse(*e, strlen(*e));
		free(*e);
	}
	free(env);
}
