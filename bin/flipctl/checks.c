/* SPDX-License-Identifier: Apache-2.0 */
/*
 * checks - flipctl's set-up checks: doctor (one line per check, doctor.c),
 * policy check (ACCESS_POLICY_FILE as a job loads it) and key-hash (what the hub
 * must hold of TRUST_API_KEY) (see command.h).
 */
#include "bin/flipctl/command.h"

#include "bin/flipctl/doctor.h"
#include "lib/digest.h"
#include "lib/policy.h"

#include <stdio.h>
#include <string.h>

/* checks_doctor - every check on one line, with what to do when it fails (doctor.h) */
int checks_doctor(const struct command *cmd)
{
	struct doctor d = {stdout, 0};
	struct node n;
	char err[1024];

	if (node_open(&n, "flipctl", cmd->config_path, NODE_NEED_HUB, err, sizeof(err)) < 0) {
		doctor_say(&d, DOCTOR_FAIL, "config", "%s", err);
		return 1;
	}
	doctor_local(&d, &n);
	doctor_hub(&d, &n);
	doctor_omop(&d, &n.cfg);
	doctor_pacs(&d, &n.cfg);
	doctor_fl(&d, &n.cfg);
	node_close(&n);
	return d.failed ? 1 : 0;
}

/* checks_policy - ACCESS_POLICY_FILE loaded as a job would; the floor, one line per rule */
int checks_policy(const struct command *cmd, int argc, char **argv)
{
	struct node n;
	struct policy *p;
	char err[1024];
	json_t *d, *r;
	size_t i;

	if (argc != 2 || strcmp(argv[1], "check") != 0)
		return COMMAND_USAGE;
	command_open_node(cmd, &n, 0);
	long floor = n.cfg.cohort_threshold;
	if (n.cfg.access_policy_file == NULL) {
		printf("no policy file configured; effective floor %ld (COHORT_QUERY_THRESHOLD)\n", floor);
		node_close(&n);
		return 0;
	}
	if (policy_load(n.cfg.access_policy_file, floor, &p, err, sizeof(err)) != 0) {
		fprintf(stderr, "flipctl: %s\n", err);
		node_close(&n);
		return 1;
	}
	d = policy_describe(p, floor); /* jansson's getters take NULL (out of memory) */
	printf("%s: valid; effective floor %lld (COHORT_QUERY_THRESHOLD %ld)%s\n",
	       n.cfg.access_policy_file, json_integer_value(json_object_get(d, "floor")), floor,
	       policy_fl_privacy(p) ? "; [fl_privacy] present" : "");
	json_array_foreach(json_object_get(d, "rules"), i, r) {
		json_t *pr = json_object_get(r, "projects"), *f = json_object_get(r, "min_cohort_size");
		printf("  %-24s %-6s %-20s ", json_string_value(json_object_get(r, "id")),
		       json_string_value(json_object_get(r, "effect")),
		       json_string_value(json_object_get(r, "action")));
		printf(pr ? "%zu project(s)" : "all projects", json_array_size(pr));
		printf(f ? ", floor %lld\n" : "\n", json_integer_value(f));
	}
	json_decref(d);
	policy_free(p);
	node_close(&n);
	return 0;
}

/* checks_key_hash - what the hub must hold for this trust */
int checks_key_hash(const struct command *cmd)
{
	struct node n;
	char hex[65];

	command_open_node(cmd, &n, 0);
	if (n.cfg.api_key == NULL)
		command_die_config("TRUST_API_KEY is not set");
	digest_sha256_hex(n.cfg.api_key, strlen(n.cfg.api_key), hex);
	printf("%s\n", hex);
	node_close(&n);
	return 0;
}
