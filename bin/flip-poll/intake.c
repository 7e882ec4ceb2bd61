/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intake - fetch pending tasks and spool them durably (see intake.h).
 *
 * The hub claims tasks when it returns them, with no acknowledgement call, so
 * between the reply and the fsync of the state directories a task exists only in
 * this process. The code keeps that window short and free of anything that can
 * block (no network, no database): parse, open, check, write, rename, fsync.
 */
#include "bin/flip-poll/intake.h"

#include "lib/crash.h"
#include "lib/envelope.h"
#include "lib/ident.h"
#include "lib/log.h"
#include "lib/jobfile.h"
#include "lib/result.h"
#include "lib/task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include <openssl/crypto.h>

struct intake_known {
	char *task_id;
	char *name;
	enum spool_state state;
};

struct intake_index {
	struct intake_known *v;
	size_t n;
};

/* one task of the hub's reply, as classified before anything is written */
struct intake_item {
	const char *id;
	const char *type;
	const char *created_at;
	json_t *payload;	/* opened and checked payload (new reference), or NULL */
	char *error;		/* refusal message, or NULL */
	enum spool_state dest;
	struct job job;
	int is_new;
};

/*
 * intake_str - a member's string value, or NULL when it is not a string or holds a
 * NUL (the reply is parsed with JSON_ALLOW_NUL so one bad id cannot cost the whole
 * batch; C would silently cut such a string short, so it is no string at all here).
 */
static const char *intake_str(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	const char *s = json_string_value(v);

	return s && strlen(s) == json_string_length(v) ? s : NULL;
}

static int intake_known_cmp(const void *a, const void *b)
{
	return strcmp(((const struct intake_known *)a)->task_id,
		      ((const struct intake_known *)b)->task_id);
}

static void intake_index_free(struct intake_index *ix)
{
	for (size_t i = 0; i < ix->n; i++)
		free(ix->v[i].name);
	free(ix->v);
	ix->v = NULL;
	ix->n = 0;
}

/* intake_index_build - every task id in the spool (all states but tmp/), sorted */
static int intake_index_build(struct spool *sp, struct intake_index *ix)
{
	size_t cap = 0;

	ix->v = NULL;
	ix->n = 0;
	for (int st = SPOOL_NEW; st < SPOOL_NSTATES; st++) {
		char **names;
		size_t cnt;

		if (spool_list(sp, (enum spool_state)st, &names, &cnt) < 0)
			goto fail;
		for (size_t i = 0; i < cnt; i++) {
			if (ix->n == cap) {
				size_t ncap = cap ? cap * 2 : 256;
				struct intake_known *nv = realloc(ix->v, ncap * sizeof(*nv));
				if (nv == NULL) {
					for (; i < cnt; i++)
						free(names[i]);
					free(names);
					goto fail;
				}
				ix->v = nv;
				cap = ncap;
			}
			ix->v[ix->n].name = names[i];	/* ownership moves to the index */
			ix->v[ix->n].task_id = names[i] + SPOOL_SEQ_PREFIX;
			ix->v[ix->n].state = (enum spool_state)st;
			ix->n++;
		}
		free(names);
	}
	if (ix->n > 1)
		qsort(ix->v, ix->n, sizeof(*ix->v), intake_known_cmp);
	return 0;
fail:
	intake_index_free(ix);
	return -1;
}

static const struct intake_known *intake_index_find(const struct intake_index *ix, const char *id)
{
	struct intake_known key = {(char *)(uintptr_t)id, NULL, SPOOL_NEW};

	return ix->n ? bsearch(&key, ix->v, ix->n, sizeof(*ix->v), intake_known_cmp) : NULL;
}

/* intake_open_payload - open the envelope and check the schema; NULL + *error on failure */
static json_t *intake_open_payload(struct node *n, const char *type, json_t *wire, char **error)
{
	unsigned char *plain = NULL;
	size_t plainlen = 0;
	char context[64], msg[512];
	json_t *payload = NULL;
	json_error_t jerr;
	int rc;

	*error = NULL;
	if (!json_is_string(wire)) {
		snprintf(msg, sizeof(msg), "Invalid payload: payload must be a string");
		goto refuse;
	}
	snprintf(context, sizeof(context), "task:%s", type);
	rc = envelope_open(n->cfg.aes_key, json_string_value(wire), json_string_length(wire),
			   context, &plain, &plainlen, NULL, msg + 17, sizeof(msg) - 17);
	if (rc != ERR_OK) {
		memcpy(msg, "Invalid payload: ", 17);
		goto refuse;
	}
	payload = json_loadb((const char *)plain, plainlen, JSON_REJECT_DUPLICATES, &jerr);
	OPENSSL_cleanse(plain, plainlen);
	free(plain);
	if (payload == NULL) {
		snprintf(msg, sizeof(msg), "Invalid payload: decrypted payload is not valid JSON");
		goto refuse;
	}
	if (task_payload_check(type, payload, msg, sizeof(msg)) < 0) {
		json_decref(payload);
		goto refuse;
	}
	return payload;
refuse:
	*error = strdup(msg);
	return NULL;
}

static void intake_now_iso(char *out, size_t outlen)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%.20s.%03dZ", base, (int)(ts.tv_nsec / 1000000L));
}

/* intake_write_job - create the job in tmp/ with task.json (and result.json when refused) */
static int intake_write_job(struct node *n, struct intake_item *it, unsigned long long seq,
			    const char *fetched_at)
{
	json_t *task, *result = NULL;
	int rc = -1;

	if (spool_job_create(&n->sp, seq, it->id, &it->job) < 0)
		return -1;
	task = json_pack("{s:s,s:s,s:s?,s:I,s:s,s:O?}", "id", it->id, "task_type", it->type,
			 "created_at", it->created_at, "seq", (json_int_t)seq, "fetched_at",
			 fetched_at, "payload", it->payload);
	if (task == NULL)
		goto out;
	if (it->payload == NULL)
		json_object_set_new(task, "payload", json_null());
	if (it->error) {
		json_object_set_new(task, "refused", json_string(it->error));
		/* 400: the hub sent something this node cannot run as it stands */
		result = result_failure(it->error, 400);
		if (result == NULL || spool_job_write_json(&it->job, JOBFILE_RESULT, result) < 0)
			goto out;
	}
	rc = spool_job_write_json(&it->job, JOBFILE_TASK, task);
out:
	json_decref(task);
	json_decref(result);
	return rc;
}

/* intake_redelivered - a task id the spool already holds */
static void intake_redelivered(struct node *n, const struct intake_known *k, const char *type)
{
	struct job job;
	const char *outcome = "left alone";

	if (spool_job_open(&n->sp, k->state, k->name, &job) < 0) {
		log_error("task %s re-delivered, but its job in %s/ cannot be opened: %s",
			  k->task_id, spool_state_name(k->state), strerror(errno));
		return;
	}
	switch (k->state) {
	case SPOOL_OUT:
		outcome = jobfile_report_due(&job, 1) == 0 ? "report due now" : "bookkeeping failed";
		break;
	case SPOOL_DONE:
	case SPOOL_FAILED:
		if (jobfile_report_due(&job, 1) == 0 && spool_job_move(&job, SPOOL_OUT, 1) == 0)
			outcome = "stored result to be reported again";
		else
			outcome = "could not requeue the stored result";
		break;
	default:
		break;
	}
	log_info("task %s re-delivered by the hub while in %s/: %s", k->task_id,
		 spool_state_name(k->state), outcome);
	spool_job_log(&job, "re-delivered by the hub while in %s/: %s",
		      spool_state_name(k->state), outcome);
	node_audit(n, "task.redelivered", k->task_id, type,
		   json_pack("{s:s,s:s}", "state", spool_state_name(k->state), "outcome", outcome));
	spool_job_close(&job);
}

/* intake_classify - decide what happens to one task of the reply */
static int intake_classify(struct node *n, json_t *t, size_t i, struct intake_item *it)
{

	memset(it, 0, sizeof(*it));
	it->job.dirfd = -1;
	it->id = intake_str(t, "id");
	if (!json_is_object(t) || it->id == NULL || !ident_ok(IDENT_TASK_ID, it->id)) {
		log_error("task %zu of the hub's reply has no usable id; not spooled "
			  "(the hub will re-deliver it after its requeue timeout)", i + 1);
		node_audit(n, "task.unspoolable", NULL, NULL, json_pack("{s:I}", "position",
									 (json_int_t)(i + 1)));
		return -1;
	}
	it->created_at = intake_str(t, "created_at");
	it->type = intake_str(t, "task_type");
	if (it->type == NULL || !task_type_known(it->type)) {
		char msg[160];
		/* the type may be anything: keep it short and printable in the message */
		char shown[41] = "";
		for (size_t j = 0; it->type && it->type[j] && j < 40; j++)
			shown[j] = (it->type[j] >= 0x20 && it->type[j] < 0x7f) ? it->type[j] : '?';
		snprintf(msg, sizeof(msg), "Unknown task type: %s", shown);
		it->error = strdup(msg);
		it->type = it->type && strlen(it->type) <= 40 && shown[0] ? it->type : "unknown";
		it->dest = SPOOL_OUT;
	} else {
		it->payload = intake_open_payload(n, it->type, json_object_get(t, "payload"),
						  &it->error);
		it->dest = it->payload == NULL ? SPOOL_OUT
			 : config_hold_type(&n->cfg, it->type) ? SPOOL_HOLD : SPOOL_NEW;
	}
	if (it->payload == NULL && it->error == NULL)
		return -1;	/* out of memory */
	it->is_new = 1;
	return 0;
}

/* intake_accept - spool the tasks of one reply */
enum err_kind intake_accept(struct node *n, json_t *tasks, struct intake_stats *st, char *err,
			    size_t errlen)
{
	size_t count = json_array_size(tasks), nnew = 0, i;
	struct intake_item *items = NULL;
	struct intake_index ix = {NULL, 0};
	unsigned long long seq = 0;
	char fetched_at[40];
	enum err_kind rc = ERR_OK;

	if (count == 0)
		return ERR_OK;
	items = calloc(count, sizeof(*items));
	if (items == NULL || intake_index_build(&n->sp, &ix) < 0) {
		snprintf(err, errlen, "cannot read the spool %s: %s", n->cfg.spool_dir,
			 strerror(errno));
		free(items);
		return ERR_TRANSIENT;
	}
	/* pass 1: classify (re-deliveries are handled at once: they claim nothing new) */
	for (i = 0; i < count; i++) {
		json_t *t = json_array_get(tasks, i);
		const char *id = intake_str(t, "id");
		const struct intake_known *k = id ? intake_index_find(&ix, id) : NULL;
		int dup = 0;

		for (size_t j = 0; id && j < i && !dup; j++)
			dup = items[j].id && strcmp(items[j].id, id) == 0;
		if (dup) {
			log_warn("task %s appears twice in one hub reply; spooled once", id);
			st->skipped++;
			continue;
		}
		if (k != NULL) {
			items[i].id = id;
			intake_redelivered(n, k, intake_str(t, "task_type"));
			st->redelivered++;
			continue;
		}
		if (intake_classify(n, t, i, &items[i]) < 0) {
			st->skipped++;
			continue;
		}
		nnew++;
	}
	if (nnew == 0)
		goto out;
	intake_now_iso(fetched_at, sizeof(fetched_at));
	/*
	 * pass 2: write every new job in tmp/; pass 3: one flush, so the files are on
	 * disk before any job becomes visible; pass 4: rename each into place; pass 5:
	 * one flush, so the renames are on disk before the hub's claim is all we had.
	 */
	spool_defer_sync(&n->sp, 1);
	if (spool_seq_reserve(&n->sp, (unsigned)nnew, &seq) < 0) {
		snprintf(err, errlen, "cannot reserve sequence numbers in %s: %s",
			 n->cfg.spool_dir, strerror(errno));
		rc = ERR_TRANSIENT;
		goto out;
	}
	for (i = 0; i < count; i++) {
		if (!items[i].is_new)
			continue;
		if (intake_write_job(n, &items[i], seq++, fetched_at) < 0) {
			snprintf(err, errlen, "cannot write task %s into %s/tmp: %s; the tasks of "
				 "this fetch return after the hub's requeue timeout (30 min)",
				 items[i].id, n->cfg.spool_dir, strerror(errno));
			rc = ERR_TRANSIENT;
			goto out;	/* tmp/ leftovers are removed by the next run */
		}
	}
	if (spool_flush(&n->sp) < 0) {
		snprintf(err, errlen, "cannot flush the spool %s to disk: %s", n->cfg.spool_dir,
			 strerror(errno));
		rc = ERR_TRANSIENT;
		goto out;
	}
	/*
	 * The audit lines go down before any job becomes visible, so no crash can leave a
	 * job that runs and is reported without its task.fetched line (a crash after them
	 * leaves a line for a task the hub claimed and will re-deliver: true, too).
	 */
	node_audit_batch(n, 1);
	for (i = 0; i < count; i++) {
		struct intake_item *it = &items[i];
		if (!it->is_new)
			continue;
		if (it->dest == SPOOL_OUT) {
			st->refused++;
			log_warn("task %s (%s) refused: %s", it->id, it->type, it->error);
		} else {
			st->spooled++;
		}
		node_audit(n, "task.fetched", it->id, it->type,
			   json_pack("{s:I,s:s,s:s?}", "seq", (json_int_t)it->job.seq, "state",
				     spool_state_name(it->dest), "refused", it->error));
	}
	node_audit_batch(n, 0);
	for (i = 0; i < count; i++) {
		if (!items[i].is_new)
			continue;
		if (spool_job_move(&items[i].job, items[i].dest, 0) < 0) {
			snprintf(err, errlen, "cannot move task %s into %s/%s: %s", items[i].id,
				 n->cfg.spool_dir, spool_state_name(items[i].dest), strerror(errno));
			rc = ERR_TRANSIENT;
			goto out;
		}
		CRASH_POINT("poll.mid_spool");
	}
	if (spool_flush(&n->sp) < 0) {
		snprintf(err, errlen, "cannot flush the spool %s to disk: %s", n->cfg.spool_dir,
			 strerror(errno));
		rc = ERR_TRANSIENT;
		goto out;
	}
	CRASH_POINT("poll.after_spool");
out:
	spool_defer_sync(&n->sp, 0);
	for (i = 0; i < count; i++) {
		if (items[i].job.dirfd >= 0)
			spool_job_close(&items[i].job);
		json_decref(items[i].payload);
		free(items[i].error);
	}
	free(items);
	intake_index_free(&ix);
	return rc;
}

/* intake_fetch - GET /tasks/pending and spool what came back */
enum err_kind intake_fetch(struct node *n, struct hub *h, struct intake_stats *st, char *err,
			   size_t errlen)
{
	struct hub_reply r;
	json_t *reply = NULL, *tasks;
	char detail[320];
	enum err_kind rc;

	memset(st, 0, sizeof(*st));
	struct statvfs v;
	if (statvfs(n->cfg.spool_dir, &v) == 0 &&
	    (double)v.f_bavail * (double)v.f_frsize < (double)INTAKE_MIN_FREE) {
		snprintf(err, errlen, "not fetching tasks: the disk holding %s has %.0f KiB free "
			 "(under %d KiB) and every task the hub hands over must be kept; free space "
			 "there", n->cfg.spool_dir, (double)v.f_bavail * (double)v.f_frsize / 1024.0,
			 INTAKE_MIN_FREE / 1024);
		return ERR_TRANSIENT;
	}
	hub_call(h, "GET", "/tasks/pending", NULL, 0, &r);
	int resent = r.maybe_resent;
	if (r.status != 200) {
		hub_detail(&r, detail, sizeof(detail));
		if (r.status == 401) {
			snprintf(err, errlen, "the hub refused the API key (401: %s)", detail);
			rc = ERR_AUTH;
		} else {
			if (r.status)
				snprintf(err, errlen, "fetching tasks failed: HTTP %ld: %s", r.status,
					 detail);
			else
				snprintf(err, errlen, "fetching tasks failed: %s", detail);
			rc = ERR_TRANSIENT;
		}
		hub_reply_free(&r);
		return rc;
	}
	reply = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	hub_reply_free(&r);
	tasks = json_object_get(reply, "tasks");
	if (!json_is_array(tasks) || json_array_size(tasks) > INTAKE_MAX_TASKS) {
		/*
		 * The hub may have claimed tasks we cannot read. Nothing is lost for good:
		 * they return to PENDING after the hub's requeue timeout.
		 */
		snprintf(err, errlen, "the hub's task list is malformed (%s); tasks it claimed "
			 "return after its requeue timeout", reply ? "no tasks array" : "not JSON");
		json_decref(reply);
		return ERR_TRANSIENT;
	}
	st->fetched = (int)json_array_size(tasks);
	CRASH_POINT("poll.after_fetch");
	rc = intake_accept(n, tasks, st, err, errlen);
	json_decref(reply);
	if (rc == ERR_OK && resent) {
		/*
		 * libcurl asked again on a new connection after the first answer was lost: the
		 * first GET may have claimed tasks that never reached us. Nothing can fetch them
		 * again before the hub's requeue timeout (30 min); say so.
		 */
		snprintf(err, errlen, "fetching tasks failed: the connection dropped before the "
			 "answer and libcurl asked again, so tasks claimed by the first request "
			 "return only after the hub's requeue timeout (30 min)");
		rc = ERR_TRANSIENT;
	}
	return rc;
}
