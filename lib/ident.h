/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ident - the one validator for every identifier that becomes part of a path.
 *
 * SYNOPSIS
 *	#include "lib/ident.h"
 *
 *	int ident_ok(enum ident_kind kind, const char *s);
 *	const char *ident_kind_name(enum ident_kind kind);
 *
 * DESCRIPTION
 *	ident_ok() returns 1 when s is a well-formed identifier of that kind, else 0.
 *	Everything that builds a file name from outside data (task ids from the hub,
 *	job names found in the spool, project ids, accession numbers, net ids) passes
 *	here first; a caller that gets 0 refuses the input and never builds the path.
 *
 *	IDENT_TASK_ID	1..64 of [A-Za-z0-9_-], not starting with '-' (the hub sends
 *			UUIDs; this is looser so a hub that changes id format still works)
 *	IDENT_JOB_NAME	<16 digits>-<task id>, as the spool names job directories
 *	IDENT_UUID	8-4-4-4-12 hex digits, either case
 *	IDENT_ACCESSION	1..64 RFC 3986 unreserved characters ([A-Za-z0-9._~-]),
 *			not "." or ".."
 *	IDENT_NET_ID	"net-" followed by 1..6 digits
 */
#ifndef FLIP_IDENT_H
#define FLIP_IDENT_H

enum ident_kind { IDENT_TASK_ID, IDENT_JOB_NAME, IDENT_UUID, IDENT_ACCESSION, IDENT_NET_ID };

int ident_ok(enum ident_kind kind, const char *s);
const char *ident_kind_name(enum ident_kind kind);

#endif
