/* SPDX-License-Identifier: Apache-2.0 */
/*
 * command - flipctl's commands: what main.c dispatches to, and what they share.
 *
 * SYNOPSIS
 *	#include "bin/flipctl/command.h"
 *
 *	void command_open_node(const struct command *cmd, struct node *n, unsigned flags);
 *	void command_die_config(const char *err);
 *	void command_print_json(json_t *v);
 *	void command_age(double secs, char *out, size_t len);
 *
 *	int init_command(const struct command *cmd, int argc, char **argv);
 *	int overview_command(const struct command *cmd, int argc, char **argv);
 *	int jobcmd_ls(const struct command *cmd, int argc, char **argv);
 *	int jobcmd_show(const struct command *cmd, int argc, char **argv);
 *	int jobcmd_action(const struct command *cmd, int argc, char **argv,
 *			  jobcmd_action_fn *action, const char *done);
 *	int jobcmd_purge(const struct command *cmd, int argc, char **argv);
 *	int trail_command(const struct command *cmd, int argc, char **argv);
 *	int checks_doctor(const struct command *cmd);
 *	int checks_policy(const struct command *cmd, int argc, char **argv);
 *	int checks_key_hash(const struct command *cmd);
 *	int support_bundle(const struct command *cmd, int argc, char **argv);
 *
 * DESCRIPTION
 *	main.c reads the global flags into a struct command (the -c FILE of every
 *	command) and calls one command with the command's own argv (argv[0] is the
 *	command's name). Each command is a short function over the flipctl modules
 *	(jobctl, status, doctor, bundle) and lib/, in the module named after what it
 *	does:
 *	  init.c      init: the spool, state and log directories, their owner and
 *	              modes, the de-identification key (statedir.h), the metrics group
 *	  overview.c  status: one screen (or --json) over status_collect()
 *	  jobcmd.c    ls, show, rerun, hold, release (jobcmd_action with a jobctl
 *	              action of type jobcmd_action_fn and the word it printed), purge
 *	  trail.c     audit verify, tail, rotate
 *	  checks.c    doctor, policy check, key-hash
 *	  support.c   bundle
 *	Output is for people first (aligned columns), --json for scripts.
 *
 *	command_open_node() opens the node (node_open) for a command and exits 2 with
 *	the message when the configuration is wrong; command_die_config() prints
 *	"flipctl: <err>" and exits 2. command_print_json() prints a value indented,
 *	command_age() writes an age as 42s, 5m, 3h or 2d.
 *
 * DIAGNOSTICS
 *	A command returns flipctl's exit code: 0 done, 1 the thing checked is not
 *	right (a broken audit chain, a failed doctor check, a job that cannot be
 *	moved), 2 a configuration error; or COMMAND_USAGE when its arguments do not
 *	fit, for main.c to print the usage and exit 2.
 */
#ifndef FLIP_FLIPCTL_COMMAND_H
#define FLIP_FLIPCTL_COMMAND_H

#include <stddef.h>
#include <jansson.h>

#include "lib/node.h"

#define COMMAND_USAGE (-1)

struct command {
	const char *config_path;	/* -c FILE, NULL: the default */
};

typedef int jobcmd_action_fn(struct node *n, struct job *job, char *err, size_t errlen);

void command_open_node(const struct command *cmd, struct node *n, unsigned flags);
_Noreturn void command_die_config(const char *err);
void command_print_json(json_t *v);
void command_age(double secs, char *out, size_t len);

int init_command(const struct command *cmd, int argc, char **argv);
int overview_command(const struct command *cmd, int argc, char **argv);
int jobcmd_ls(const struct command *cmd, int argc, char **argv);
int jobcmd_show(const struct command *cmd, int argc, char **argv);
int jobcmd_action(const struct command *cmd, int argc, char **argv, jobcmd_action_fn *action,
		  const char *done);
int jobcmd_purge(const struct command *cmd, int argc, char **argv);
int trail_command(const struct command *cmd, int argc, char **argv);
int checks_doctor(const struct command *cmd);
int checks_policy(const struct command *cmd, int argc, char **argv);
int checks_key_hash(const struct command *cmd);
int support_bundle(const struct command *cmd, int argc, char **argv);

#endif
