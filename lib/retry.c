/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retry - exponential backoff with jitter (see retry.h).
 */
#include "lib/retry.h"

#include <openssl/rand.h>

/* retry_backoff - RETRY_FIRST_SECONDS doubling per attempt, capped, jittered */
double retry_backoff(int attempts, double unit_random)
{
	double d = RETRY_FIRST_SECONDS;

	for (int i = 1; i < attempts && d < RETRY_MAX_SECONDS; i++)
		d *= 2.0;
	if (d > RETRY_MAX_SECONDS)
		d = RETRY_MAX_SECONDS;
	return d * (0.5 + 0.5 * unit_random);
}

/* retry_random - uniform in [0, 1), 0.5 when the generator fails */
double retry_random(void)
{
	unsigned int u;

	if (RAND_bytes((unsigned char *)&u, sizeof(u)) != 1)
		return 0.5;
	return (double)u / 4294967296.0;
}
