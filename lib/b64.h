/* SPDX-License-Identifier: Apache-2.0 */
/*
 * b64 - strict base64 on OpenSSL's codec.
 *
 * SYNOPSIS
 *	#include "lib/b64.h"
 *
 *	int b64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen);
 *	char *b64_encode(const unsigned char *in, size_t inlen);
 *	int b64url_decode_nopad(const char *in, size_t inlen, unsigned char **out, size_t *outlen);
 *
 * DESCRIPTION
 *	b64_decode() accepts standard base64 only (alphabet A-Z a-z 0-9 + /, length a
 *	multiple of 4, `=` padding only at the end and only as much as needed, no
 *	whitespace, no stray characters, zero padding bits). It allocates *out
 *	(NUL-terminated for convenience, *outlen excludes the NUL). Returns 0, or -1 on
 *	any malformed input (nothing allocated).
 *	b64_encode() returns a malloc'd NUL-terminated standard base64 string, or NULL.
 *	b64url_decode_nopad() is the URL-safe alphabet (-_) without padding, as the hub
 *	writes `encoded_query`; same strictness otherwise.
 *	The decoding itself is OpenSSL's EVP_DecodeBlock; this module only adds the
 *	strictness checks OpenSSL does not make.
 */
#ifndef FLIP_B64_H
#define FLIP_B64_H

#include <stddef.h>

int b64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen);
char *b64_encode(const unsigned char *in, size_t inlen);
int b64url_decode_nopad(const char *in, size_t inlen, unsigned char **out, size_t *outlen);

#endif
