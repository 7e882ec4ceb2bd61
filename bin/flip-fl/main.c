/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flip-fl - install and check the FL participant kit, keep the vendor FL client running.
 *
 * Subcommands (docs/design/fl.md, "flip-fl"): install-kit TARBALL, check, run (what
 * flip-fl.timer starts every 30 s), stop, start, status; and `supervise`, the
 * client's waiter, which only flip-fl itself starts (supervisor.h). This file is
 * the flags, the usage and which command runs; each command is in its own module
 * of this folder: install.c (install-kit), check.c (check, and the kit check the
 * others share), client.c (run, start, stop), status.c (status), over fl.c (the
 * command's context), supervisor.c (the client's supervision and its waiter) and
 * privacy.c (the site privacy policy); lib/kit.c is the kit, lib/flclient.c the
 * client's record.
 *
 * Exit codes: 0 done (also: another flip-fl held the lock, for run), 1 failed
 * this time (fork, a state file, the disk), 2 usage or configuration error or a
 * failed check: the kit, the privacy settings, a refused tarball.
 *
 * The FL_SITE_PRIVACY_* settings come from config.c (cfg.fl_privacy: the kit
 * file's, the environment overriding), as text; privacy.c judges them.
 */
#include "lib/log.h"
#include "bin/flip-fl/check.h"
#include "bin/flip-fl/client.h"
#include "bin/flip-fl/fl.h"
#include "bin/flip-fl/install.h"
#include "bin/flip-fl/status.h"
#include "bin/flip-fl/supervisor.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* usage - every form of the command; exits */
static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: flip-fl [-c FILE] COMMAND\n"
		"  install-kit TARBALL   install the FL participant kit (checked, then switched in;\n"
		"                        as FL_KIT_DIR's owner, the node's user; - is stdin)\n"
		"  check                 verify the kit, render local/ (resources, logging, privacy)\n"
		"  run [--external]      check, then keep the FL client running (the timer's job);\n"
		"                        --external: the client is its own unit, only check\n"
		"  stop [--grace SECS]   stop the FL client and keep it stopped (SIGKILL after\n"
		"                        SECS, default 30)\n"
		"  start                 let the FL client run again, and start it\n"
		"  status [--json]       the client, its kit, its last job and round, the privacy\n"
		"                        policy\n"
		"  --help | --version\n");
	exit(code);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},     {"external", no_argument, NULL, 'e'},
		{"grace", required_argument, NULL, 'g'}, {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},  {NULL, 0, NULL, 0},
	};
	struct fl_opts opt = {NULL, 0, 0, FL_GRACE};
	const char *cmd;
	char *end;
	int c;

	log_init("flip-fl", LOG_INFO);
	/* the waiter: flip-fl supervise STATE_DIR -- ARGV..., started by flip-fl only */
	if (argc >= 5 && strcmp(argv[1], "supervise") == 0 && strcmp(argv[3], "--") == 0)
		return supervisor_waiter(argv[2], argv + 4);
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': opt.config_path = optarg; break;
		case 'j': opt.json = 1; break;
		case 'e': opt.external = 1; break;
		case 'g':
			opt.grace = strtod(optarg, &end);
			if (*end || end == optarg || !(opt.grace >= 0 && opt.grace <= 3600))
				usage(2);
			break;
		case 'h': usage(0); break;
		case 'V': printf("flip-fl %s\n", FLIP_VERSION); return 0;
		default: usage(2);
		}
	}
	if (optind >= argc)
		usage(2);
	cmd = argv[optind++];
	if (strcmp(cmd, "install-kit") == 0 && optind + 1 == argc)
		return install_command(&opt, argv[optind]);
	if (optind != argc)
		usage(2);
	if (strcmp(cmd, "check") == 0)
		return check_command(&opt);
	if (strcmp(cmd, "run") == 0)
		return client_run_command(&opt, 0);
	if (strcmp(cmd, "start") == 0)
		return client_run_command(&opt, 1);
	if (strcmp(cmd, "stop") == 0)
		return client_stop_command(&opt);
	if (strcmp(cmd, "status") == 0)
		return status_command(&opt);
	usage(2);
	return 2;
}
