/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sqlguard - libFuzzer target for the SQL guard: any byte string, made
 * NUL-terminated, through sqlguard_check. What it accepts must come back
 * unchanged from a second check (the guard's own idempotence promise), and an
 * error must be a non-empty, NUL-terminated message.
 *
 *	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *	    tests/fuzz/fuzz_sqlguard.c jobs/sqlguard.c jobs/sqlguard_names.c -lpg_query \
 *	    $(pkg-config --cflags --libs libprotobuf-c) -o /tmp/fuzz_sqlguard
 *	mkdir -p /tmp/sqlguard-corpus
 *	/tmp/fuzz_sqlguard -max_total_time=60 /tmp/sqlguard-corpus tests/fuzz/corpus/sqlguard
 *
 * The scratch directory comes first: libFuzzer writes new inputs into the first
 * corpus directory, and the checked-in seeds should stay a small, chosen set.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/sqlguard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	char *sql, *out, *again;

	/* past 4 bytes a character the length cap refuses before parsing */
	if (size > 4 * SQLGUARD_MAX_LENGTH + 8)
		return 0;
	sql = malloc(size + 1);
	if (sql == NULL)
		return 0;
	memcpy(sql, data, size);
	sql[size] = '\0';
	out = sqlguard_check(sql, err, sizeof(err));
	if (out == NULL) {
		if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
			abort();
	} else {
		again = sqlguard_check(out, err, sizeof(err));
		if (again == NULL || strcmp(again, out) != 0)
			abort();
		free(again);
		free(out);
	}
	free(sql);
	return 0;
}
