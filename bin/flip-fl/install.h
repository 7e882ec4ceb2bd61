/* SPDX-License-Identifier: Apache-2.0 */
/*
 * install - `flip-fl install-kit TARBALL`: a new FL participant kit, checked, then
 * switched in.
 *
 * SYNOPSIS
 *	#include "bin/flip-fl/install.h"
 *
 *	int install_command(const struct fl_opts *opt, const char *tarball);
 *
 * DESCRIPTION
 *	install_command() stages the tarball (- is stdin; kit_stage), verifies it
 *	(kit_verify) and renders its local/ with the privacy policy in force
 *	before anything changes; then it stops a running client for the switch
 *	(its working folder is in the old kit), switches the kit in (kit_switch),
 *	shares it with the client's group, audits fl.kit.installed (and
 *	fl.kit.unsigned) and starts the client again when it was running and is
 *	not kept stopped. A refused kit is audited (fl.kit.refused) and leaves the
 *	live kit unchanged. It runs only as FL_KIT_DIR's owner, the node's user.
 *
 * DIAGNOSTICS
 *	Returns the exit code: 0 installed, 1 failed this time (the disk, a
 *	state file), 2 refused (the kit's check, the privacy settings, the wrong
 *	user), each reason logged.
 */
#ifndef FLIP_FL_INSTALL_H
#define FLIP_FL_INSTALL_H

#include "bin/flip-fl/fl.h"

int install_command(const struct fl_opts *opt, const char *tarball);

#endif
