/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support - flipctl bundle: the support tarball asked for on the command line,
 * written by bundle.c, even when the spool cannot be opened (see command.h).
 */
#include "bin/flipctl/command.h"

#include "bin/flipctl/bundle.h"

#include <stdio.h>
#include <string.h>

/* support_bundle - a support tarball that holds no secret (bundle.h says what is in it) */
int support_bundle(const struct command *cmd, int argc, char **argv)
{
	struct node n;
	struct bundle_result res;
	const char *out = NULL;
	char err[1024], problem[1024] = "";
	unsigned flags = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--with-fl-client-log") == 0)
			flags |= BUNDLE_WITH_FL_CLIENT_LOG;
		else
			return COMMAND_USAGE;
	}
	/* a bundle is wanted most when something is broken: without a spool, it says so */
	if (node_open(&n, "flipctl", cmd->config_path, NODE_SPOOL | NODE_AUDIT, problem,
		      sizeof(problem)) < 0) {
		fprintf(stderr, "flipctl: %s; bundling without the status\n", problem);
		command_open_node(cmd, &n, 0);
	}
	if (bundle_write(&n, out, problem[0] ? problem : NULL, flags, &res, err, sizeof(err)) < 0) {
		fprintf(stderr, "flipctl: %s\n", err);
		node_close(&n);
		return 1;
	}
	printf("%s (%llu bytes, sha256 %.16s...)\n", res.path, res.bytes, res.sha256);
	if (res.redacted)
		printf("%u secret value%s found in what was bundled and replaced by %s (manifest.json)\n",
		       res.redacted, res.redacted == 1 ? " was" : "s were", BUNDLE_REDACTED);
	node_close(&n);
	return 0;
}
