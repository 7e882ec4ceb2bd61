/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flipctl - the operator's tool: status, jobs, audit trail, set-up checks.
 *
 * This is flipctl's main: the global flags, the usage, and the dispatch to one
 * command; each command lives in the module named after what it does
 * (bin/flipctl/command.h lists them). Output is for people first (aligned
 * columns), --json for scripts. Exit codes: 0 done, 1 the thing checked is not
 * right (a broken audit chain, a failed doctor check, a job that cannot be moved),
 * 2 usage or configuration error.
 */
#include "bin/flipctl/command.h"

#include "bin/flipctl/jobctl.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: flipctl [-c FILE] COMMAND [ARGS]\n"
		"  init [--user USER] [--metrics-group GROUP]\n"
		"                          create the spool, state and log directories and the\n"
		"                          de-identification key; check the config file; let\n"
		"                          GROUP (default flip-metrics) read the metrics\n"
		"  status [--json]         hub, spool, last runs, at a glance\n"
		"  ls [STATE] [--json]     jobs, one line each (STATE: new cur out done failed hold)\n"
		"  show ID                 a job's task, result, upload state and log\n"
		"  rerun ID                run a job again (see flipctl(8))\n"
		"  hold ID | release ID    keep a waiting job from running / let it run\n"
		"  purge [--older-than DAYS] [--images]\n"
		"                          remove old done/ jobs; --images: image copies handed\n"
		"                          to training and unused for IMAGE_CACHE_RETENTION_HOURS\n"
		"  audit verify [FILE]     check the audit trail's hash chain\n"
		"  audit tail [-n N] [-f]  the last audit events, readably\n"
		"  audit rotate            start a new audit file chained to the old one\n"
		"  doctor                  check the set-up, one line per check\n"
		"  policy check            check ACCESS_POLICY_FILE: effective floor, one line per rule\n"
		"  key-hash                the SHA-256 of TRUST_API_KEY the hub must hold\n"
		"  bundle [-o FILE] [--with-fl-client-log]\n"
		"                          a support tarball without secrets, payloads or results\n"
		"  --help | --version\n");
	exit(code);
}

/* dispatch - the command named argv[0], with its arguments */
static int dispatch(const struct command *c, int argc, char **argv)
{
	const char *cmd = argv[0];

	if (strcmp(cmd, "init") == 0)
		return init_command(c, argc, argv);
	if (strcmp(cmd, "status") == 0)
		return overview_command(c, argc, argv);
	if (strcmp(cmd, "ls") == 0)
		return jobcmd_ls(c, argc, argv);
	if (strcmp(cmd, "show") == 0)
		return jobcmd_show(c, argc, argv);
	if (strcmp(cmd, "rerun") == 0)
		return jobcmd_action(c, argc, argv, jobctl_rerun, "re-run");
	if (strcmp(cmd, "hold") == 0)
		return jobcmd_action(c, argc, argv, jobctl_hold, "held");
	if (strcmp(cmd, "release") == 0)
		return jobcmd_action(c, argc, argv, jobctl_release, "released");
	if (strcmp(cmd, "purge") == 0)
		return jobcmd_purge(c, argc, argv);
	if (strcmp(cmd, "audit") == 0)
		return trail_command(c, argc, argv);
	if (strcmp(cmd, "policy") == 0)
		return checks_policy(c, argc, argv);
	if (strcmp(cmd, "doctor") == 0 && argc == 1)
		return checks_doctor(c);
	if (strcmp(cmd, "key-hash") == 0 && argc == 1)
		return checks_key_hash(c);
	if (strcmp(cmd, "bundle") == 0)
		return support_bundle(c, argc, argv);
	return COMMAND_USAGE;
}

int main(int argc, char **argv)
{
	struct command c = {NULL};
	int i = 1, rc;

	log_init("flipctl", LOG_WARN);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			c.config_path = argv[++i];
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			usage(0);
		else if (strcmp(argv[i], "--version") == 0) {
			printf("flipctl %s\n", FLIP_VERSION);
			return 0;
		} else
			usage(2);
	}
	if (i >= argc)
		usage(2);
	rc = dispatch(&c, argc - i, argv + i);
	if (rc == COMMAND_USAGE)
		usage(2);
	return rc;
}
