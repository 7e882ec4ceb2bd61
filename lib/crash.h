/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crash - named crash points for fault-injection tests (test builds only).
 *
 * SYNOPSIS
 *	#include "lib/crash.h"
 *
 *	CRASH_POINT("after_fetch");
 *	PAUSE_POINT("imaging.after_instance");
 *	void crash_point(const char *name);
 *	void crash_pause(const char *name);
 *
 * DESCRIPTION
 *	In a test build (-DFLIP_TEST_BUILD), CRASH_POINT(name) calls _exit(99) when
 *	the environment variable FLIP_CRASH_AT names this point: either `name` (the
 *	first time it is reached) or `name@N` (the N-th time in this process). In a
 *	release build the macro is empty and FLIP_CRASH_AT has no effect at all.
 *
 *	PAUSE_POINT(name) sleeps when FLIP_PAUSE_AT is `name:SECONDS`, the first time the
 *	point is reached, so a test can act while a program is provably in the middle of
 *	its work (a project deleted during retrieval). Test builds only, like CRASH_POINT.
 *	crash_point() and crash_pause() are what the two macros call in a test build;
 *	code uses the macros.
 *
 *	Points: poll.after_fetch, poll.mid_spool, poll.after_spool, exec.after_claim,
 *	exec.mid_handler, exec.after_result, report.after_cohort_post,
 *	report.after_post, report.after_state.
 */
#ifndef FLIP_CRASH_H
#define FLIP_CRASH_H

#ifdef FLIP_TEST_BUILD
void crash_point(const char *name);
void crash_pause(const char *name);
#define CRASH_POINT(name) crash_point(name)
#define PAUSE_POINT(name) crash_pause(name)
#else
#define CRASH_POINT(name) ((void)0)
#define PAUSE_POINT(name) ((void)0)
#endif

#endif
