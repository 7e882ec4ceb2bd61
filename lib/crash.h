/*
 * crash - named crash points for fault-injection tests (test builds only).
 *
 * SYNOPSIS
 *	#include "crash.h"
 *
 *	CRASH_POINT("after_fetch");
 *
 * DESCRIPTION
 *	In a test build (-DFLIP_TEST_BUILD), CRASH_POINT(name) calls _exit(99) when
 *	the environment variable FLIP_CRASH_AT names this point: either `name` (the
 *	first time it is reached) or `name@N` (the N-th time in this process). In a
 *	release build the macro is empty and FLIP_CRASH_AT has no effect at all.
 *
 *	Points: poll.after_fetch, poll.mid_spool, poll.after_spool, exec.after_claim,
 *	exec.mid_handler, exec.after_result, report.after_cohort_post,
 *	report.after_post, report.after_state.
 */
#ifndef FLIP_CRASH_H
#define FLIP_CRASH_H

#ifdef FLIP_TEST_BUILD
void crash_point(const char *name);
#define CRASH_POINT(name) crash_point(name)
#else
#define CRASH_POINT(name) ((void)0)
#endif

#endif
