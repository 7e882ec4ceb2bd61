/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statedir - FLIP_STATE_DIR opened and its entries created in one place (see
 * statedir.h for the layout table).
 */
#include "lib/statedir.h"

#include "lib/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define STATEDIR_OPEN (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* statedir_open - FLIP_STATE_DIR as it is */
int statedir_open(const char *state_dir)
{
	return open(state_dir, STATEDIR_OPEN);
}

/* statedir_create - FLIP_STATE_DIR, created (0700) when missing */
int statedir_create(const char *state_dir)
{
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return -1;
	return open(state_dir, STATEDIR_OPEN);
}

/* statedir_sub - a subdirectory of the open state directory, created when missing */
int statedir_sub(int sfd, const char *sub)
{
	if (durable_mkdir(sfd, sub, 0700) < 0)
		return -1;
	return openat(sfd, sub, STATEDIR_OPEN);
}

/* statedir_open_sub - FLIP_STATE_DIR/sub, sub created when missing */
int statedir_open_sub(const char *state_dir, const char *sub)
{
	int sfd = statedir_open(state_dir), fd;

	if (sfd < 0)
		return -1;
	fd = statedir_sub(sfd, sub);
	close(sfd);
	return fd;
}

/* statedir_find_sub - FLIP_STATE_DIR/sub when it exists, never created */
int statedir_find_sub(const char *state_dir, const char *sub)
{
	char path[4096];

	if (snprintf(path, sizeof(path), "%s/%s", state_dir, sub) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return open(path, STATEDIR_OPEN);
}

/* statedir_deid_key_create - the de-identification key: made once, never replaced */
int statedir_deid_key_create(int sfd, uid_t uid, gid_t gid)
{
	unsigned char key[STATEDIR_DEID_KEY_LEN];
	struct stat st;
	int rc = 1;

	if (fstatat(sfd, STATEDIR_DEID_KEY, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (RAND_bytes(key, sizeof(key)) != 1 ||
	    durable_write(sfd, STATEDIR_DEID_KEY, key, sizeof(key), 0600) < 0 ||
	    (uid != (uid_t)-1 && fchownat(sfd, STATEDIR_DEID_KEY, uid, gid, AT_SYMLINK_NOFOLLOW) < 0))
		rc = -1;
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}
