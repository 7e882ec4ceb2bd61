/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kit_signature - the check of a kit's startup/ files: the root CA and its pin,
 * signature.json, client.crt and client.key, fed_client.json's slot (kit_verify),
 * and client.crt's end (kit_cert_expiry); see kit.h for the contract.
 *
 * Verification follows NVFLARE's provisioning: every file of startup/ except
 * signature.json is signed with the root CA's key (RSA-PSS, SHA-256, MGF1
 * SHA-256, maximum salt length), and signature.json maps each file name to the
 * standard base64 of its signature. Salt length is recovered on verification
 * (RSA_PSS_SALTLEN_AUTO), as NVFLARE's own check does.
 */
#include "lib/kit.h"

#include "lib/b64.h"
#include "lib/durable.h"
#include "lib/kit_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#define KIT_STARTUP_FILE_MAX (16L << 20) /* a startup file we read to verify */

static const char *const kit_startup_files[] = {
	"fed_client.json", "client.crt", "client.key", "rootCA.pem",
	"start.sh",	   "sub_start.sh", "stop_fl.sh", NULL,
};
static const char *const kit_startup_scripts[] = {"start.sh", "sub_start.sh", "stop_fl.sh",
						  NULL};

/* ---- verification --------------------------------------------------------------- */

/* kit_read_x509 - the first certificate of a PEM file in dirfd */
static X509 *kit_read_x509(int dirfd, const char *name)
{
	char *data;
	size_t len;
	X509 *x = NULL;
	BIO *b;

	if (durable_read(dirfd, name, KIT_PEM_MAX, &data, &len) < 0)
		return NULL;
	b = BIO_new_mem_buf(data, (int)len);
	if (b != NULL)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	free(data);
	return x;
}

/* kit_no_passphrase - PEM callback: an encrypted key is refused, never prompted for */
static int kit_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

/* kit_time - an ASN1_TIME as time_t; 0 when it cannot be read */
static time_t kit_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/* kit_date - a time for a message */
static void kit_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
}

/* kit_pss_verify - RSA-PSS SHA-256 signature of data by pkey */
static int kit_pss_verify(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen,
			  const unsigned char *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = 0;

	if (ctx != NULL && EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, pkey) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0 &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) > 0)
		ok = EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* kit_cmp_names - qsort order of file names */
static int kit_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* kit_verify_signatures - signature.json against the files of startup/ */
static void kit_verify_signatures(int sfd, EVP_PKEY *pkey, struct kit_findings *f)
{
	char **names = NULL, *data, shown[160];
	size_t n = 0, cap = 0, len;
	json_t *sigs, *v;
	json_error_t jerr;
	struct dirent *de;
	const char *key;
	DIR *d;
	int dfd;

	if (durable_read(sfd, "signature.json", KIT_PEM_MAX, &data, &len) < 0)
		return; /* reported as missing already */
	sigs = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	free(data);
	if (!json_is_object(sigs)) {
		kit_find(f, 0, "startup/signature.json: not a JSON object of file names");
		json_decref(sigs);
		return;
	}
	dfd = dup(sfd);
	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		if (dfd >= 0)
			close(dfd);
		kit_find(f, 0, "startup/: cannot list: %s", strerror(errno));
		json_decref(sigs);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, "signature.json") == 0)
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));
			if (nn == NULL)
				break;
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) != NULL)
			n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), kit_cmp_names);
	for (size_t i = 0; i < n; i++) {
		unsigned char *sig = NULL;
		size_t siglen;
		struct stat sb;
		const char *b64;

		kit_echo(names[i], shown, sizeof(shown));
		if (fstatat(sfd, names[i], &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode)) {
			kit_find(f, 0, "startup/%s: not a regular file (startup/ holds only signed "
				 "files)", shown);
			continue;
		}
		v = json_object_get(sigs, names[i]);
		if (v == NULL) {
			kit_find(f, 0, "startup/signature.json: no signature for %s", shown);
			continue;
		}
		b64 = json_string_value(v);
		if (b64 == NULL || b64_decode(b64, strlen(b64), &sig, &siglen) < 0) {
			kit_find(f, 0, "startup/signature.json: the signature of %s is not base64",
				 shown);
			continue;
		}
		if (pkey == NULL) {
			free(sig);
			continue; /* rootCA.pem's problem is reported once */
		}
		if (durable_read(sfd, names[i], KIT_STARTUP_FILE_MAX, &data, &len) < 0) {
			kit_find(f, 0, "startup/%s: cannot read: %s", shown, strerror(errno));
		} else {
			if (!kit_pss_verify(pkey, sig, siglen, (unsigned char *)data, len))
				kit_find(f, 0,
					 "startup/%s: signature does not verify against rootCA.pem "
					 "(changed after the kit was made?)",
					 shown);
			OPENSSL_cleanse(data, len); /* client.key is among them */
			free(data);
		}
		free(sig);
	}
	json_object_foreach(sigs, key, v) {
		int found = 0;

		for (size_t i = 0; i < n && !found; i++)
			found = strcmp(names[i], key) == 0;
		if (!found)
			kit_find(f, 0, "startup/signature.json: signs %s, which is not in startup/",
				 kit_echo(key, shown, sizeof(shown)));
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	json_decref(sigs);
}

/* kit_verify_slot - fed_client.json names the slot */
static void kit_verify_slot(int sfd, const char *slot, struct kit_findings *f)
{
	char *data, shown[160];
	size_t len;
	json_t *doc;
	json_error_t jerr;
	const char *fqsn;

	if (durable_read(sfd, "fed_client.json", KIT_PEM_MAX, &data, &len) < 0)
		return;
	doc = json_loadb(data, len, 0, &jerr);
	free(data);
	if (doc == NULL) {
		kit_find(f, 0, "startup/fed_client.json: not JSON (line %d: %s)", jerr.line,
			 jerr.text);
		return;
	}
	fqsn = json_string_value(json_object_get(json_object_get(doc, "client"), "fqsn"));
	if (fqsn == NULL)
		kit_find(f, 0, "startup/fed_client.json: no client.fqsn (the kit's slot)");
	else if (slot == NULL || strcmp(fqsn, slot) != 0)
		kit_find(f, 0, "startup/fed_client.json: the kit is for slot %s, not FL_KIT_SLOT %s",
			 kit_echo(fqsn, shown, sizeof(shown)), slot ? slot : "(unset)");
	json_decref(doc);
}

/* kit_verify_certs - client.crt chains to rootCA.pem, in date; client.key matches */
static void kit_verify_certs(int sfd, X509 *root, time_t now, struct kit_findings *f)
{
	X509 *cert = kit_read_x509(sfd, "client.crt");
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	char *data, date[32];
	size_t len;
	struct stat sb;
	time_t nb, na;

	if (cert == NULL) {
		if (faccessat(sfd, "client.crt", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			kit_find(f, 0, "startup/client.crt: not a PEM certificate");
		return;
	}
	if (root != NULL) {
		store = X509_STORE_new();
		ctx = X509_STORE_CTX_new();
		if (store != NULL && ctx != NULL && X509_STORE_add_cert(store, root) == 1 &&
		    X509_STORE_CTX_init(ctx, store, cert, NULL) == 1) {
			/* dates are checked below, with messages that say which and when */
			X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
			if (X509_verify_cert(ctx) != 1)
				kit_find(f, 0, "startup/client.crt: does not chain to rootCA.pem (%s)",
					 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		} else {
			kit_find(f, 0, "startup/client.crt: cannot be checked (out of memory)");
		}
		X509_STORE_CTX_free(ctx);
		X509_STORE_free(store);
		na = kit_time(X509_get0_notAfter(root));
		if (na != 0 && na < now) {
			kit_date(na, date, sizeof(date));
			kit_find(f, 0, "startup/rootCA.pem: expired on %s", date);
		}
	}
	nb = kit_time(X509_get0_notBefore(cert));
	na = kit_time(X509_get0_notAfter(cert));
	f->cert_not_after = na;
	if (nb != 0 && nb > now) {
		kit_date(nb, date, sizeof(date));
		kit_find(f, 0, "startup/client.crt: not valid before %s (check the clock)", date);
	}
	kit_date(na, date, sizeof(date));
	if (na == 0)
		kit_find(f, 0, "startup/client.crt: unreadable end of validity");
	else if (na < now)
		kit_find(f, 0, "startup/client.crt: expired on %s; ask the FL server's admin for "
			 "a new kit", date);
	else if (na - now < (time_t)KIT_EXPIRY_WARN_DAYS * 86400)
		kit_find(f, 1, "startup/client.crt: expires on %s, in %ld days; ask for a new kit",
			 date, (long)((na - now) / 86400));

	if (durable_read(sfd, "client.key", KIT_PEM_MAX, &data, &len) < 0) {
		X509_free(cert);
		return;
	}
	/* the FL client's group reads it (kit_share), nobody else */
	if (fstatat(sfd, "client.key", &sb, AT_SYMLINK_NOFOLLOW) == 0 && (sb.st_mode & 027))
		kit_find(f, 0, "startup/client.key: mode %04o lets others read or change the key: "
			 "chmod 0640",
			 (unsigned)(sb.st_mode & 07777));
	BIO *b = BIO_new_mem_buf(data, (int)len);
	if (b != NULL)
		key = PEM_read_bio_PrivateKey(b, NULL, kit_no_passphrase, NULL);
	BIO_free(b);
	OPENSSL_cleanse(data, len);
	free(data);
	if (key == NULL)
		kit_find(f, 0, "startup/client.key: not an unencrypted PEM private key");
	else if (EVP_PKEY_eq(key, X509_get0_pubkey(cert)) != 1)
		kit_find(f, 0, "startup/client.key: not the key of client.crt");
	EVP_PKEY_free(key);
	X509_free(cert);
}

/* kit_verify_root_pin - rootCA.pem is the root FL_KIT_ROOT_CA_SHA256 names */
static void kit_verify_root_pin(X509 *root, const char *pin, struct kit_findings *f)
{
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int mdlen = 0;
	char want[65], got[65];
	size_t n = 0;
	int len;

	for (const char *p = pin; *p; p++) {
		if (*p == ':' || *p == ' ')
			continue;
		if (n >= 64 || !strchr("0123456789abcdefABCDEF", *p) || *p == 0) {
			n = 65;
			break;
		}
		want[n++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	}
	if (n != 64) {
		kit_find(f, 0, "FL_KIT_ROOT_CA_SHA256 is not a SHA-256 fingerprint (64 hex digits)");
		return;
	}
	want[64] = 0;
	if (root == NULL)
		return;	/* rootCA.pem's own problem is reported already */
	len = i2d_X509(root, &der);
	if (len <= 0 || EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32) {
		OPENSSL_free(der);
		kit_find(f, 0, "startup/rootCA.pem: cannot compute its fingerprint");
		return;
	}
	OPENSSL_free(der);
	for (unsigned i = 0; i < 32; i++)
		snprintf(got + 2 * i, 3, "%02x", md[i]);
	if (strcmp(got, want) != 0)
		kit_find(f, 0, "startup/rootCA.pem: root CA fingerprint %.16s... is not the one "
			 "FL_KIT_ROOT_CA_SHA256 pins (%.16s...): this kit was not made by the "
			 "expected hub", got, want);
}

/* kit_verify - docs/design/fl.md's check of the kit's own files */
void kit_verify(const char *kit, const char *slot, time_t now, const struct kit_trust *trust,
		struct kit_findings *f)
{
	char path[PATH_MAX];
	X509 *root = NULL;
	EVP_PKEY *pkey = NULL;
	struct stat sb;
	int sfd;

	if (snprintf(path, sizeof(path), "%s/startup", kit) >= (int)sizeof(path)) {
		kit_find(f, 0, "%s: path too long", kit);
		return;
	}
	sfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0) {
		kit_find(f, 0, "%s: %s; install the kit with flip-fl install-kit", path,
			 errno == ENOENT ? "no kit here" : strerror(errno));
		return;
	}
	for (int i = 0; kit_startup_files[i]; i++) {
		if (fstatat(sfd, kit_startup_files[i], &sb, AT_SYMLINK_NOFOLLOW) < 0)
			kit_find(f, 0, "startup/%s: missing", kit_startup_files[i]);
		else if (!S_ISREG(sb.st_mode))
			kit_find(f, 0, "startup/%s: not a regular file", kit_startup_files[i]);
	}
	for (int i = 0; kit_startup_scripts[i]; i++)
		if (fstatat(sfd, kit_startup_scripts[i], &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(sb.st_mode) && (sb.st_mode & 0100) == 0)
			kit_find(f, 0, "startup/%s: not executable: chmod 0750",
				 kit_startup_scripts[i]);
	root = kit_read_x509(sfd, "rootCA.pem");
	if (root == NULL) {
		if (fstatat(sfd, "rootCA.pem", &sb, AT_SYMLINK_NOFOLLOW) == 0)
			kit_find(f, 0, "startup/rootCA.pem: not a PEM certificate");
	} else {
		pkey = X509_get0_pubkey(root);
		if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
			kit_find(f, 0, "startup/rootCA.pem: not an RSA key; cannot check signatures");
			pkey = NULL;
		}
	}
	if (trust && trust->root_ca_sha256 && trust->root_ca_sha256[0])
		kit_verify_root_pin(root, trust->root_ca_sha256, f);
	if (fstatat(sfd, "signature.json", &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
		/* NVFLARE 2.8 provisions kits without it and treats unlisted files as not signed */
		if (trust && trust->require_signature)
			kit_find(f, 0, "startup/signature.json: missing, and FL_KIT_REQUIRE_SIGNATURE "
				 "is set: an unsigned kit is refused");
		else {
			f->unsigned_kit = 1;
			kit_find(f, 1, "startup/signature.json: missing; the kit's files are not signed "
				 "(NVFLARE provisions such kits): accepted, as FL_KIT_REQUIRE_SIGNATURE "
				 "is not set");
		}
	} else if (!S_ISREG(sb.st_mode)) {
		kit_find(f, 0, "startup/signature.json: not a regular file");
	} else {
		kit_verify_signatures(sfd, pkey, f);
	}
	kit_verify_slot(sfd, slot, f);
	kit_verify_certs(sfd, root, now, f);
	X509_free(root);
	close(sfd);
}

/* kit_cert_expiry - client.crt's notAfter */
int kit_cert_expiry(const char *kit, time_t *not_after)
{
	char path[PATH_MAX];
	X509 *cert;
	int sfd;

	*not_after = 0;
	if (snprintf(path, sizeof(path), "%s/startup", kit) >= (int)sizeof(path))
		return -1;
	sfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0)
		return -1;
	cert = kit_read_x509(sfd, "client.crt");
	close(sfd);
	if (cert == NULL)
		return -1;
	*not_after = kit_time(X509_get0_notAfter(cert));
	X509_free(cert);
	return *not_after ? 0 : -1;
}
