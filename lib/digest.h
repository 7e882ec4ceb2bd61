/* SPDX-License-Identifier: Apache-2.0 */
/*
 * digest - the SHA-256 fingerprints flip-node logs and sends instead of secrets.
 *
 * SYNOPSIS
 *	#include "lib/digest.h"
 *
 *	void digest_sha256_hex(const void *data, size_t len, char out[65]);
 *	int digest_query(const char *sql, char out[65]);
 *
 * DESCRIPTION
 *	digest_sha256_hex() is lowercase hex SHA-256 (the hub's key hash, the
 *	cohort-admin proof). digest_query() hashes the SQL lower-cased with runs of
 *	whitespace collapsed to one space and trimmed: the query_hash of snapshots;
 *	its first 12 characters are the query fingerprint used in logs. Returns 0, or
 *	-1 when out of memory.
 */
#ifndef FLIP_DIGEST_H
#define FLIP_DIGEST_H

#include <stddef.h>

void digest_sha256_hex(const void *data, size_t len, char out[65]);
int digest_query(const char *sql, char out[65]);

#endif
