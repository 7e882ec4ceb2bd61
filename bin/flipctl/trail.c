/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trail - flipctl audit: verify the audit trail's hash chain (and, for the live
 * trail, say so in the metrics), tail it readably, rotate it (see command.h).
 */
#include "bin/flipctl/command.h"

#include "lib/audit.h"
#include "lib/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* trail_print_line - one audit event, readably */
static void trail_print_line(const char *line)
{
	json_t *v = json_loads(line, 0, NULL);
	if (!json_is_object(v)) {
		printf("(unreadable line)\n");
		json_decref(v);
		return;
	}
	char *detail = json_dumps(json_object_get(v, "detail"), JSON_COMPACT | JSON_ENCODE_ANY);
	printf("%s %-11s %-20s %-36s %-19s %s\n", json_string_value(json_object_get(v, "ts")) ?: "?",
	       json_string_value(json_object_get(v, "prog")) ?: "?",
	       json_string_value(json_object_get(v, "event")) ?: "?",
	       json_string_value(json_object_get(v, "task_id")) ?: "-",
	       json_string_value(json_object_get(v, "task_type")) ?: "-", detail ? detail : "");
	free(detail);
	json_decref(v);
}

/* trail_command - flipctl audit: verify, tail, rotate */
int trail_command(const struct command *cmd, int argc, char **argv)
{
	struct node n;
	char path[4096];

	if (argc < 2)
		return COMMAND_USAGE;
	command_open_node(cmd, &n, 0);
	snprintf(path, sizeof(path), "%s/audit.log", n.cfg.log_dir);
	if (strcmp(argv[1], "verify") == 0) {
		struct audit_verdict v;
		const char *file = argc > 2 ? argv[2] : path;
		int rc = audit_verify(file, &v);
		if (argc == 2) {	/* the live trail: when it was last checked, for alerting */
			struct metrics m;
			metrics_begin(&m, "flipctl-audit");
			metrics_add(&m, "audit_chain_last_verified_timestamp_seconds", NULL,
				    node_now());
			metrics_add(&m, "audit_chain_intact", NULL, rc == 0);
			metrics_add(&m, "audit_chain_lines", NULL, rc == 0 ? (double)v.lines : 0);
			metrics_commit(&m, &n);
		}
		node_close(&n);
		if (rc < 0) {
			fprintf(stderr, "flipctl: cannot read %s: %s\n", file, strerror(errno));
			return 1;
		}
		if (rc == 0) {
			printf("%s: %ld lines, hash chain intact (last hash %.16s...)\n", file, v.lines,
			       v.last_hash);
			return 0;
		}
		printf("%s: chain BROKEN at line %ld: %s (the file was edited, truncated or lines "
		       "were removed; keep a copy for the investigation)\n", file, v.bad_line, v.reason);
		return 1;
	}
	if (strcmp(argv[1], "rotate") == 0) {
		char err[512];
		int rc = audit_rotate(n.cfg.log_dir, err, sizeof(err));
		if (rc < 0)
			fprintf(stderr, "flipctl: %s\n", err);
		node_close(&n);
		return rc < 0;
	}
	if (strcmp(argv[1], "tail") != 0) {
		node_close(&n);
		return COMMAND_USAGE;
	}
	long lines = 20;
	int follow = 0;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			lines = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-f") == 0)
			follow = 1;
		else {
			node_close(&n);
			return COMMAND_USAGE;
		}
	}
	FILE *f = fopen(path, "re");
	node_close(&n);
	if (f == NULL) {
		fprintf(stderr, "flipctl: cannot read %s: %s\n", path, strerror(errno));
		return 1;
	}
	/* keep the last `lines` lines in a ring, then follow */
	char **ring = calloc((size_t)(lines > 0 ? lines : 1), sizeof(*ring));
	char *line = NULL;
	size_t cap = 0;
	long count = 0;
	while (ring && getline(&line, &cap, f) > 0) {
		long slot = count++ % (lines > 0 ? lines : 1);
		free(ring[slot]);
		ring[slot] = strdup(line);
	}
	for (long i = count > lines ? count - lines : 0; ring && lines > 0 && i < count; i++)
		trail_print_line(ring[i % lines]);
	for (long i = 0; ring && i < (lines > 0 ? lines : 1); i++)
		free(ring[i]);
	free(ring);
	fflush(stdout);
	while (follow) {
		clearerr(f);
		while (getline(&line, &cap, f) > 0)
			trail_print_line(line);
		fflush(stdout);
		sleep(1);
	}
	free(line);
	fclose(f);
	return 0;
}
