/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crash - named crash points, compiled only into test builds (see crash.h).
 */
#include "lib/crash.h"

#ifdef FLIP_TEST_BUILD
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* crash_point - _exit(99) when FLIP_CRASH_AT names this point (and hit count) */
void crash_point(const char *name)
{
	static char last[64];
	static long hits;
	const char *want = getenv("FLIP_CRASH_AT");
	size_t n = strlen(name);
	long nth = 1;

	if (want == NULL || strncmp(want, name, n) != 0)
		return;
	if (want[n] == '@')
		nth = strtol(want + n + 1, NULL, 10);
	else if (want[n] != 0)
		return;
	/* one counter is enough: a test names a single point per process */
	if (strcmp(last, name) != 0) {
		strncpy(last, name, sizeof(last) - 1);
		hits = 0;
	}
	if (++hits == nth)
		_exit(99);
}

/* crash_pause - sleep once when FLIP_PAUSE_AT is "<name>:<seconds>" */
void crash_pause(const char *name)
{
	static int done;
	const char *want = getenv("FLIP_PAUSE_AT");
	size_t n = strlen(name);

	if (done || want == NULL || strncmp(want, name, n) != 0 || want[n] != ':')
		return;
	done = 1;
	double secs = strtod(want + n + 1, NULL);
	if (secs > 0 && secs < 600)
		usleep((useconds_t)(secs * 1e6));
}
#else
/* keeps this translation unit non-empty in release builds (ISO C) */
typedef int crash_release_build;
#endif
