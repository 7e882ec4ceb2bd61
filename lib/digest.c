/* SPDX-License-Identifier: Apache-2.0 */
/*
 * digest - SHA-256 fingerprints (see digest.h).
 */
#include "lib/digest.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* digest_sha256_hex - lowercase hex SHA-256 */
void digest_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = 0;
}

/* digest_query - SHA-256 of the normalised SQL text */
int digest_query(const char *sql, char out[65])
{
	size_t n = strlen(sql), j = 0;
	char *norm = malloc(n + 1);
	int space = 0;

	if (norm == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)sql[i];
		if (isspace(c)) {
			space = j > 0;
			continue;
		}
		if (space)
			norm[j++] = ' ';
		space = 0;
		norm[j++] = (char)tolower(c);
	}
	digest_sha256_hex(norm, j, out);
	free(norm);
	return 0;
}
