/* SPDX-License-Identifier: Apache-2.0 */
/*
 * b64 - strict base64 on OpenSSL's codec (see b64.h for the contract).
 *
 * OpenSSL's EVP_DecodeBlock skips leading and trailing whitespace, does not report
 * how much padding it met, and accepts non-canonical padding bits. The checks
 * below close each of those gaps before and after calling it.
 */
#include "lib/b64.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static int b64_is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : 63;
}

/* b64_decode - standard base64, strictly */
int b64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
	size_t pad = 0, i;
	unsigned char *buf;
	int n;

	*out = NULL;
	*outlen = 0;
	if (inlen % 4 != 0 || inlen > (size_t)INT_MAX)
		return -1;
	if (inlen >= 1 && in[inlen - 1] == '=')
		pad++;
	if (inlen >= 2 && in[inlen - 2] == '=')
		pad++;
	for (i = 0; i < inlen - pad; i++)
		if (!b64_is_alpha((unsigned char)in[i]))
			return -1;
	/* padding bits must be zero, as RFC 4648 canonical encoders write them */
	if (pad == 1 && (b64_value((unsigned char)in[inlen - 2]) & 0x03))
		return -1;
	if (pad == 2 && (b64_value((unsigned char)in[inlen - 3]) & 0x0f))
		return -1;
	buf = malloc(inlen / 4 * 3 + 1);
	if (buf == NULL)
		return -1;
	if (inlen == 0) {
		buf[0] = 0;
		*out = buf;
		return 0;
	}
	n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)inlen);
	if (n < 0 || (size_t)n < pad) {
		free(buf);
		return -1;
	}
	*outlen = (size_t)n - pad;
	buf[*outlen] = 0;
	*out = buf;
	return 0;
}

/* b64_encode - standard base64 with padding */
char *b64_encode(const unsigned char *in, size_t inlen)
{
	char *out;

	if (inlen > (size_t)INT_MAX / 4 * 3 - 3)
		return NULL;
	out = malloc((inlen + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, in, (int)inlen);
	return out;
}

/* b64url_decode_nopad - URL-safe alphabet, no padding, strictly */
int b64url_decode_nopad(const char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
	char *std;
	size_t i, padded;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (inlen % 4 == 1)
		return -1;
	padded = (inlen + 3) / 4 * 4;
	std = malloc(padded + 1);
	if (std == NULL)
		return -1;
	for (i = 0; i < inlen; i++) {
		char c = in[i];
		if (c == '+' || c == '/' || c == '=') {
			free(std);
			return -1;
		}
		std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	for (; i < padded; i++)
		std[i] = '=';
	std[padded] = 0;
	rc = b64_decode(std, padded, out, outlen);
	free(std);
	return rc;
}
