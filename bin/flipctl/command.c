/* SPDX-License-Identifier: Apache-2.0 */
/*
 * command - what flipctl's commands share: opening the node for a command, the
 * configuration error's exit, JSON and age printing (see command.h).
 */
#include "bin/flipctl/command.h"

#include <stdio.h>
#include <stdlib.h>

/* command_die_config - a configuration error: say it, exit 2 */
void command_die_config(const char *err)
{
	fprintf(stderr, "flipctl: %s\n", err);
	exit(2);
}

/* command_open_node - node_open for a command, exit 2 when the configuration is wrong */
void command_open_node(const struct command *cmd, struct node *n, unsigned flags)
{
	char err[1024];

	if (node_open(n, "flipctl", cmd->config_path, flags, err, sizeof(err)) < 0)
		command_die_config(err);
}

/* command_print_json - a value, indented, in its keys' order */
void command_print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s) {
		puts(s);
		free(s);
	}
}

/* command_age - seconds as 42s, 5m, 3h or 2d */
void command_age(double secs, char *out, size_t len)
{
	if (secs < 120)
		snprintf(out, len, "%.0fs", secs);
	else if (secs < 7200)
		snprintf(out, len, "%.0fm", secs / 60);
	else if (secs < 172800)
		snprintf(out, len, "%.0fh", secs / 3600);
	else
		snprintf(out, len, "%.0fd", secs / 86400);
}
