/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_envelope - libFuzzer target for the envelope decoder and strict base64.
 *
 * The input is tried three ways:
 *   1. as the wire text: envelope_open() with the known-answer key under several
 *      contexts (the known-answer vector opens under "kat", fails the tag under
 *      the others);
 *   2. as the decoded envelope document: base64-encoded first, so that mutations
 *      reach the JSON checks (v, kid, iv, ct) instead of dying in base64;
 *   3. as base64 text: b64_decode() and b64url_decode_nopad(), which must be
 *      exact inverses of the canonical encoders (strict means: whatever decodes,
 *      re-encodes to the very same text), and the encoders' output must decode.
 * Invariants are checked with abort(), so a broken one is a crash libFuzzer saves.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lib/b64.h"
#include "lib/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the FLIP known-answer key: bytes 00 01 .. 1f */
static const unsigned char fuzz_key[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
	0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
	0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

/* the known-answer context, none, and the two the node uses */
static const char *const fuzz_contexts[] = {"kat", "", "project_id", "task:cohort_query"};

/* fuzz_open - one envelope_open() and its contract */
static void fuzz_open(const char *wire, size_t len, const char *context)
{
	unsigned char *plain = NULL;
	size_t plainlen = 0;
	char err[256];
	int rc, tag_failed = -1;

	err[0] = 0;
	rc = envelope_open(fuzz_key, wire, len, context, &plain, &plainlen, &tag_failed, err,
			   sizeof(err));
	if (rc == ERR_OK) {
		if (tag_failed != 0)
			abort();
		if (plain == NULL || plain[plainlen] != 0)
			abort();
		OPENSSL_cleanse(plain, plainlen);
		free(plain);
		return;
	}
	if (rc != ERR_FINAL || (tag_failed != 0 && tag_failed != 1) || plain != NULL ||
	    plainlen != 0 || err[0] == 0 || memchr(err, 0, sizeof(err)) == NULL)
		abort();
	if (tag_failed && strcmp(err, "failed authentication") != 0)
		abort();
}

/* fuzz_b64 - strict decoding is the exact inverse of canonical encoding */
static void fuzz_b64(const uint8_t *data, size_t size, const char *enc)
{
	unsigned char *out = NULL;
	size_t outlen = 0, enclen = strlen(enc), n;
	char *again, *url;

	/* the input as standard base64 */
	if (b64_decode((const char *)data, size, &out, &outlen) == 0) {
		if (out == NULL || out[outlen] != 0)
			abort();
		again = b64_encode(out, outlen);
		if (again == NULL || strlen(again) != size || memcmp(again, data, size) != 0)
			abort();
		free(again);
		free(out);
	} else if (out != NULL || outlen != 0) {
		abort();
	}

	/* the input as URL-safe base64 without padding */
	out = NULL;
	if (b64url_decode_nopad((const char *)data, size, &out, &outlen) == 0) {
		if (out == NULL || out[outlen] != 0)
			abort();
		again = b64_encode(out, outlen);
		if (again == NULL)
			abort();
		for (n = 0; again[n] != 0 && again[n] != '='; n++)
			again[n] = again[n] == '+' ? '-' : again[n] == '/' ? '_' : again[n];
		if (n != size || memcmp(again, data, size) != 0)
			abort();
		free(again);
		free(out);
	} else if (out != NULL || outlen != 0) {
		abort();
	}

	/* what the encoder writes always decodes back, in both alphabets */
	out = NULL;
	if (b64_decode(enc, enclen, &out, &outlen) != 0 || outlen != size ||
	    memcmp(out, data, size) != 0)
		abort();
	free(out);
	url = strdup(enc);
	if (url == NULL)
		abort();
	for (n = 0; url[n] != 0 && url[n] != '='; n++)
		url[n] = url[n] == '+' ? '-' : url[n] == '/' ? '_' : url[n];
	url[n] = 0;
	out = NULL;
	if (b64url_decode_nopad(url, n, &out, &outlen) != 0 || outlen != size ||
	    memcmp(out, data, size) != 0)
		abort();
	free(out);
	free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *doc64;

	for (size_t i = 0; i < sizeof(fuzz_contexts) / sizeof(fuzz_contexts[0]); i++)
		fuzz_open((const char *)data, size, fuzz_contexts[i]);

	doc64 = b64_encode(data, size);
	if (doc64 == NULL)
		return 0;
	fuzz_open(doc64, strlen(doc64), "kat");
	fuzz_open(doc64, strlen(doc64), "project_id");
	fuzz_b64(data, size, doc64);
	free(doc64);
	return 0;
}
