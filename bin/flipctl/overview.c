/* SPDX-License-Identifier: Apache-2.0 */
/*
 * overview - flipctl status: what status_collect() found, on one screen for a
 * person, or as JSON with --json (see command.h).
 */
#include "bin/flipctl/command.h"

#include "bin/flipctl/status.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* overview_command - flipctl status: one screen */
int overview_command(const struct command *cmd, int argc, char **argv)
{
	struct node n;
	int as_json = argc == 2 && strcmp(argv[1], "--json") == 0;

	if (argc > 2 || (argc == 2 && !as_json))
		return COMMAND_USAGE;
	command_open_node(cmd, &n, NODE_SPOOL);
	json_t *s = status_collect(&n);
	if (as_json) {
		command_print_json(s);
	} else {
		json_t *hub = json_object_get(s, "hub"), *reply = json_object_get(hub, "reply");
		if (json_is_object(hub)) {
			json_t *fpm = json_object_get(hub, "fingerprint_match");
			printf("hub        %s (%s), last heartbeat answer %s, hub version %s, AES key "
			       "%s\n",
			       json_string_value(json_object_get(reply, "trust_name")) ?: "?",
			       json_string_value(json_object_get(reply, "trust_id")) ?: "?",
			       json_string_value(json_object_get(hub, "received_at")) ?: "?",
			       json_string_value(json_object_get(reply, "hub_version")) ?: "unknown",
			       json_integer_value(fpm) == 1 ? "matches the hub's"
			       : json_integer_value(fpm) == 0 ? "DOES NOT MATCH the hub's (stale kit)"
							       : "not compared (hub did not say)");
		} else {
			printf("hub        no heartbeat answer yet (is flip-poll.timer running?)\n");
		}
		printf("spool      %s\n", n.cfg.spool_dir);
		const char *key;
		json_t *v;
		json_object_foreach(json_object_get(s, "spool"), key, v) {
			char age[16] = "";
			json_int_t jobs = json_integer_value(json_object_get(v, "jobs"));
			if (jobs)
				command_age(json_real_value(json_object_get(v, "oldest_age_seconds")), age,
					sizeof(age));
			printf("  %-8s %6lld%s%s\n", key, (long long)jobs, jobs ? "  oldest " : "", age);
		}
		json_object_foreach(json_object_get(s, "disk"), key, v) {
			if (!json_is_true(json_object_get(v, "low")))
				continue;	/* quiet when healthy */
			printf("disk       %s %s: %.0f KiB free of %.0f KiB: FULL, results cannot be "
			       "written; free space there (jobs wait and resume by themselves)\n", key,
			       json_string_value(json_object_get(v, "path")),
			       json_real_value(json_object_get(v, "free_bytes")) / 1024.0,
			       json_real_value(json_object_get(v, "total_bytes")) / 1024.0);
		}
		json_object_foreach(json_object_get(s, "programs"), key, v) {
			if (!json_is_object(v)) {
				printf("%-11s never ran\n", key);
				continue;
			}
			char age[16];
			command_age(difftime(time(NULL), (time_t)json_real_value(json_object_get(v, "last_run"))),
				age, sizeof(age));
			printf("%-11s last run %s ago, %s\n", key, age,
			       json_is_true(json_object_get(v, "success")) ? "ok" : "FAILED");
		}
		json_t *imaging = json_object_get(s, "imaging"), *proj;
		size_t k;
		if (json_array_size(imaging) == 0)
			printf("imaging    no imaging project\n");
		json_array_foreach(imaging, k, proj) {
			json_t *c = json_object_get(proj, "counts");
			printf("imaging    %s: %lld successful, %lld processing, %lld queued, %lld failed, "
			       "%lld queue_failed (%lld burned_in_annotation)\n",
			       json_string_value(json_object_get(proj, "id")),
			       (long long)json_integer_value(json_object_get(c, "successful")),
			       (long long)json_integer_value(json_object_get(c, "processing")),
			       (long long)json_integer_value(json_object_get(c, "queued")),
			       (long long)json_integer_value(json_object_get(c, "failed")),
			       (long long)json_integer_value(json_object_get(c, "queue_failed")),
			       (long long)json_integer_value(json_object_get(c, "burned_in_annotation")));
		}
		json_t *fl = json_object_get(s, "fl_client");
		if (!json_is_object(fl))
			printf("fl-client  not set up on this node (flip-fl install-kit, then the timer)\n");
		else if (json_is_true(json_object_get(fl, "running")))
			printf("fl-client  running, pid %lld, up %.0f s, %lld restart%s\n",
			       (long long)json_integer_value(json_object_get(fl, "pid")),
			       json_real_value(json_object_get(fl, "uptime_seconds")),
			       (long long)json_integer_value(json_object_get(fl, "restarts")),
			       json_integer_value(json_object_get(fl, "restarts")) == 1 ? "" : "s");
		else
			printf("fl-client  %s (flip-fl status for details)\n",
			       json_is_true(json_object_get(fl, "stopped")) ? "stopped by the operator"
									 : "NOT RUNNING");
	}
	json_decref(s);
	node_close(&n);
	return 0;
}
