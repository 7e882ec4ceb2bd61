/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retry - the one backoff every program retries with.
 *
 * SYNOPSIS
 *	#include "lib/retry.h"
 *
 *	double retry_backoff(int attempts, double unit_random);
 *	double retry_random(void);
 *
 * DESCRIPTION
 *	retry_backoff() is the delay before the next attempt after `attempts` failed
 *	ones: 2 s doubling per attempt, capped at RETRY_MAX_SECONDS (10 min), with
 *	jitter: the delay is scaled by 0.5 + 0.5 * unit_random, so that nodes that
 *	failed together do not retry together. flip-report uses it for uploads,
 *	flip-exec for jobs whose service (OMOP, PACS, disk) was unavailable.
 *
 *	retry_random() is a uniform number in [0, 1) from OpenSSL's generator (0.5
 *	when the generator fails: the middle of the jitter).
 */
#ifndef FLIP_RETRY_H
#define FLIP_RETRY_H

#define RETRY_FIRST_SECONDS 2.0
#define RETRY_MAX_SECONDS 600.0

double retry_backoff(int attempts, double unit_random);
double retry_random(void);

#endif
