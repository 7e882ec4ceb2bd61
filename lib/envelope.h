/* SPDX-License-Identifier: Apache-2.0 */
/*
 * envelope - FLIP's AES-256-GCM payload envelope (docs/design/hub-protocol.md).
 *
 * SYNOPSIS
 *	#include "lib/envelope.h"
 *
 *	enum err_kind envelope_open(const unsigned char key[32], const char *wire,
 *				    size_t wirelen, const char *context, unsigned char **plain,
 *				    size_t *plainlen, int *tag_failed, char *err, size_t errlen);
 *	char *envelope_seal(const unsigned char key[32], const unsigned char *plain,
 *			    size_t plainlen, const char *context);
 *	void envelope_fingerprint(const unsigned char key[32], char out[13]);
 *	char *envelope_seal_with_nonce(const unsigned char key[32], const unsigned char nonce[12],
 *				       const unsigned char *plain, size_t plainlen,
 *				       const char *context);	(test builds only)
 *
 * DESCRIPTION
 *	Wire form: standard base64 of the UTF-8 JSON object
 *	{"v": 1, "kid": "shared", "iv": B64(12 bytes), "ct": B64(ciphertext || 16-byte tag)};
 *	associated data `FLIP|v1|<kid>|<context>` (context may be "").
 *
 *	envelope_open() makes every strict check of docs/design/hub-protocol.md, each with its own
 *	message, in this order: wire size cap (ENVELOPE_MAX_WIRE), strict base64, JSON
 *	object, `v` an integer (not a boolean) equal to 1, `kid`/`iv`/`ct` strings, kid
 *	known (only "shared"), iv exactly 12 bytes, ct at least 16 bytes, then the tag.
 *	On success *plain is malloc'd (NUL-terminated; *plainlen excludes the NUL);
 *	the caller wipes it with OPENSSL_cleanse before free.
 *	It returns ERR_OK, or ERR_FINAL (lib/err.h) for every refusal: the payload is
 *	refused for good, never retried. err says why: "failed authentication" when
 *	the tag does not verify, else the specific message, e.g. "Unsupported payload
 *	version", "No key registered for kid 'x'". Callers prefix "Invalid payload: ".
 *	*tag_failed (unless tag_failed is NULL) is set to 1 when the refusal is the
 *	tag (sealed with another key, or altered on the way), to 0 otherwise: the one
 *	distinction no kind of lib/err.h carries, which the callers that answer a
 *	project id word differently ("... failed authentication" against "Invalid
 *	..."); it is not ERR_AUTH, which means the hub refused our API key.
 *
 *	envelope_seal() returns the malloc'd wire string with a fresh nonce from the
 *	OpenSSL CSPRNG, in Python's spelling ({"v": 1, "kid": "shared", "iv": ..., "ct": ...}),
 *	or NULL on failure.
 *
 *	envelope_fingerprint() writes the 12 lowercase hex chars of SHA-256 over the
 *	decoded key (the hub's aes_key_fingerprint) and a NUL.
 *
 *	envelope_seal_with_nonce() is envelope_seal() with the caller's nonce, for the
 *	known-answer tests; it exists in test builds (FLIP_TEST_BUILD) only.
 *
 *	Nothing is printed; no key material is ever copied into err.
 */
#ifndef FLIP_ENVELOPE_H
#define FLIP_ENVELOPE_H

#include <stddef.h>

#include "lib/err.h"

#define ENVELOPE_MAX_WIRE (16u * 1024 * 1024)

enum err_kind envelope_open(const unsigned char key[32], const char *wire, size_t wirelen,
			    const char *context, unsigned char **plain, size_t *plainlen,
			    int *tag_failed, char *err, size_t errlen);
char *envelope_seal(const unsigned char key[32], const unsigned char *plain, size_t plainlen,
		    const char *context);
void envelope_fingerprint(const unsigned char key[32], char out[13]);

#ifdef FLIP_TEST_BUILD
/* envelope_seal_with_nonce - envelope_seal with a caller's nonce (known-answer tests only) */
char *envelope_seal_with_nonce(const unsigned char key[32], const unsigned char nonce[12],
			       const unsigned char *plain, size_t plainlen, const char *context);
#endif

#endif
