/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_payload - libFuzzer target for the task payload validator.
 *
 * The input is parsed as JSON the way intake does (json_loadb with
 * JSON_REJECT_DUPLICATES) and checked against the schema of each of the seven
 * task types. Input that intake's flags refuse is parsed again with
 * JSON_DECODE_ANY | JSON_ALLOW_NUL as well, so that bare scalars and strings
 * holding NUL reach the validator's own defences. The input is also used, as a C
 * string, as an unknown task type (the echo in the message) and as a UUID for
 * task_uuid_ok() / task_uuid_canonical(), against a reference written here.
 * Every message must be one line of printable ASCII ("Invalid payload: ..." or
 * "Unknown task type: ..."). Broken invariants abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "lib/task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_printable - the message is one line of printable ASCII */
static void fuzz_printable(const char *msg)
{
	for (; *msg; msg++)
		if ((unsigned char)*msg < 0x20 || (unsigned char)*msg > 0x7e)
			abort();
}

/* fuzz_check_all - the payload against every task type's schema */
static void fuzz_check_all(const json_t *payload)
{
	char err[512];
	size_t n = 0;
	int rc;

	for (const char *const *t = task_types; *t != NULL; t++, n++) {
		err[0] = 0;
		rc = task_payload_check(*t, payload, err, sizeof(err));
		if (rc == 0)
			continue;
		if (rc != -1 || strncmp(err, "Invalid payload: ", 17) != 0)
			abort();
		fuzz_printable(err);
	}
	if (n != 7)
		abort();
}

/* fuzz_uuid_ref - the reference: exactly 36 chars, 8-4-4-4-12 hex */
static int fuzz_uuid_ref(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (strchr("0123456789abcdefABCDEF", s[i]) == NULL) {
			return 0;
		}
	}
	return 1;
}

/* fuzz_text - the input as a C string: task type and UUID */
static void fuzz_text(const char *s, const json_t *payload)
{
	char out[37], err[512];
	int ok = task_uuid_ok(s);

	if (ok != fuzz_uuid_ref(s))
		abort();
	memset(out, 'x', sizeof(out));
	if (task_uuid_canonical(s, out) != (ok ? 0 : -1))
		abort();
	if (ok && (out[36] != 0 || strcasecmp(out, s) != 0 || !task_uuid_ok(out) ||
		   strpbrk(out, "ABCDEF") != NULL))
		abort();

	if (task_type_known(s))
		return;
	err[0] = 0;
	if (task_payload_check(s, payload, err, sizeof(err)) != -1 ||
	    strncmp(err, "Unknown task type: ", 19) != 0 || strlen(err) > 19 + 64 + 3)
		abort();
	fuzz_printable(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *payload;
	char *s;

	payload = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (payload == NULL)
		payload = json_loadb((const char *)data, size,
				     JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (payload != NULL)
		fuzz_check_all(payload);

	s = malloc(size + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = 0;
	fuzz_text(s, payload);
	free(s);
	json_decref(payload);
	return 0;
}
