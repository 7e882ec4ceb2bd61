/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statedir - the layout of FLIP_STATE_DIR: the one place that names its entries and
 * opens or creates them.
 *
 * SYNOPSIS
 *	#include "lib/statedir.h"
 *
 *	int statedir_open(const char *state_dir);
 *	int statedir_create(const char *state_dir);
 *	int statedir_sub(int sfd, const char *sub);
 *	int statedir_open_sub(const char *state_dir, const char *sub);
 *	int statedir_find_sub(const char *state_dir, const char *sub);
 *	int statedir_deid_key_create(int sfd, uid_t uid, gid_t gid);
 *
 * DESCRIPTION
 *	FLIP_STATE_DIR (config.h, default /var/lib/flip) holds what a node keeps
 *	between runs outside the spool. Its entries, and nothing else:
 *
 *	  entry (macro)          written by                    read by                  mode
 *	  deid.key               flipctl init, once, never     flip-exec imaging        0600
 *	  (STATEDIR_DEID_KEY)      replaced (UID mappings        (retrieval), flipctl
 *	                           depend on it)                 bundle (to redact it)
 *	  hub.json (STATEDIR_HUB) heartbeat: flip-poll,        flipctl status, doctor,  0600
 *	                           flipctl doctor                bundle
 *	  identity-mismatch.json heartbeat (trust id mismatch) heartbeat (the gate)     0600
 *	  (STATEDIR_MISMATCH)
 *	  cohorts/<project>/     snapshot: persist_cohort      flip-serve, jobs         0700
 *	  (STATEDIR_COHORTS)       (flip-exec), flip-serve
 *	  imaging/<id>/,         imaging_store: the imaging    flip-exec imaging,       0700
 *	  imaging/users.json       jobs (flip-exec), flip-exec   flip-serve (handoff),
 *	  (STATEDIR_IMAGING)       imaging                       flipctl status
 *	  fl/ (STATEDIR_FL)      flip-fl (flclient.c:          heartbeat, flipctl       0700
 *	                           client.json exit.json         status
 *	                           stopped .lock; client.env)
 *	  metrics/<prog>.prom    metrics: every program        node_exporter, flipctl   0700 (1)
 *	  (STATEDIR_METRICS)                                     status and bundle
 *	  (unnamed O_TMPFILE)    flip-serve's result streams   flip-serve               0600
 *
 *	The directory itself is the node user's, 0700. (1) With the metrics group
 *	(flipctl init --metrics-group) it is 0710 (the group may pass through, not
 *	list), metrics/ 02750 and its files 0640.
 *
 *	statedir_open() opens FLIP_STATE_DIR as it is (never creates it);
 *	statedir_create() creates it (0700) when missing, then opens it.
 *	statedir_sub() creates the subdirectory sub of the open state directory sfd
 *	(0700, durably) when missing and opens it; sfd stays open.
 *	statedir_open_sub() does both for a path: FLIP_STATE_DIR must exist, sub is
 *	created. statedir_find_sub() opens FLIP_STATE_DIR/sub only when it exists, for
 *	a reader asking whether a part of the node runs at all (fl/).
 *	Every open is O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC.
 *
 *	statedir_deid_key_create() makes the de-identification key, STATEDIR_DEID_KEY_LEN
 *	random bytes, when sfd has none (a present key is never replaced) and, unless
 *	uid is (uid_t)-1, gives it to uid:gid.
 *
 * DIAGNOSTICS
 *	The open functions return a descriptor, or -1 with errno.
 *	statedir_deid_key_create() returns 1 when it created the key, 0 when there was
 *	one, -1 with errno.
 */
#ifndef FLIP_STATEDIR_H
#define FLIP_STATEDIR_H

#include <sys/types.h>

#define STATEDIR_DEID_KEY "deid.key"
#define STATEDIR_DEID_KEY_LEN 32
#define STATEDIR_HUB "hub.json"
#define STATEDIR_HUB_CAP (1 << 20)
#define STATEDIR_MISMATCH "identity-mismatch.json"
#define STATEDIR_COHORTS "cohorts"
#define STATEDIR_IMAGING "imaging"
#define STATEDIR_FL "fl"
#define STATEDIR_METRICS "metrics"

int statedir_open(const char *state_dir);
int statedir_create(const char *state_dir);
int statedir_sub(int sfd, const char *sub);
int statedir_open_sub(const char *state_dir, const char *sub);
int statedir_find_sub(const char *state_dir, const char *sub);
int statedir_deid_key_create(int sfd, uid_t uid, gid_t gid);

#endif
