/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status - `flip-fl status` (see status.h for the contract).
 */
#include "bin/flip-fl/status.h"

#include "lib/flclient.h"
#include "lib/kit.h"
#include "lib/log.h"
#include "lib/node.h"
#include "bin/flip-fl/fl.h"
#include "bin/flip-fl/privacy.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* fmt_duration - 3d 4h, 5m 2s */
static void fmt_duration(double s, char *buf, size_t len)
{
	long t = (long)s;

	if (t >= 86400)
		snprintf(buf, len, "%ldd %ldh", t / 86400, t % 86400 / 3600);
	else if (t >= 3600)
		snprintf(buf, len, "%ldh %ldm", t / 3600, t % 3600 / 60);
	else if (t >= 60)
		snprintf(buf, len, "%ldm %lds", t / 60, t % 60);
	else
		snprintf(buf, len, "%lds", t);
}

/* status_command - flip-fl status [--json] */
int status_command(const struct fl_opts *opt)
{
	struct fl f;
	json_t *doc, *kit, *last, *prog;
	char desc[256], path[4200], date[40], up[32];
	time_t na = 0;
	double now = node_now();
	int installed;

	fl_open(&f, opt, 0, 0);
	doc = flclient_status(&f.sv.rec, now);
	installed = kit_cert_expiry(f.kp.live, &na) == 0 || access(f.kp.startup, F_OK) == 0;
	snprintf(path, sizeof(path), "%s/local/privacy.json", f.kp.live);
	{
		json_error_t jerr;
		json_t *pj = json_load_file(path, 0, &jerr);
		if (pj == NULL)
			snprintf(desc, sizeof(desc), access(path, F_OK) == 0 ? "unreadable" : "none");
		else if (privacy_describe_file(pj, desc, sizeof(desc)) < 0)
			snprintf(desc, sizeof(desc), "unrecognised local/privacy.json");
		json_decref(pj);
	}
	kit = json_pack("{s:s, s:s, s:b, s:o, s:o}", "slot", f.n.cfg.fl_kit_slot, "path", f.kp.live,
			"installed", installed, "cert_not_after",
			na ? json_integer((json_int_t)na) : json_null(), "cert_days_left",
			na ? json_integer((json_int_t)((na - (time_t)now) / 86400)) : json_null());
	if (doc == NULL || kit == NULL) {
		log_error("out of memory");
		fl_close(&f);
		return 1;
	}
	json_object_set_new(doc, "kit", kit);
	json_object_set_new(doc, "privacy", json_string(desc));
	if (opt->json) {
		char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text != NULL)
			printf("%s\n", text);
		free(text);
		json_decref(doc);
		fl_close(&f);
		return 0;
	}
	if (json_is_true(json_object_get(doc, "running"))) {
		fmt_duration(json_number_value(json_object_get(doc, "uptime_seconds")), up, sizeof(up));
		printf("FL client:  running, pid %lld, up %s, %lld restart%s\n",
		       (long long)json_integer_value(json_object_get(doc, "pid")), up,
		       (long long)json_integer_value(json_object_get(doc, "restarts")),
		       json_integer_value(json_object_get(doc, "restarts")) == 1 ? "" : "s");
	} else if (json_is_true(json_object_get(doc, "stopped"))) {
		printf("FL client:  stopped (flip-fl start runs it again)\n");
	} else if (json_is_number(json_object_get(doc, "next_start_at"))) {
		fmt_duration(json_number_value(json_object_get(doc, "next_start_at")) - now, up,
			     sizeof(up));
		printf("FL client:  not running, next start in %s (backoff), %lld restarts\n", up,
		       (long long)json_integer_value(json_object_get(doc, "restarts")));
	} else {
		printf("FL client:  not running (flip-fl run starts it)\n");
	}
	last = json_object_get(doc, "last_exit");
	if (json_is_object(last)) {
		fl_date((time_t)json_number_value(json_object_get(last, "at")), date, sizeof(date));
		printf("last exit:  %s at %s\n", json_string_value(json_object_get(last, "status")),
		       date);
	}
	fl_date(na, date, sizeof(date));
	if (installed)
		printf("kit:        slot %s, client.crt valid until %s\n", f.n.cfg.fl_kit_slot, date);
	else
		printf("kit:        slot %s, not installed (flip-fl install-kit TARBALL)\n",
		       f.n.cfg.fl_kit_slot);
	prog = json_object_get(doc, "progress");
	if (json_is_string(json_object_get(prog, "job"))) {
		printf("job:        %s", json_string_value(json_object_get(prog, "job")));
		if (json_is_integer(json_object_get(prog, "round")))
			printf(", round %lld %s",
			       (long long)json_integer_value(json_object_get(prog, "round")),
			       json_string_value(json_object_get(prog, "round_state")));
		printf("%s\n", json_is_true(json_object_get(prog, "aborted")) ? ", aborted" : "");
	} else {
		printf("job:        none seen in %s\n", f.log_path);
	}
	printf("privacy:    %s\n", desc);
	json_decref(doc);
	fl_close(&f);
	return 0;
}
