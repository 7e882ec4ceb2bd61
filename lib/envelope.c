/* SPDX-License-Identifier: Apache-2.0 */
/*
 * envelope - FLIP's AES-256-GCM payload envelope (see envelope.h for the contract).
 *
 * envelope_open() checks the wire form in the order envelope.h gives, one message
 * per failure, and only then lets OpenSSL near the key. envelope_seal() writes the
 * JSON by hand, not through jansson, because the known-answer vector shared by all
 * FLIP services fixes Python's exact spelling: member order and ", " / ": ".
 * Plaintext is wiped before it is freed on every path that does not hand it out;
 * EVP_CIPHER_CTX_free() wipes the key schedule.
 */
#include "lib/envelope.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "lib/b64.h"
#include "lib/err.h"

#define ENVELOPE_KEY_LEN 32
#define ENVELOPE_IV_LEN 12
#define ENVELOPE_TAG_LEN 16
#define ENVELOPE_KID "shared"
/* The envelope itself is one flat object; nothing legitimate nests this deep. */
#define ENVELOPE_MAX_DEPTH 32
/* How much of an unknown kid is echoed into the error message. */
#define ENVELOPE_KID_ECHO 64
/* Python's json.dumps spelling, member order included (the known-answer vector) */
#define ENVELOPE_JSON_FMT "{\"v\": 1, \"kid\": \"%s\", \"iv\": \"%s\", \"ct\": \"%s\"}"

#ifdef FLIP_TEST_BUILD
#define ENVELOPE_TESTABLE
#else
#define ENVELOPE_TESTABLE static
#endif

/*
 * envelope_cipher - AES-256-GCM fetched once per process. Passing EVP_aes_256_gcm()
 * makes OpenSSL 3 fetch the implementation again on every init, which cost more than
 * the decryption itself when flip-poll opens 50 envelopes.
 */
static const EVP_CIPHER *envelope_cipher(void)
{
	static EVP_CIPHER *gcm;

	if (gcm == NULL)
		gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	return gcm;
}

/*
 * envelope_format - format into a buffer, if there is one (AAD, JSON; messages: err_set).
 * Sizes are checked by the callers; going through vsnprintf keeps
 * -Wformat-truncation=2 from guessing at buffers whose size it cannot see.
 */
__attribute__((format(printf, 3, 4))) static void envelope_format(char *buf, size_t len,
								  const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* envelope_depth_ok - reject JSON nested deeper than max before any parser sees it */
static int envelope_depth_ok(const unsigned char *buf, size_t len, int max)
{
	int depth = 0, in_string = 0, escaped = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = buf[i];

		if (in_string) {
			if (escaped)
				escaped = 0;
			else if (c == '\\')
				escaped = 1;
			else if (c == '"')
				in_string = 0;
		} else if (c == '"') {
			in_string = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				return 0;
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return 1;
}

/* envelope_kid_echo - a printable, bounded copy of an untrusted kid for messages */
static void envelope_kid_echo(const char *kid, size_t kidlen, char out[ENVELOPE_KID_ECHO + 4])
{
	size_t i, n = kidlen < ENVELOPE_KID_ECHO ? kidlen : ENVELOPE_KID_ECHO;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)kid[i];
		out[i] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
	}
	if (kidlen > n) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = 0;
}

/* envelope_aad - build the associated data FLIP|v1|<kid>|<context> */
static char *envelope_aad(const char *kid, const char *context, size_t *aadlen)
{
	size_t n = strlen("FLIP|v1|") + strlen(kid) + 1 + strlen(context);
	char *aad;

	if (n > INT_MAX)
		return NULL;
	aad = malloc(n + 1);
	if (aad == NULL)
		return NULL;
	envelope_format(aad, n + 1, "FLIP|v1|%s|%s", kid, context);
	*aadlen = n;
	return aad;
}

/* envelope_get_string - fetch a required string member of the envelope object */
static const json_t *envelope_get_string(const json_t *obj, const char *name, char *err,
					 size_t errlen)
{
	const json_t *v = json_object_get(obj, name);

	if (v == NULL) {
		err_set(err, errlen, "field '%s' is missing", name);
		return NULL;
	}
	if (!json_is_string(v)) {
		err_set(err, errlen, "field '%s' must be a string", name);
		return NULL;
	}
	return v;
}

/* envelope_check_version - `v` must be an integer (not a boolean) equal to 1 */
static int envelope_check_version(const json_t *obj, char *err, size_t errlen)
{
	const json_t *v = json_object_get(obj, "v");

	if (v == NULL) {
		err_set(err, errlen, "field 'v' is missing");
		return -1;
	}
	/* jansson keeps true/false apart from integers, so a boolean fails here */
	if (!json_is_integer(v)) {
		err_set(err, errlen, "field 'v' must be an integer");
		return -1;
	}
	if (json_integer_value(v) != 1) {
		err_set(err, errlen, "Unsupported payload version");
		return -1;
	}
	return 0;
}

/* envelope_gcm_decrypt - AES-256-GCM open of ct||tag; *plain wiped and freed on failure */
static enum err_kind envelope_gcm_decrypt(const unsigned char *key, const unsigned char *iv,
					  const unsigned char *ct, size_t ctlen, const char *aad,
					  size_t aadlen, unsigned char **plain, size_t *plainlen,
					  int *tag_failed, char *err, size_t errlen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *out = NULL;
	size_t bodylen = ctlen - ENVELOPE_TAG_LEN;
	unsigned char tag[ENVELOPE_TAG_LEN];
	enum err_kind rc = ERR_FINAL;
	int n;

	memcpy(tag, ct + bodylen, ENVELOPE_TAG_LEN);
	out = malloc(bodylen + 1);
	ctx = EVP_CIPHER_CTX_new();
	if (out == NULL || ctx == NULL) {
		err_set(err, errlen, "out of memory");
		goto out;
	}
	if (envelope_cipher() == NULL ||
	    EVP_DecryptInit_ex(ctx, envelope_cipher(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, ENVELOPE_IV_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, key, iv) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)aadlen) != 1 ||
	    (bodylen > 0 && EVP_DecryptUpdate(ctx, out, &n, ct, (int)bodylen) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ENVELOPE_TAG_LEN, tag) != 1) {
		err_set(err, errlen, "cipher failure");
		goto out;
	}
	if (EVP_DecryptFinal_ex(ctx, out + bodylen, &n) != 1) {
		err_set(err, errlen, "failed authentication");
		if (tag_failed != NULL)
			*tag_failed = 1;
		goto out;
	}
	out[bodylen] = 0;
	*plain = out;
	*plainlen = bodylen;
	out = NULL;
	rc = ERR_OK;
out:
	if (out != NULL) {
		OPENSSL_cleanse(out, bodylen + 1);
		free(out);
	}
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/* envelope_open - check and decrypt a wire payload */
enum err_kind envelope_open(const unsigned char key[32], const char *wire, size_t wirelen,
			    const char *context, unsigned char **plain, size_t *plainlen,
			    int *tag_failed, char *err, size_t errlen)
{
	unsigned char *doc = NULL, *iv = NULL, *ct = NULL;
	size_t doclen = 0, ivlen = 0, ctlen = 0, aadlen = 0;
	char *aad = NULL;
	json_t *root = NULL;
	const json_t *kid, *jiv, *jct;
	enum err_kind rc = ERR_FINAL;

	*plain = NULL;
	*plainlen = 0;
	if (tag_failed != NULL)
		*tag_failed = 0;
	if (key == NULL || wire == NULL) {
		err_set(err, errlen, "no key or no payload");
		goto out;
	}
	if (context == NULL)
		context = "";
	if (wirelen > ENVELOPE_MAX_WIRE) {
		err_set(err, errlen, "envelope too large (%zu > %u bytes)", wirelen,
			ENVELOPE_MAX_WIRE);
		goto out;
	}
	if (b64_decode(wire, wirelen, &doc, &doclen) != 0) {
		err_set(err, errlen, "envelope is not valid base64");
		goto out;
	}
	if (!envelope_depth_ok(doc, doclen, ENVELOPE_MAX_DEPTH)) {
		err_set(err, errlen, "envelope JSON is nested too deeply");
		goto out;
	}
	/* JSON_DECODE_ANY so that a bare scalar gets the "must be a JSON object" message */
	root = json_loadb((const char *)doc, doclen, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
			  NULL);
	if (root == NULL) {
		err_set(err, errlen, "envelope is not valid JSON");
		goto out;
	}
	if (!json_is_object(root)) {
		err_set(err, errlen, "envelope must be a JSON object");
		goto out;
	}
	if (envelope_check_version(root, err, errlen) != 0)
		goto out;
	if ((kid = envelope_get_string(root, "kid", err, errlen)) == NULL ||
	    (jiv = envelope_get_string(root, "iv", err, errlen)) == NULL ||
	    (jct = envelope_get_string(root, "ct", err, errlen)) == NULL)
		goto out;
	if (json_string_length(kid) != strlen(ENVELOPE_KID) ||
	    memcmp(json_string_value(kid), ENVELOPE_KID, strlen(ENVELOPE_KID)) != 0) {
		char echo[ENVELOPE_KID_ECHO + 4];

		envelope_kid_echo(json_string_value(kid), json_string_length(kid), echo);
		err_set(err, errlen, "No key registered for kid '%s'", echo);
		goto out;
	}
	if (b64_decode(json_string_value(jiv), json_string_length(jiv), &iv, &ivlen) != 0) {
		err_set(err, errlen, "field 'iv' is not valid base64");
		goto out;
	}
	if (ivlen != ENVELOPE_IV_LEN) {
		err_set(err, errlen, "field 'iv' must be %d bytes (got %zu)", ENVELOPE_IV_LEN,
			ivlen);
		goto out;
	}
	if (b64_decode(json_string_value(jct), json_string_length(jct), &ct, &ctlen) != 0) {
		err_set(err, errlen, "field 'ct' is not valid base64");
		goto out;
	}
	if (ctlen < ENVELOPE_TAG_LEN) {
		err_set(err, errlen, "field 'ct' is too short (%zu < %d bytes)", ctlen,
			ENVELOPE_TAG_LEN);
		goto out;
	}
	aad = envelope_aad(ENVELOPE_KID, context, &aadlen);
	if (aad == NULL) {
		err_set(err, errlen, "context too long or out of memory");
		goto out;
	}
	/* ctlen < wirelen <= ENVELOPE_MAX_WIRE, so it fits the int OpenSSL wants */
	rc = envelope_gcm_decrypt(key, iv, ct, ctlen, aad, aadlen, plain, plainlen, tag_failed, err,
				  errlen);
out:
	json_decref(root);
	free(doc);
	free(iv);
	free(ct);
	free(aad);
	return rc;
}

/* envelope_gcm_encrypt - AES-256-GCM seal into out (plainlen + 16 bytes) */
static int envelope_gcm_encrypt(const unsigned char *key, const unsigned char *iv,
				const unsigned char *plain, size_t plainlen, const char *aad,
				size_t aadlen, unsigned char *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n, rc = -1;

	if (ctx == NULL)
		return -1;
	if (envelope_cipher() == NULL ||
	    EVP_EncryptInit_ex(ctx, envelope_cipher(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, ENVELOPE_IV_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key, iv) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)aadlen) != 1 ||
	    (plainlen > 0 && EVP_EncryptUpdate(ctx, out, &n, plain, (int)plainlen) != 1) ||
	    EVP_EncryptFinal_ex(ctx, out + plainlen, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ENVELOPE_TAG_LEN, out + plainlen) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/* envelope_seal_with_nonce - seal under a given nonce, in Python's JSON spelling */
ENVELOPE_TESTABLE char *envelope_seal_with_nonce(const unsigned char key[32],
						 const unsigned char nonce[12],
						 const unsigned char *plain, size_t plainlen,
						 const char *context)
{
	unsigned char *ct = NULL;
	char *aad = NULL, *iv64 = NULL, *ct64 = NULL, *doc = NULL, *wire = NULL;
	size_t aadlen = 0;
	int n;

	if (key == NULL || nonce == NULL || (plain == NULL && plainlen > 0) ||
	    plainlen > ENVELOPE_MAX_WIRE)
		goto out;
	aad = envelope_aad(ENVELOPE_KID, context != NULL ? context : "", &aadlen);
	ct = malloc(plainlen + ENVELOPE_TAG_LEN);
	if (aad == NULL || ct == NULL)
		goto out;
	if (envelope_gcm_encrypt(key, nonce, plain, plainlen, aad, aadlen, ct) != 0)
		goto out;
	iv64 = b64_encode(nonce, ENVELOPE_IV_LEN);
	ct64 = b64_encode(ct, plainlen + ENVELOPE_TAG_LEN);
	if (iv64 == NULL || ct64 == NULL)
		goto out;
	n = snprintf(NULL, 0, ENVELOPE_JSON_FMT, ENVELOPE_KID, iv64, ct64);
	if (n < 0 || (doc = malloc((size_t)n + 1)) == NULL)
		goto out;
	envelope_format(doc, (size_t)n + 1, ENVELOPE_JSON_FMT, ENVELOPE_KID, iv64, ct64);
	wire = b64_encode((const unsigned char *)doc, (size_t)n);
	/* never hand out an envelope that envelope_open() would refuse as too large */
	if (wire != NULL && strlen(wire) > ENVELOPE_MAX_WIRE) {
		free(wire);
		wire = NULL;
	}
out:
	free(aad);
	free(ct);
	free(iv64);
	free(ct64);
	free(doc);
	return wire;
}

/* envelope_seal - encrypt under a fresh CSPRNG nonce and return the wire string */
char *envelope_seal(const unsigned char key[32], const unsigned char *plain, size_t plainlen,
		    const char *context)
{
	unsigned char nonce[ENVELOPE_IV_LEN];

	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return NULL;
	return envelope_seal_with_nonce(key, nonce, plain, plainlen, context);
}

/* envelope_fingerprint - first 6 bytes of SHA-256 over the key, as 12 lowercase hex */
void envelope_fingerprint(const unsigned char key[32], char out[13])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(key, ENVELOPE_KEY_LEN, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 6) {
		out[0] = 0;
		return;
	}
	for (int i = 0; i < 6; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0x0f];
	}
	out[12] = 0;
	OPENSSL_cleanse(md, sizeof(md));
}
