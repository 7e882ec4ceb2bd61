/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doctor - the set-up checks of `flipctl doctor`, one line each (docs/design/operations.md).
 *
 * SYNOPSIS
 *	#include "bin/flipctl/doctor.h"
 *
 *	void doctor_say(struct doctor *d, enum doctor_verdict v, const char *check,
 *			const char *fmt, ...);
 *	void doctor_local(struct doctor *d, const struct node *n);
 *	void doctor_hub(struct doctor *d, struct node *n);
 *	void doctor_omop(struct doctor *d, const struct config *cfg);
 *	void doctor_pacs(struct doctor *d, const struct config *cfg);
 *	void doctor_fl(struct doctor *d, const struct config *cfg);
 *
 * DESCRIPTION
 *	Each function runs one group of checks and writes one line per check to
 *	d->out: a verdict ("ok", "FAIL", or "--" for not applicable or not checked),
 *	the check's name, and what was found; a failing line ends with what to do.
 *	d->failed counts the FAIL lines (flipctl exits 1 when it is not 0). The checks
 *	are read-only: nothing is written except the heartbeat's own state (hub.json),
 *	and no line ever holds a secret (keys are shown as fingerprints), SQL text or
 *	a row value.
 *
 *	doctor_local(): the config file (already loaded by the caller), the proxy (its
 *	host only: a proxy URL may carry credentials), and the spool, state and log
 *	directories (writable, at least 5% free).
 *
 *	doctor_hub(): a heartbeat (DNS, TLS, the API key accepted, the trust id); the
 *	hub certificate's end (said when within DOCTOR_CERT_WARN_DAYS), or a FAIL
 *	when the hub URL is plain http; the AES key's fingerprint against the hub's;
 *	the clock against the hub's Date.
 *
 *	doctor_omop(): the login as DATA_ACCESS_POSTGRES_USER; that the role is
 *	read-only (not a superuser, not in pg_write_all_data, no INSERT, UPDATE, DELETE
 *	or TRUNCATE on any table it can see, no CREATE on the database or the omop
 *	schema); the omop schema with person and image_occurrence (and its
 *	accession_id) readable; the vocabulary loaded (concept and concept_ancestor
 *	not empty: an empty vocabulary makes every concept join return nothing); and
 *	which risky functions (files, settings, sleeps, other sessions, SQL held in a
 *	string, dblink*: the list in doctor.c, the same as docs/security-revoke.sql)
 *	the role can still EXECUTE, by name: an "ok" line either way, since the SQL
 *	guard refuses them all and the REVOKE is defence in depth, but one that names
 *	them until the DBA has run the script.
 *	"--" when no OMOP database is configured.
 *
 *	doctor_pacs(): a C-ECHO to PACS_AETITLE at PACS_HOST:PACS_DICOM_PORT as
 *	FLIP_AETITLE. "--" when no PACS is configured.
 *
 *	doctor_fl(): the live FL kit of FL_KIT_SLOT as flip-fl check sees it (signed
 *	files, slot, certificates, key, transfer/ and the image folder): every problem
 *	is a FAIL line, every warning (a certificate ending soon) an ok line that says
 *	so. Then the outbound reach of the FL server the kit names (fed_client.json's
 *	target): a TCP connection within DOCTOR_CONNECT_SECONDS. "--" for both when
 *	FL_KIT_SLOT is unset or no kit is installed yet.
 *
 * DIAGNOSTICS
 *	None: every problem is a line of the report.
 */
#ifndef FLIP_DOCTOR_H
#define FLIP_DOCTOR_H

#include <stdio.h>

#include "lib/config.h"
#include "lib/node.h"

#define DOCTOR_CONNECT_SECONDS 5
#define DOCTOR_CERT_WARN_DAYS 30

enum doctor_verdict { DOCTOR_OK, DOCTOR_FAIL, DOCTOR_SKIP };

struct doctor {
	FILE *out;
	int failed;
};

void doctor_say(struct doctor *d, enum doctor_verdict v, const char *check, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void doctor_local(struct doctor *d, const struct node *n);
void doctor_hub(struct doctor *d, struct node *n);
void doctor_omop(struct doctor *d, const struct config *cfg);
void doctor_pacs(struct doctor *d, const struct config *cfg);
void doctor_fl(struct doctor *d, const struct config *cfg);

#endif
