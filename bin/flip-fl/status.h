/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status - `flip-fl status [--json]`: the FL client, its kit, its last job and round,
 * the privacy policy.
 *
 * SYNOPSIS
 *	#include "bin/flip-fl/status.h"
 *
 *	int status_command(const struct fl_opts *opt);
 *
 * DESCRIPTION
 *	status_command() prints the client's record (flclient_status) with the kit
 *	({"slot", "path", "installed", "cert_not_after", "cert_days_left"}) and the
 *	privacy policy the live kit's local/privacy.json describes: as JSON with
 *	opt->json, else as a few lines for people.
 *
 * DIAGNOSTICS
 *	Returns 0, or 1 when out of memory; exits 2 on a configuration error
 *	(fl_open).
 */
#ifndef FLIP_FL_STATUS_H
#define FLIP_FL_STATUS_H

#include "bin/flip-fl/fl.h"

int status_command(const struct fl_opts *opt);

#endif
