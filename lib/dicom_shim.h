/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dicom_shim - what the four files of the dcmtk shim share (C++ only; lib/dicom*.cc
 * alone include it, the rest of the node sees lib/dicom.h).
 *
 * SYNOPSIS
 *	#include "lib/dicom_shim.h"
 *
 *	const int DEFAULT_TIMEOUT;
 *	struct Err;
 *	template <typename F> enum dicom_err guarded(Err &e, const char *op, F f);
 *	void ensure_init(void);
 *
 *	enum dicom_err peer_check(const struct dicom_peer *p, Err &e);
 *	int or_default(int v);
 *	bool uid_ok(const char *u);
 *	std::string trim(const OFString &s);
 *
 *	class TunedLayer;
 *	extern TunedLayer tuned_layer;
 *	class FlipSCU;
 *	void setup(FlipSCU &scu, const struct dicom_peer *p);
 *	std::string what(const char *op, const struct dicom_peer *p);
 *	enum dicom_err connect(FlipSCU &scu, const std::string &w, Err &e);
 *	const char *const uncompressed[];
 *	const char *const storage_syntaxes[];
 *	const size_t n_storage_syntaxes;
 *	OFList<OFString> syntax_list(const char *const *s, size_t n);
 *	void finish(FlipSCU &scu, bool healthy);
 *
 *	struct dicom_ds *ds_wrap(DcmFileFormat *ff);
 *	int hand_over(DcmDataset *incoming, dicom_store_fn store, void *arg,
 *		      unsigned long long &len, std::string &why);
 *
 *	enum dicom_err retrieval_start(const char *op, const struct dicom_peer *peer,
 *				       const char *study_uid, dicom_store_fn store,
 *				       std::vector<std::string> &classes, Err &e);
 *	enum dicom_err study_context(FlipSCU &scu, const char *model, const char *what,
 *				     const std::string &w, Err &e,
 *				     T_ASC_PresentationContextID *pc);
 *	void study_identifier(DcmDataset &d, const char *study_uid);
 *	struct FinalResponse;
 *	FinalResponse final_response(OFList<RetrieveResponse *> &rsp);
 *
 * DESCRIPTION
 *	The shim is split by concern: dicom.cc (dcmtk's logging, the error names, the
 *	checks of peers and UIDs, the TCP transport), dicom_net.cc (the association
 *	as requestor, C-ECHO, C-FIND, C-GET and what C-MOVE shares with C-GET),
 *	dicom_move.cc (C-MOVE and its receiver thread), dicom_dataset.cc (datasets).
 *	What one file needs of another is declared here; the rest of each file stays in
 *	its anonymous namespace.
 *
 *	Err is the (err, errlen) pair of one public call: e.set(category, fmt, ...)
 *	formats a one-line message (control characters replaced) and returns the
 *	category. guarded(e, op, f) runs f after ensure_init() (dicom_init(0) unless
 *	done), turning any exception into a category: no exception reaches C.
 *
 *	dicom.cc: peer_check() refuses a peer dcmtk would choke on; or_default() is a
 *	timeout with 0 meaning DEFAULT_TIMEOUT seconds; uid_ok() checks a UID; trim()
 *	drops DICOM padding. tuned_layer gives every association, ours or accepted by
 *	the C-MOVE receiver, plain TCP with TCP_NODELAY and TCP_QUICKACK
 *	(TunedConnection).
 *
 *	dicom_net.cc: FlipSCU is dcmtk's SCU with the C-GET store handler going to a C
 *	callback (handleSTORERequest). setup() sets peer, titles and timeouts on one,
 *	connect() negotiates its association with the failure categorised, finish()
 *	releases or aborts it; what() names the operation and peer for messages.
 *	uncompressed and storage_syntaxes are the transfer syntaxes proposed for
 *	queries and for storage; syntax_list() makes dcmtk's list of them. hand_over()
 *	gives one received dataset to the caller's store callback (C-GET and C-MOVE
 *	alike). retrieval_start() is what a C-GET or C-MOVE checks first, then the
 *	study's SOP classes (from the C-FIND cache or a C-FIND of its own);
 *	study_context() the accepted Study Root context; study_identifier() the
 *	STUDY-level identifier; final_response() the last, non-pending answer (the
 *	responses are freed).
 *
 *	dicom_dataset.cc: ds_wrap() makes the dicom_ds handle around a parsed file
 *	(taking it).
 *
 * DIAGNOSTICS
 *	As dicom.h: categories (enum dicom_err) and one-line messages in Err.
 */
#ifndef FLIP_DICOM_SHIM_H
#define FLIP_DICOM_SHIM_H

#include <exception>
#include <new>
#include <string>
#include <vector>

#include "dcmtk/config/osconfig.h" /* first, as dcmtk requires */
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmnet/dcmlayer.h"
#include "dcmtk/dcmnet/dcmtrans.h"
#include "dcmtk/dcmnet/scu.h"

#include "lib/dicom.h"

const int DEFAULT_TIMEOUT = 30;

/* Err - the (err, errlen) pair of one call, so helpers can fill it (set() in dicom.cc) */
struct Err {
	char *buf;
	size_t len;
	Err(char *b, size_t l) : buf(b), len(l)
	{
		if (buf && len)
			buf[0] = 0;
	}
	__attribute__((format(printf, 3, 4))) enum dicom_err set(enum dicom_err e, const char *fmt,
								 ...);
};

void ensure_init(void);

/* guarded - run f, turning any exception into an error category */
template <typename F> enum dicom_err guarded(Err &e, const char *op, F f)
{
	try {
		ensure_init();
		return f();
	} catch (const std::bad_alloc &) {
		return e.set(DICOM_ERR_NOMEM, "%s: out of memory", op);
	} catch (const std::exception &x) {
		return e.set(DICOM_ERR_PROTOCOL, "%s: %s", op, x.what());
	} catch (...) {
		return e.set(DICOM_ERR_PROTOCOL, "%s: unexpected exception", op);
	}
}

enum dicom_err peer_check(const struct dicom_peer *p, Err &e);
int or_default(int v);
bool uid_ok(const char *u);
std::string trim(const OFString &s);

/*
 * TunedLayer - the factory dcmtk asks for each association's connection. dcmtk only
 * consults a transport layer for associations flagged "secure" (that is how TLS is
 * plugged in), so the SCU and the C-MOVE receiver set that flag with this layer,
 * which answers with plain TCP whatever the flag says: DcmTCPConnection's handshakes
 * are no-ops. Stateless, so one instance serves every association.
 */
class TunedLayer : public DcmTransportLayer {
      public:
	DcmTransportConnection *createConnection(DcmNativeSocketType s, OFBool) override;
};

extern TunedLayer tuned_layer;

/* FlipSCU - DcmSCU whose C-GET sub-operations go to a C callback, in memory */
class FlipSCU : public DcmSCU {
      public:
	dicom_store_fn store = nullptr;
	void *arg = nullptr;
	unsigned long stored = 0;
	unsigned long long bytes = 0;
	bool store_failed = false;
	std::string store_err;

	FlipSCU() { setStorageMode(DCMSCU_STORAGE_DISK); /* i.e. "in memory, then call us" */ }

	OFCondition handleSTORERequest(const T_ASC_PresentationContextID, DcmDataset *incoming,
				       OFBool &continueSession, Uint16 &status) override;

	/* after initNetwork(): the association's connection from tuned_layer */
	OFCondition tune() { return useSecureConnection(&tuned_layer); }
};

void setup(FlipSCU &scu, const struct dicom_peer *p);
std::string what(const char *op, const struct dicom_peer *p);
enum dicom_err connect(FlipSCU &scu, const std::string &w, Err &e);

const char *const uncompressed[] = {UID_LittleEndianExplicitTransferSyntax,
				    UID_LittleEndianImplicitTransferSyntax};

/* the syntaxes proposed for storage, one context each when room allows */
const char *const storage_syntaxes[] = {
	UID_LittleEndianExplicitTransferSyntax,
	UID_LittleEndianImplicitTransferSyntax,
	UID_BigEndianExplicitTransferSyntax,
	UID_DeflatedExplicitVRLittleEndianTransferSyntax,
	UID_RLELosslessTransferSyntax,
	UID_JPEGProcess1TransferSyntax,
	UID_JPEGProcess2_4TransferSyntax,
	UID_JPEGProcess14TransferSyntax,
	UID_JPEGProcess14SV1TransferSyntax,
	UID_JPEGLSLosslessTransferSyntax,
	UID_JPEGLSLossyTransferSyntax,
	UID_JPEG2000LosslessOnlyTransferSyntax,
	UID_JPEG2000TransferSyntax,
};
const size_t n_storage_syntaxes = sizeof storage_syntaxes / sizeof storage_syntaxes[0];

OFList<OFString> syntax_list(const char *const *s, size_t n);
void finish(FlipSCU &scu, bool healthy);

struct dicom_ds *ds_wrap(DcmFileFormat *ff);
int hand_over(DcmDataset *incoming, dicom_store_fn store, void *arg, unsigned long long &len,
	      std::string &why);

enum dicom_err retrieval_start(const char *op, const struct dicom_peer *peer,
			       const char *study_uid, dicom_store_fn store,
			       std::vector<std::string> &classes, Err &e);
enum dicom_err study_context(FlipSCU &scu, const char *model, const char *what,
			     const std::string &w, Err &e, T_ASC_PresentationContextID *pc);
void study_identifier(DcmDataset &d, const char *study_uid);

/* the last, non-pending answer of a C-GET or C-MOVE (the responses are freed) */
struct FinalResponse {
	bool have = false;
	Uint16 status = 0xffff, failed = 0, completed = 0, warning = 0;
};

FinalResponse final_response(OFList<RetrieveResponse *> &rsp);

#endif
