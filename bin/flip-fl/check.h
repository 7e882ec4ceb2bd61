/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check - `flip-fl check`: the live kit verified, its local/ rendered (resources,
 * logging, the site privacy policy), the client's environment file written.
 *
 * SYNOPSIS
 *	#include "bin/flip-fl/check.h"
 *
 *	int check_command(const struct fl_opts *opt);
 *	int check_kit(struct fl *f, int quiet, time_t *na);
 *	int check_privacy(struct fl *f, struct privacy_policy *pp);
 *	int check_findings(const struct kit_findings *kf);
 *
 * DESCRIPTION
 *	check_command() is `flip-fl check`. check_kit() is docs/design/fl.md's check
 *	of the live kit (also the first step of run and start): kit_verify and the
 *	site's checks, FL_BACKEND against FL_CLIENT_COMMAND, the privacy policy in
 *	force; then local/ rendered (kit_render with privacy_render's
 *	privacy.json) and FLIP_STATE_DIR/fl/client.env written (the client's
 *	environment for flip-fl-client@.service, 0600) with the client's log
 *	created. Unless quiet it prints one "kit OK" line; *na gets client.crt's
 *	end.
 *
 *	check_privacy() is the privacy policy in force: the governance policy's
 *	[fl_privacy] when it has one, else the FL_SITE_PRIVACY_* settings (kit file
 *	and environment, gathered by config.c), resolved into pp (privacy.h).
 *	check_findings() logs a kit check's warnings and problems.
 *
 * DIAGNOSTICS
 *	check_command() and check_kit() return 0, 2 (a problem, each logged) or 1
 *	(cannot write local/ or client.env). check_privacy() and check_findings()
 *	return the number of problems, logged.
 */
#ifndef FLIP_FL_CHECK_H
#define FLIP_FL_CHECK_H

#include <time.h>

#include "lib/kit.h"
#include "bin/flip-fl/fl.h"
#include "bin/flip-fl/privacy.h"

int check_command(const struct fl_opts *opt);
int check_kit(struct fl *f, int quiet, time_t *na);
int check_privacy(struct fl *f, struct privacy_policy *pp);
int check_findings(const struct kit_findings *kf);

#endif
