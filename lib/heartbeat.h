/* SPDX-License-Identifier: Apache-2.0 */
/*
 * heartbeat - tell the hub this trust is alive, and check who the hub says we are.
 *
 * SYNOPSIS
 *	#include "lib/heartbeat.h"
 *
 *	enum err_kind heartbeat_send(struct node *n, struct hub *h, int with_snapshot,
 *				     int *wrong_trust, char *err, size_t errlen);
 *	json_t *heartbeat_snapshot(struct node *n);
 *	int heartbeat_blocked(struct node *n, char *err, size_t errlen);
 *	json_t *heartbeat_fl_client(struct node *n);
 *
 * DESCRIPTION
 *	heartbeat_send() POSTs /trust/heartbeat with a health snapshot (or no body at
 *	all when with_snapshot is 0; never "{}"). A 422 answer to a snapshot is
 *	followed at once by one bodyless heartbeat, so liveness is never lost to a
 *	schema disagreement. On 200 the reply is kept in FLIP_STATE_DIR/hub.json for
 *	flipctl status; the first reply naming a trust (or a different one than last
 *	time) is logged "authenticated to hub as trust <name> (<id>)" by the first
 *	program that gets it (never by flipctl doctor, so flip-poll's journal has the
 *	line after deploy-on-prem.md's doctor run); a trust id other
 *	than EXPECTED_TRUST_ID is ERR_AUTH with *wrong_trust set; an
 *	aes_key_fingerprint other than ours is logged as an error naming both (a stale
 *	kit) and is not fatal.
 *
 *	A trust id mismatch also leaves FLIP_STATE_DIR/identity-mismatch.json, keyed
 *	by a fingerprint of the hub URL, the API key's hash and EXPECTED_TRUST_ID.
 *	heartbeat_blocked() returns 1 (err says why and what to do) while that marker
 *	matches the current kit, so flip-poll stops calling the hub every 5 s with
 *	another trust's key; a changed kit, or a heartbeat that proves the identity
 *	(flipctl doctor), clears it.
 *
 *	heartbeat_snapshot() probes the node's own components cheaply (well under a
 *	second): flip-node itself, the spool (writable, backlog age, free space).
 *	Components whose modules are not on this node yet are not reported.
 *
 * DIAGNOSTICS
 *	heartbeat_send() returns an outcome of lib/err.h: ERR_OK; ERR_TRANSIENT (no
 *	answer, 429, 5xx, another status, a reply that is not JSON); ERR_AUTH when the
 *	hub refused the API key (401) or answered as another trust. err says what
 *	happened and what to do.
 *
 *	Both ERR_AUTH cases are the hub not accepting who we are, but the programs
 *	act on them differently: a refused key may be fixed at the hub (its key hash
 *	registered there, so flip-poll exits 1 and goes on trying), another trust's
 *	kit only on this host (flip-poll stops, exit 2, and heartbeat_blocked() holds
 *	it).
 *	No kind tells the two apart, so *wrong_trust (unless wrong_trust is NULL)
 *	is set to 1 for another trust and to 0 otherwise.
 */
#ifndef FLIP_HEARTBEAT_H
#define FLIP_HEARTBEAT_H

#include <stddef.h>
#include <jansson.h>

#include "lib/err.h"
#include "lib/hub.h"
#include "lib/node.h"

enum err_kind heartbeat_send(struct node *n, struct hub *h, int with_snapshot, int *wrong_trust,
			     char *err, size_t errlen);
json_t *heartbeat_snapshot(struct node *n);
int heartbeat_blocked(struct node *n, char *err, size_t errlen);
/* heartbeat_fl_client - flip-fl's record of the FL client (NULL: none on this node) */
json_t *heartbeat_fl_client(struct node *n);

#endif
