/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_b64 - strict base64: the RFC 4648 vectors, then everything a lax decoder
 * (OpenSSL's own included) would let through: padding bits, '=' in the middle,
 * whitespace, lengths that are not a multiple of 4; and the URL-safe unpadded form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/b64.h"

struct vector {
	const char *plain;
	const char *std;
	const char *url;
};

/* RFC 4648 section 10 */
static const struct vector rfc4648[] = {
	{"", "", ""},
	{"f", "Zg==", "Zg"},
	{"fo", "Zm8=", "Zm8"},
	{"foo", "Zm9v", "Zm9v"},
	{"foob", "Zm9vYg==", "Zm9vYg"},
	{"fooba", "Zm9vYmE=", "Zm9vYmE"},
	{"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

#define NRFC (sizeof(rfc4648) / sizeof(rfc4648[0]))

/* decodes - b64_decode accepts s and yields exactly want (wantlen bytes) */
static void decodes(const char *s, const void *want, size_t wantlen)
{
	unsigned char *out = NULL;
	size_t outlen = 99;

	assert_int_equal(b64_decode(s, strlen(s), &out, &outlen), 0);
	assert_non_null(out);
	assert_int_equal(outlen, wantlen);
	assert_memory_equal(out, want, wantlen);
	assert_int_equal(out[outlen], 0);
	free(out);
}

/* refused - b64_decode rejects the first len bytes of s and allocates nothing */
static void refused_n(const char *s, size_t len)
{
	unsigned char *out = (unsigned char *)&out;
	size_t outlen = 99;

	assert_int_equal(b64_decode(s, len, &out, &outlen), -1);
	assert_null(out);
	assert_int_equal(outlen, 0);
}

static void refused(const char *s)
{
	refused_n(s, strlen(s));
}

/* url_decodes - b64url_decode_nopad accepts s and yields exactly want */
static void url_decodes(const char *s, const void *want, size_t wantlen)
{
	unsigned char *out = NULL;
	size_t outlen = 99;

	assert_int_equal(b64url_decode_nopad(s, strlen(s), &out, &outlen), 0);
	assert_non_null(out);
	assert_int_equal(outlen, wantlen);
	assert_memory_equal(out, want, wantlen);
	free(out);
}

/* url_refused - b64url_decode_nopad rejects s and allocates nothing */
static void url_refused(const char *s)
{
	unsigned char *out = (unsigned char *)&out;
	size_t outlen = 99;

	assert_int_equal(b64url_decode_nopad(s, strlen(s), &out, &outlen), -1);
	assert_null(out);
	assert_int_equal(outlen, 0);
}

static void test_rfc4648_decode(void **state)
{
	(void)state;
	for (size_t i = 0; i < NRFC; i++)
		decodes(rfc4648[i].std, rfc4648[i].plain, strlen(rfc4648[i].plain));
}

static void test_rfc4648_encode(void **state)
{
	(void)state;
	for (size_t i = 0; i < NRFC; i++) {
		char *s = b64_encode((const unsigned char *)rfc4648[i].plain,
				     strlen(rfc4648[i].plain));
		assert_non_null(s);
		assert_string_equal(s, rfc4648[i].std);
		free(s);
	}
}

/* Every byte value, at every length mod 3, survives a round trip. */
static void test_binary_roundtrip(void **state)
{
	unsigned char bytes[258];
	char *s;

	(void)state;
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)(255 - i);
	for (size_t n = 255; n <= 258; n++) {
		s = b64_encode(bytes, n);
		assert_non_null(s);
		assert_int_equal(strlen(s), (n + 2) / 3 * 4);
		decodes(s, bytes, n);
		free(s);
	}
	decodes("+/+/", "\xfb\xff\xbf", 3);
	decodes("AAAA", "\0\0\0", 3);
}

static void test_padding_bits_nonzero(void **state)
{
	(void)state;
	refused("Zh=="); /* 'h' leaves bits set below the one byte */
	refused("Zm9="); /* '9' leaves bits set below the two bytes */
	refused("Zm9vYh==");
	decodes("Zg==", "f", 1);
	decodes("Zm8=", "fo", 2);
}

static void test_padding_wrong_amount(void **state)
{
	(void)state;
	refused("Zg="); /* too little: length 3 */
	refused("Zg");	/* none at all */
	refused("Zm8");
	refused("Zg===");
	refused("Z==="); /* three '=' */
	refused("====");
	refused("=");
	refused("Zm9v====");
}

static void test_equals_in_the_middle(void **state)
{
	(void)state;
	refused("Zg==Zm9v");
	refused("Z=9v");
	refused("Zm=v");
	refused("=m9v");
	refused("Zm8=Zm8=");
}

static void test_whitespace(void **state)
{
	(void)state;
	refused(" Zm9v");
	refused("Zm9v ");
	refused("Zm9v\n");
	refused("Zm9v\r\n");
	refused("Zm 9v");
	refused("Zm9v\nYmFy");
	refused("\tZm9vYmFy");
	refused("Zm9vYmF\n");
}

static void test_length_not_multiple_of_4(void **state)
{
	(void)state;
	refused("Z");
	refused("Zm");
	refused("Zm9");
	refused("Zm9vY");
	refused("Zm9vYm");
	refused("Zm9vYmF");
}

static void test_stray_characters(void **state)
{
	(void)state;
	refused("Zm9-"); /* URL-safe alphabet */
	refused("Zm9_");
	refused("Zm9.");
	refused("Zm9!");
	refused("Zm\xc3\xa9");
	refused_n("Zm\0v", 4); /* embedded NUL, length given */
}

static void test_empty_input(void **state)
{
	(void)state;
	decodes("", "", 0);
	url_decodes("", "", 0);
}

static void test_url_rfc4648(void **state)
{
	(void)state;
	for (size_t i = 0; i < NRFC; i++)
		url_decodes(rfc4648[i].url, rfc4648[i].plain, strlen(rfc4648[i].plain));
}

static void test_url_alphabet(void **state)
{
	(void)state;
	url_decodes("-_-_", "\xfb\xff\xbf", 3);
	url_decodes("-_8", "\xfb\xff", 2);
	url_decodes("_w", "\xff", 1);
	url_refused("+/+/"); /* standard alphabet refused */
	url_refused("Zm9+");
	url_refused("Zm9/");
}

static void test_url_no_padding(void **state)
{
	(void)state;
	url_refused("Zg==");
	url_refused("Zm8=");
	url_refused("Zg=");
	url_refused("Zg=a");
}

static void test_url_strictness(void **state)
{
	(void)state;
	url_refused("Z"); /* length % 4 == 1 is never valid */
	url_refused("Zm9vY");
	url_refused("Zh"); /* padding bits */
	url_refused("Zm9");
	url_refused("Zm9v ");
	url_refused(" Zm9v");
	url_refused("Zm9v\n");
	url_refused("Zm.v");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_decode),
		cmocka_unit_test(test_rfc4648_encode),
		cmocka_unit_test(test_binary_roundtrip),
		cmocka_unit_test(test_padding_bits_nonzero),
		cmocka_unit_test(test_padding_wrong_amount),
		cmocka_unit_test(test_equals_in_the_middle),
		cmocka_unit_test(test_whitespace),
		cmocka_unit_test(test_length_not_multiple_of_4),
		cmocka_unit_test(test_stray_characters),
		cmocka_unit_test(test_empty_input),
		cmocka_unit_test(test_url_rfc4648),
		cmocka_unit_test(test_url_alphabet),
		cmocka_unit_test(test_url_no_padding),
		cmocka_unit_test(test_url_strictness),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
