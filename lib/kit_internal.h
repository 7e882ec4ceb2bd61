/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kit_internal - what the pieces of the kit module share (not for callers: see kit.h).
 *
 * SYNOPSIS
 *	#include "lib/kit_internal.h"
 *
 *	void kit_find(struct kit_findings *f, int warning, const char *fmt, ...);
 *	const char *kit_echo(const char *s, char *buf, size_t len);
 *
 * DESCRIPTION
 *	The kit module is three files: kit.c (the kit's layout on disk, the checks that
 *	depend on the host, sharing with the FL client's group, local/), kit_archive.c
 *	(kit_stage(), kit_switch(), kit_stage_discard(): a tarball extracted and put in
 *	place) and kit_signature.c (kit_verify(), kit_cert_expiry(): the X.509 side,
 *	signature.json, certificates, the root pin).
 *
 *	kit_find() adds one line to f: a warning when warning is set, else a problem;
 *	past KIT_MAX_FINDINGS problems the last line says that more were cut, extra
 *	warnings are dropped. kit_echo() copies a name read from an archive or a kit
 *	file into buf as a message may show it: control characters as `?`, at most
 *	120 bytes, then `...`; it returns buf.
 *
 *	KIT_PEM_MAX caps every small file of the kit read whole (PEM files,
 *	signature.json, fed_client.json, local/).
 */
#ifndef FLIP_KIT_INTERNAL_H
#define FLIP_KIT_INTERNAL_H

#include <stddef.h>

#include "lib/kit.h"

#define KIT_PEM_MAX (1L << 20)

void kit_find(struct kit_findings *f, int warning, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *kit_echo(const char *s, char *buf, size_t len);

#endif
