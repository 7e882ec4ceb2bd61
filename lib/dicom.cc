/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dicom - the extern "C" shim over dcmtk (see dicom.h for the contract).
 *
 * One of the two C++ files of the project. Every dcmtk call of the node is here;
 * every public function catches every exception (std::bad_alloc becomes
 * DICOM_ERR_NOMEM) because one escaping into C would terminate the program.
 *
 * Networking rides on dcmtk's DcmSCU. C-GET is the interesting part: a C-GET
 * association carries the PACS's C-STORE sub-operations back to us, so the storage
 * SOP classes are proposed with the SCP role, and DcmSCU's store handler is
 * overridden (FlipSCU::handleSTORERequest) so that each received dataset, already
 * parsed in memory by dcmtk, goes to the caller's callback instead of a file. A
 * dataset arrives in the transfer syntax of the presentation context the PACS
 * picked for it; proposing one context per (SOP class, transfer syntax) lets a PACS
 * that selects per instance (Orthanc does: it looks for an accepted context with
 * the instance's own syntax first) send what it stored without transcoding, which
 * is why dicom_get_study() needs SOPClassesInStudy (from the C-FIND that found the
 * study, or asked for).
 *
 * Files are read by dcmtk through /proc/self/fd/N of a descriptor we opened with
 * O_NOFOLLOW and checked to be a regular file, so what is parsed is the file we
 * checked. Large values are loaded lazily (dcmtk re-opens that /proc path while the
 * descriptor is still open) and then all at once before it is closed: parsing with
 * lazy values is what keeps an absurd value length from becoming an allocation of
 * that size (dcmtk allocates a value before reading it). Writing goes through our
 * own DcmConsumer (FlipSink) to a descriptor or a string, so that a short write or
 * ENOSPC is seen and reported with errno, which dcmtk's FILE-based consumer would
 * lose in fclose().
 */
#include "lib/dicom.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dcmtk/config/osconfig.h" /* first, as dcmtk requires */
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcostrma.h"
#include "dcmtk/dcmdata/dcwcache.h"
#include "dcmtk/dcmnet/dcmlayer.h"
#include "dcmtk/dcmnet/dcmtrans.h"
#include "dcmtk/dcmnet/diutil.h"
#include "dcmtk/dcmnet/dul.h"
#include "dcmtk/dcmnet/scu.h"
#include "dcmtk/oflog/oflog.h"
#include "dcmtk/oflog/appender.h"
#include "dcmtk/oflog/spi/logevent.h"

extern "C" {
#include "lib/log.h"
}

namespace {

const int DEFAULT_TIMEOUT = 30;
const int MAX_DEPTH = 64;		/* sequence nesting the walk accepts */
const size_t MAX_CONTEXTS = 127;	/* 128 presentation contexts, one for the Q/R model */

/* Err - the (err, errlen) pair of one call, so helpers can fill it */
struct Err {
	char *buf;
	size_t len;
	Err(char *b, size_t l) : buf(b), len(l)
	{
		if (buf && len)
			buf[0] = 0;
	}
	__attribute__((format(printf, 3, 4))) enum dicom_err set(enum dicom_err e, const char *fmt,
								 ...)
	{
		va_list ap;

		if (buf == nullptr || len == 0)
			return e;
		va_start(ap, fmt);
		vsnprintf(buf, len, fmt, ap);
		va_end(ap);
		for (char *c = buf; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		return e;
	}
};

/* ---- logging ------------------------------------------------------------------- */

/* NodeAppender - dcmtk's log lines into the node's log at debug level */
class NodeAppender : public dcmtk::log4cplus::Appender {
      public:
	NodeAppender() {}
	~NodeAppender() override { destructorImpl(); }
	void close() override { closed = true; }

      protected:
	void append(const dcmtk::log4cplus::spi::InternalLoggingEvent &ev) override
	{
		std::string m(ev.getMessage().c_str());

		/* one line per event: dcmtk's multi-line dumps are only at DEBUG, which
		 * we never enable, but keep the contract of log.h anyway */
		for (char &c : m)
			if ((unsigned char)c < 0x20)
				c = ' ';
		log_debug("dcmtk: %s", m.c_str());
	}
};

bool initialised = false;

void ensure_init(void)
{
	if (!initialised)
		dicom_init(0);
}

/* ---- small helpers -------------------------------------------------------------- */

/* ae_ok - an AE title: 1..16 printable ASCII characters, no backslash, not all spaces */
bool ae_ok(const char *ae)
{
	size_t n;
	bool nonspace = false;

	if (ae == nullptr || (n = strlen(ae)) == 0 || n > 16)
		return false;
	for (const char *c = ae; *c; c++) {
		if (*c < 0x20 || *c > 0x7e || *c == '\\')
			return false;
		nonspace |= *c != ' ';
	}
	return nonspace;
}

/* peer_check - refuse a peer dcmtk would choke on, before any connection */
enum dicom_err peer_check(const struct dicom_peer *p, Err &e)
{
	if (p == nullptr || p->host == nullptr || !*p->host)
		return e.set(DICOM_ERR_INVALID, "no PACS host given");
	/* dcmtk keeps "host:port" in 64 bytes */
	if (strlen(p->host) > 57)
		return e.set(DICOM_ERR_INVALID, "PACS host name longer than 57 characters");
	for (const char *c = p->host; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			return e.set(DICOM_ERR_INVALID, "PACS host name holds a space or control character");
	if (p->port < 1 || p->port > 65535)
		return e.set(DICOM_ERR_INVALID, "PACS port %d out of range 1..65535", p->port);
	if (!ae_ok(p->called_ae))
		return e.set(DICOM_ERR_INVALID, "called AE title must be 1..16 printable characters");
	if (!ae_ok(p->calling_ae))
		return e.set(DICOM_ERR_INVALID, "calling AE title must be 1..16 printable characters");
	if (p->assoc_timeout < 0 || p->dimse_timeout < 0 || p->network_timeout < 0)
		return e.set(DICOM_ERR_INVALID, "negative timeout");
	return DICOM_OK;
}

int or_default(int v) { return v > 0 ? v : DEFAULT_TIMEOUT; }

/* query_value_ok - an exact-match key: no wildcard, separator or control character */
bool query_value_ok(const char *v, size_t max)
{
	size_t n;

	if (v == nullptr || (n = strlen(v)) == 0 || n > max)
		return false;
	for (const char *c = v; *c; c++)
		if (*c == '*' || *c == '?' || *c == '\\' || (unsigned char)*c < 0x20 ||
		    *c == 0x7f)
			return false;
	return true;
}

/* uid_ok - digits and dots, 1..64, no empty component */
bool uid_ok(const char *u)
{
	size_t n;

	if (u == nullptr || (n = strlen(u)) == 0 || n > DICOM_UID_MAX)
		return false;
	if (u[0] == '.' || u[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (u[i] == '.') {
			if (u[i + 1] == '.')
				return false;
		} else if (u[i] < '0' || u[i] > '9') {
			return false;
		}
	}
	return true;
}

/* trim - without trailing spaces and NULs (DICOM padding) */
std::string trim(const OFString &s)
{
	std::string r(s.c_str(), s.length());

	while (!r.empty() && (r.back() == ' ' || r.back() == '\0'))
		r.pop_back();
	return r;
}

/* sop_classes - the UIDs of SOPClassesInStudy in a C-FIND answer (none if absent) */
std::vector<std::string> sop_classes(DcmDataset *d)
{
	std::vector<std::string> out;
	OFString v;

	if (d->findAndGetOFStringArray(DCM_SOPClassesInStudy, v).bad())
		return out;
	std::string s = trim(v);
	size_t at = 0;
	while (at <= s.size()) {
		size_t bs = s.find('\\', at);
		std::string one = s.substr(at, bs == std::string::npos ? std::string::npos : bs - at);
		while (!one.empty() && (one.back() == ' ' || one.back() == '\0'))
			one.pop_back();
		if (uid_ok(one.c_str()))
			out.push_back(one);
		if (bs == std::string::npos)
			break;
		at = bs + 1;
	}
	return out;
}

/*
 * The SOP classes dicom_find_studies() just learnt, for the dicom_get_study() that
 * usually follows it: the retrieval worker finds a study by accession and then
 * fetches it, and asking the PACS twice would cost one more association per study.
 * An entry is used once (erased by the C-GET that uses it) and the cache holds the
 * last CLASS_CACHE finds only, so it never outlives the find-then-get sequence
 * by much; a C-GET without an entry asks the PACS itself.
 */
const size_t CLASS_CACHE = 64;
std::vector<std::pair<std::string, std::vector<std::string>>> class_cache;

std::string cache_key(const struct dicom_peer *p, const char *study_uid)
{
	return std::string(p->host) + ":" + std::to_string(p->port) + "|" + p->called_ae + "|" +
	       p->calling_ae + "|" + study_uid;
}

void cache_put(const std::string &key, std::vector<std::string> classes)
{
	for (auto &e : class_cache)
		if (e.first == key) {
			e.second = std::move(classes);
			return;
		}
	if (class_cache.size() >= CLASS_CACHE)
		class_cache.erase(class_cache.begin());
	class_cache.emplace_back(key, std::move(classes));
}

bool cache_take(const std::string &key, std::vector<std::string> &classes)
{
	for (auto it = class_cache.begin(); it != class_cache.end(); ++it)
		if (it->first == key) {
			classes = std::move(it->second);
			class_cache.erase(it);
			return true;
		}
	return false;
}

/* ---- the transport ---------------------------------------------------------------- */

/*
 * TunedConnection - dcmtk's plain TCP connection, with the socket set for DICOM's
 * conversation of small messages. dcmtk as Debian builds it leaves Nagle's algorithm
 * on, and writes a PDU in pieces (the 6-byte header, then the body), as does a PACS
 * built on it (Orthanc is): the second piece then waits for the peer's ACK, which
 * Linux delays by up to 40 ms. On loopback against Orthanc that was 97% of a
 * retrieval's time (23 instances: 4.1 s; 0.1 s with both fixed). So: TCP_NODELAY on
 * our side, and TCP_QUICKACK re-armed after every read (Linux drops back to delayed
 * ACKs on its own) so that a PACS that keeps Nagle on is not held up by us either.
 * Plain TCP still: DcmTCPConnection does the I/O, nothing else changes.
 */
class TunedConnection : public DcmTCPConnection {
      public:
	explicit TunedConnection(DcmNativeSocketType s) : DcmTCPConnection(s)
	{
		int one = 1;

		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		quickack();
	}

	ssize_t read(void *buf, size_t nbyte) override
	{
		ssize_t r = DcmTCPConnection::read(buf, nbyte);

		quickack();
		return r;
	}

      private:
	void quickack()
	{
		int one = 1;

		/* a hint: failure only costs the delay back */
		setsockopt(getSocket(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
	}
};

/*
 * TunedLayer - the factory dcmtk asks for each association's connection. dcmtk only
 * consults a transport layer for associations flagged "secure" (that is how TLS is
 * plugged in), so the SCU and the C-MOVE receiver set that flag with this layer,
 * which answers with plain TCP whatever the flag says: DcmTCPConnection's handshakes
 * are no-ops. Stateless, so one instance serves every association.
 */
class TunedLayer : public DcmTransportLayer {
      public:
	DcmTransportConnection *createConnection(DcmNativeSocketType s, OFBool) override
	{
		return new (std::nothrow) TunedConnection(s);
	}
};

TunedLayer tuned_layer;

/* ---- the SCU -------------------------------------------------------------------- */

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

}  // namespace

/* the opaque handles of dicom.h */
struct dicom_ds {
	DcmFileFormat *ff;
	char xfer[DICOM_UID_MAX + 1];
};

struct dicom_elem {
	DcmElement *el;
	int depth;
	uint32_t parent;
	char vr[3];
};

namespace {

/* ds_wrap - a dicom_ds around a file format object (taking ownership) */
struct dicom_ds *ds_wrap(DcmFileFormat *ff)
{
	struct dicom_ds *ds = new struct dicom_ds;
	E_TransferSyntax x = ff->getDataset()->getOriginalXfer();

	ds->ff = ff;
	ds->xfer[0] = 0;
	if (x != EXS_Unknown) {
		DcmXfer xf(x);
		snprintf(ds->xfer, sizeof ds->xfer, "%s", xf.getXferID());
	}
	return ds;
}

/* hand_over - one received dataset (taken) to the caller's store callback, in memory,
 * as a dicom_ds valid during the call; 0, or -1 with the reason in why. len is the
 * dataset's encoded length. The same for C-GET and C-MOVE. */
int hand_over(DcmDataset *incoming, dicom_store_fn store, void *arg, unsigned long long &len,
	      std::string &why)
{
	E_TransferSyntax x = incoming->getOriginalXfer();
	len = incoming->getLength(x == EXS_Unknown ? EXS_LittleEndianExplicit : x);
	DcmFileFormat *ff = new (std::nothrow) DcmFileFormat(incoming, OFFalse /* take it */);
	if (ff == nullptr) {
		delete incoming;
		why = "out of memory";
		return -1;
	}
	struct dicom_ds *ds;
	try {
		ds = ds_wrap(ff);
	} catch (...) {
		delete ff;
		why = "out of memory";
		return -1;
	}
	char msg[256] = "";
	int rc = store(ds, arg, msg, sizeof msg);
	if (rc == DICOM_STORE_KEPT)
		return 0;	/* the callback owns ds now */
	dicom_ds_free(ds);
	if (rc != 0) {
		why = msg[0] ? msg : "store callback failed";
		return -1;
	}
	return 0;
}

OFCondition FlipSCU::handleSTORERequest(const T_ASC_PresentationContextID, DcmDataset *incoming,
					OFBool &continueSession, Uint16 &status)
{
	if (incoming == nullptr)
		return DIMSE_NULLKEY;
	if (store_failed) {
		/* already failing: refuse the rest while the association goes down */
		delete incoming;
		status = STATUS_STORE_Refused_OutOfResources;
		continueSession = OFFalse;
		return EC_Normal;
	}
	unsigned long long len = 0;
	if (hand_over(incoming, store, arg, len, store_err) != 0) {
		store_failed = true;
		status = STATUS_STORE_Refused_OutOfResources;
		continueSession = OFFalse;
		return EC_Normal;
	}
	stored++;
	bytes += len;
	status = STATUS_Success;
	return EC_Normal;
}

/* setup - peer, titles and timeouts on an SCU (the timeouts are dcmtk globals) */
void setup(FlipSCU &scu, const struct dicom_peer *p)
{
	int assoc = or_default(p->assoc_timeout), net = or_default(p->network_timeout);

	scu.setPeerHostName(p->host);
	scu.setPeerPort((Uint16)p->port);
	scu.setPeerAETitle(p->called_ae);
	scu.setAETitle(p->calling_ae);
	scu.setACSETimeout((Uint32)assoc);
	scu.setConnectionTimeout(assoc);
	scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
	scu.setDIMSETimeout((Uint32)or_default(p->dimse_timeout));
	scu.setMaxReceivePDULength(ASC_MAXIMUMPDUSIZE > 131072 ? 131072 : ASC_MAXIMUMPDUSIZE);
	dcmSocketSendTimeout.set(net);
	dcmSocketReceiveTimeout.set(net);
}

/* what - "C-FIND to ORTHANC@host:4242 as FLIPNODE", for messages */
std::string what(const char *op, const struct dicom_peer *p)
{
	return std::string(op) + " to " + p->called_ae + "@" + p->host + ":" +
	       std::to_string(p->port) + " as " + p->calling_ae;
}

/* connect - initNetwork + negotiateAssociation, with the failure categorised */
enum dicom_err connect(FlipSCU &scu, const std::string &w, Err &e)
{
	OFCondition c = scu.initNetwork();

	if (c.good())
		c = scu.tune();
	if (c.bad())
		return e.set(DICOM_ERR_PROTOCOL, "%s: cannot set up the network: %s", w.c_str(),
			     c.text());
	c = scu.negotiateAssociation();
	if (c.good())
		return DICOM_OK;
	if (c == DUL_ASSOCIATIONREJECTED)
		return e.set(DICOM_ERR_REJECTED,
			     "%s: association rejected by the PACS (AE titles not accepted?)",
			     w.c_str());
	if (c == NET_EC_NoAcceptablePresentationContexts)
		return e.set(DICOM_ERR_REJECTED,
			     "%s: the PACS accepted none of the proposed presentation contexts",
			     w.c_str());
	return e.set(DICOM_ERR_UNREACHABLE, "%s: no association: %s", w.c_str(), c.text());
}

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

OFList<OFString> syntax_list(const char *const *s, size_t n)
{
	OFList<OFString> l;

	for (size_t i = 0; i < n; i++)
		l.push_back(s[i]);
	return l;
}

/* finish - release a healthy association, abort one in an unknown state */
void finish(FlipSCU &scu, bool healthy)
{
	if (!scu.isConnected())
		return;
	if (healthy)
		scu.releaseAssociation();
	else
		scu.abortAssociation();
}

/* find - one C-FIND (Study Root) with query on an association of its own; the
 * pending responses' datasets are handed to each() */
template <typename F>
enum dicom_err find(const struct dicom_peer *peer, DcmDataset &query, const char *op, F each,
		    Err &e)
{
	FlipSCU scu;
	std::string w = what(op, peer);

	setup(scu, peer);
	scu.addPresentationContext(UID_FINDStudyRootQueryRetrieveInformationModel,
				   syntax_list(uncompressed, 2));
	enum dicom_err r = connect(scu, w, e);
	if (r != DICOM_OK)
		return r;
	T_ASC_PresentationContextID pc =
		scu.findAnyPresentationContextID(UID_FINDStudyRootQueryRetrieveInformationModel, "");
	if (pc == 0) {
		finish(scu, true);
		return e.set(DICOM_ERR_REJECTED, "%s: Study Root C-FIND not accepted", w.c_str());
	}
	OFList<QRResponse *> rsp;
	OFCondition c = scu.sendFINDRequest(pc, &query, &rsp);
	Uint16 final_status = 0xffff;
	size_t matches = 0;
	r = DICOM_OK;
	for (QRResponse *q : rsp) {
		if (r == DICOM_OK && DICOM_PENDING_STATUS(q->m_status) && q->m_dataset) {
			if (++matches > DICOM_FIND_MAX)
				r = e.set(DICOM_ERR_PROTOCOL, "%s: more than %d matches", w.c_str(),
					  DICOM_FIND_MAX);
			else
				r = each(q->m_dataset, e);
		} else if (!DICOM_PENDING_STATUS(q->m_status)) {
			final_status = q->m_status;
		}
		delete q;
	}
	if (r != DICOM_OK) {
		finish(scu, false);
		return r;
	}
	if (c.bad()) {
		finish(scu, false);
		return e.set(DICOM_ERR_PROTOCOL, "%s: %s", w.c_str(), c.text());
	}
	if (final_status != STATUS_Success) {
		finish(scu, true);
		return e.set(DICOM_ERR_PROTOCOL, "%s: final status 0x%04x (%s)", w.c_str(),
			     final_status, DU_cfindStatusString(final_status));
	}
	finish(scu, true);
	return DICOM_OK;
}

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

/* ---- writing -------------------------------------------------------------------- */

/* FlipSink - a DcmConsumer writing to a descriptor or appending to a string */
class FlipSink : public DcmConsumer {
      public:
	int fd = -1;
	std::string *out = nullptr;
	int saved_errno = 0;
	/*
	 * dcmtk hands the consumer one element at a time: written straight to the fd that
	 * was some 800 write(2) calls per instance (seen with strace). Buffer and write in
	 * large pieces; drain() at the end (save_to) writes the rest. A piece of chunk
	 * bytes or more (the pixel data) goes straight from dcmtk's buffer to the fd:
	 * appending it to `pending` cost a copy plus the string's regrowth copies, a
	 * quarter of a CT retrieval's instructions (callgrind, 600 slices of 512x512).
	 */
	std::string pending;
	static constexpr size_t chunk = 256 * 1024;

	OFBool good() const override { return saved_errno == 0; }
	OFCondition status() const override { return good() ? EC_Normal : EC_InternalError; }
	OFBool isFlushed() const override { return OFTrue; }
	offile_off_t avail() const override { return 2147483647L; }
	void flush() override {}
	void put(const char *p, size_t len)
	{
		size_t done = 0;

		while (!saved_errno && done < len) {
			ssize_t n = ::write(fd, p + done, len - done);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				saved_errno = n < 0 ? errno : EIO;
				break;
			}
			done += (size_t)n;
		}
	}
	void drain()
	{
		put(pending.data(), pending.size());
		pending.clear();
	}
	offile_off_t write(const void *buf, offile_off_t len) override
	{
		const char *p = static_cast<const char *>(buf);

		if (saved_errno || len <= 0)
			return saved_errno ? len : 0;
		if (out) {
			out->append(p, (size_t)len);
			return len;
		}
		if ((size_t)len >= chunk) {
			drain();
			put(p, (size_t)len);
			return len;
		}
		pending.append(p, (size_t)len);
		if (pending.size() >= chunk)
			drain();
		/* a failed sink takes everything, so the write ends; save_to reads saved_errno */
		return len;
	}
};

class SinkStream : public DcmOutputStream {
      public:
	explicit SinkStream(FlipSink *s) : DcmOutputStream(s) {}
};

enum dicom_err save_to(struct dicom_ds *ds, FlipSink &sink, Err &e)
{
	DcmDataset *d = ds->ff->getDataset();
	E_TransferSyntax x = d->getOriginalXfer();
	DcmWriteCache wcache;

	if (x == EXS_Unknown)
		x = EXS_LittleEndianExplicit;
	SinkStream stream(&sink);
	ds->ff->transferInit();
	OFCondition c = ds->ff->write(stream, x, EET_UndefinedLength, &wcache, EGL_recalcGL,
				      EPD_noChange, 0, 0, 0, EWM_updateMeta);
	ds->ff->transferEnd();
	stream.flush();
	if (sink.fd >= 0)
		sink.drain();
	if (sink.saved_errno)
		return e.set(DICOM_ERR_IO, "cannot write DICOM file: %s", strerror(sink.saved_errno));
	if (c.bad())
		return e.set(DICOM_ERR_CORRUPT, "cannot encode DICOM dataset: %s", c.text());
	return DICOM_OK;
}

/* ---- the walk ------------------------------------------------------------------- */

const char *vr_name(DcmElement *el, char out[3])
{
	DcmEVR evr = el->getVR();
	const char *n;

	/* dcmtk's internal VRs for pixel data and friends */
	if (evr == EVR_ox || evr == EVR_px || evr == EVR_pixelSQ)
		n = el->getTag().getEVR() == EVR_OW ? "OW" : "OB";
	else if (evr == EVR_lt)
		n = "OW";
	else if (evr == EVR_xs)
		n = "US";
	else
		n = DcmVR(evr).getValidVRName();
	snprintf(out, 3, "%s", n && strlen(n) == 2 ? n : "UN");
	return out;
}

/* walk_item - visit item's elements (see dicom_ds_walk); -1 when stopped */
int walk_item(DcmItem *item, int depth, uint32_t parent, dicom_walk_fn fn, void *arg)
{
	if (depth > MAX_DEPTH)
		return -1;
	for (unsigned long i = 0; i < item->card();) {
		DcmElement *el = item->getElement(i);
		struct dicom_elem e;

		e.el = el;
		e.depth = depth;
		e.parent = parent;
		vr_name(el, e.vr);
		int rc = fn(&e, arg);
		if (rc < 0)
			return -1;
		if (rc == DICOM_WALK_REMOVE) {
			delete item->remove(i);
			continue;
		}
		if (rc == DICOM_WALK_KEEP && el->ident() == EVR_SQ) {
			DcmSequenceOfItems *sq = static_cast<DcmSequenceOfItems *>(el);
			uint32_t tag = DICOM_TAG(el->getGTag(), el->getETag());

			for (unsigned long j = 0; j < sq->card(); j++)
				if (walk_item(sq->getItem(j), depth + 1, tag, fn, arg) < 0)
					return -1;
		}
		i++;
	}
	return 0;
}

int remove_private_cb(struct dicom_elem *e, void *arg)
{
	if (e->el->getGTag() & 1) {
		(*static_cast<size_t *>(arg))++;
		return DICOM_WALK_REMOVE;
	}
	return DICOM_WALK_KEEP;
}

/* item_for - the meta header for group 0002, the dataset otherwise */
DcmItem *item_for(struct dicom_ds *ds, uint32_t tag)
{
	if (DICOM_GROUP(tag) == 0x0002)
		return ds->ff->getMetaInfo();
	return ds->ff->getDataset();
}

/* ---- the C-MOVE receiver ---------------------------------------------------------- */

/*
 * MoveReceiver - the storage SCP of one dicom_move_study(), on a thread of its own.
 *
 * The listening socket is ours (bound to the address the caller chose, which dcmtk
 * 3.6's acceptor cannot do: it always binds every interface); each connection we
 * accept is handed to dcmtk as an already-connected socket (dcmExternalSocketHandle,
 * its inetd mode: ASC_initializeNetwork then creates no listening socket and
 * ASC_receiveAssociation takes that socket). Associations are accepted only when
 * called for our AE title, with the Verification class and every storage SOP class
 * in the 13 storage syntaxes; each C-STORE dataset is received in memory and, if it
 * belongs to the study asked for, handed to the store callback exactly as a C-GET
 * sub-operation is (hand_over). Nothing is written to disk here.
 *
 * stop: 0 run, 1 drain (the C-MOVE ended well: finish the association in progress,
 * accept no new one), 2 abort (the C-MOVE failed: abort whatever is in progress).
 */
const int DRAIN_IDLE = 5;	/* seconds a draining association may stay silent */

class MoveReceiver {
      public:
	std::string our_ae, study_uid;
	dicom_store_fn store = nullptr;
	void *arg = nullptr;
	int acse_timeout = DEFAULT_TIMEOUT, dimse_timeout = DEFAULT_TIMEOUT;
	int listenfd = -1;
	std::atomic<int> stop{0};

	/* results: read only after the thread is joined */
	unsigned long stored = 0, foreign = 0, associations = 0;
	unsigned long long bytes = 0;
	bool store_failed = false;
	std::string store_err, problem;

	void run()
	{
		try {
			loop();
		} catch (const std::bad_alloc &) {
			note("out of memory");
		} catch (...) {
			note("unexpected exception");
		}
	}

      private:
		void note(const std::string &what)
	{
		if (problem.empty())
			problem = what;
	}

	void loop()
	{
		while (stop.load() == 0) {
			struct pollfd p = {listenfd, POLLIN, 0};
			int n = poll(&p, 1, 100);

			if (n < 0 && errno != EINTR) {
				note(std::string("poll: ") + strerror(errno));
				return;
			}
			if (n <= 0 || stop.load() != 0)
				continue;
			int fd = accept4(listenfd, nullptr, nullptr, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			serve(fd);
		}
	}

	void serve(int fd)
	{
		T_ASC_Network *net = nullptr;
		T_ASC_Association *assoc = nullptr;

		dcmExternalSocketHandle.set(fd);
		OFCondition c = ASC_initializeNetwork(NET_ACCEPTOR, 0, acse_timeout, &net);
		if (c.good())
			c = ASC_setTransportLayer(net, &tuned_layer, 0);
		if (c.good()) /* "secure" only so that dcmtk uses tuned_layer: plain TCP */
			c = ASC_receiveAssociation(net, &assoc, ASC_DEFAULTMAXPDU, nullptr, nullptr,
						   OFTrue, DUL_NOBLOCK, acse_timeout);
		dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);
		if (net == nullptr) {
			close(fd);
			note(std::string("cannot set up the receiver: ") + c.text());
			return;
		}
		if (c.bad()) {
			note(std::string("incoming association failed: ") + c.text());
		} else {
			associations++;
			if (negotiate(assoc))
				converse(assoc);
		}
		if (assoc) {
			ASC_dropSCPAssociation(assoc);
			ASC_destroyAssociation(&assoc);
		}
		ASC_dropNetwork(&net);
	}

	bool negotiate(T_ASC_Association *assoc)
	{
		char calling[65] = "", called[65] = "", responding[65] = "";

		ASC_getAPTitles(assoc->params, calling, sizeof calling, called, sizeof called,
				responding, sizeof responding);
		std::string cd(called);
		while (!cd.empty() && cd.back() == ' ')
			cd.pop_back();
		if (cd != our_ae) {
			T_ASC_RejectParameters rej = {ASC_RESULT_REJECTEDPERMANENT,
						      ASC_SOURCE_SERVICEUSER,
						      ASC_REASON_SU_CALLEDAETITLENOTRECOGNIZED};
			ASC_rejectAssociation(assoc, &rej);
			note("an association for another called AE title was rejected");
			return false;
		}
		const char *ver[] = {UID_VerificationSOPClass};
		const char *unc[] = {uncompressed[0], uncompressed[1]};
		const char *ts[sizeof storage_syntaxes / sizeof storage_syntaxes[0]];
		for (size_t i = 0; i < n_storage_syntaxes; i++)
			ts[i] = storage_syntaxes[i];
		OFCondition c = ASC_acceptContextsWithPreferredTransferSyntaxes(assoc->params, ver, 1,
										 unc, 2);
		if (c.good())
			c = ASC_acceptContextsWithPreferredTransferSyntaxes(
				assoc->params, dcmAllStorageSOPClassUIDs,
				numberOfDcmAllStorageSOPClassUIDs, ts, (int)n_storage_syntaxes);
		if (c.good())
			c = ASC_acknowledgeAssociation(assoc);
		if (c.bad()) {
			note(std::string("cannot accept the incoming association: ") + c.text());
			ASC_abortAssociation(assoc);
			return false;
		}
		return true;
	}

	/* converse - DIMSE until release, abort, error or stop */
	void converse(T_ASC_Association *assoc)
	{
		int idle = 0;

		for (;;) {
			T_ASC_PresentationContextID pc = 0;
			T_DIMSE_Message msg;
			memset(&msg, 0, sizeof msg);
			OFCondition c = DIMSE_receiveCommand(assoc, DIMSE_NONBLOCKING, 1, &pc, &msg,
							     nullptr);
			if (c == DIMSE_NODATAAVAILABLE) {
				int s = stop.load();
				idle++;
				if (s == 2 || (s == 1 && idle >= DRAIN_IDLE) || idle >= dimse_timeout) {
					if (s == 0)
						note("the PACS went silent during the transfer");
					ASC_abortAssociation(assoc);
					return;
				}
				continue;
			}
			idle = 0;
			if (c == DUL_PEERREQUESTEDRELEASE) {
				ASC_acknowledgeRelease(assoc);
				return;
			}
			if (c == DUL_PEERABORTEDASSOCIATION)
				return;
			if (c.bad()) {
				note(std::string("receiving a command: ") + c.text());
				ASC_abortAssociation(assoc);
				return;
			}
			if (msg.CommandField == DIMSE_C_ECHO_RQ) {
				c = DIMSE_sendEchoResponse(assoc, pc, &msg.msg.CEchoRQ, STATUS_Success,
							   nullptr);
			} else if (msg.CommandField == DIMSE_C_STORE_RQ) {
				if (!store_one(assoc, pc, msg.msg.CStoreRQ))
					return;
			} else {
				note("unexpected DIMSE command on the receiver");
				ASC_abortAssociation(assoc);
				return;
			}
			if (c.bad()) {
				note(std::string("answering: ") + c.text());
				ASC_abortAssociation(assoc);
				return;
			}
		}
	}

	/* store_one - the dataset of one C-STORE, to the callback, and the response;
	 * false when the association was aborted */
	bool store_one(T_ASC_Association *assoc, T_ASC_PresentationContextID pc,
		       const T_DIMSE_C_StoreRQ &req)
	{
		DcmDataset *ds = nullptr;
		T_ASC_PresentationContextID dpc = 0;
		OFCondition c = DIMSE_receiveDataSetInMemory(assoc, DIMSE_NONBLOCKING, dimse_timeout,
							     &dpc, &ds, nullptr, nullptr);
		if (c.bad() || ds == nullptr) {
			delete ds;
			note(std::string("receiving a dataset: ") + c.text());
			ASC_abortAssociation(assoc);
			return false;
		}
		Uint16 status = STATUS_Success;
		bool go_on = true;
		OFString v;
		if (store_failed || stop.load() == 2) {
			delete ds;
			status = STATUS_STORE_Refused_OutOfResources;
			go_on = false;
		} else if (ds->findAndGetOFString(DCM_StudyInstanceUID, v).bad() ||
			   trim(v) != study_uid) {
			/* not the study we asked for: never handed on */
			delete ds;
			foreign++;
			status = STATUS_STORE_Error_CannotUnderstand;
		} else {
			unsigned long long len = 0;
			if (hand_over(ds, store, arg, len, store_err) != 0) {
				store_failed = true;
				status = STATUS_STORE_Refused_OutOfResources;
				go_on = false;
			} else {
				stored++;
				bytes += len;
			}
		}
		T_DIMSE_Message rsp;
		memset(&rsp, 0, sizeof rsp);
		rsp.CommandField = DIMSE_C_STORE_RSP;
		T_DIMSE_C_StoreRSP &r = rsp.msg.CStoreRSP;
		r.MessageIDBeingRespondedTo = req.MessageID;
		OFStandard::strlcpy(r.AffectedSOPClassUID, req.AffectedSOPClassUID,
				    sizeof r.AffectedSOPClassUID);
		OFStandard::strlcpy(r.AffectedSOPInstanceUID, req.AffectedSOPInstanceUID,
				    sizeof r.AffectedSOPInstanceUID);
		r.DataSetType = DIMSE_DATASET_NULL;
		r.DimseStatus = status;
		r.opts = O_STORE_AFFECTEDSOPCLASSUID | O_STORE_AFFECTEDSOPINSTANCEUID;
		c = DIMSE_sendMessageUsingMemoryData(assoc, pc, &rsp, nullptr, nullptr, nullptr,
						      nullptr);
		if (c.bad() || !go_on) {
			if (c.bad())
				note(std::string("answering a C-STORE: ") + c.text());
			ASC_abortAssociation(assoc);
			return false;
		}
		return true;
	}
};

/* open_listener - a listening TCP socket on host:port (IPv4, as dcmtk 3.6 is) */
enum dicom_err open_listener(const char *host, int port, int &fd, Err &e)
{
	struct addrinfo hints, *ai = nullptr;
	char ps[16];

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(ps, sizeof ps, "%d", port);
	int g = getaddrinfo(host, ps, &hints, &ai);
	if (g != 0 || ai == nullptr)
		return e.set(DICOM_ERR_IO, "C-MOVE receiver: cannot resolve bind address %s: %s",
			     host, gai_strerror(g));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return e.set(DICOM_ERR_IO, "C-MOVE receiver: socket: %s", strerror(errno));
	}
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	int rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
	int saved = errno;
	freeaddrinfo(ai);
	if (rc == 0 && listen(fd, 16) == 0)
		return DICOM_OK;
	if (rc == 0)
		saved = errno;
	close(fd);
	fd = -1;
	if (saved == EADDRINUSE)
		return e.set(DICOM_ERR_IO,
			     "C-MOVE receiver: port %d on %s is already in use (FLIP_DICOM_PORT): "
			     "another process listens there",
			     port, host);
	return e.set(DICOM_ERR_IO, "C-MOVE receiver: cannot listen on %s:%d: %s", host, port,
		     strerror(saved));
}

/* ReceiverRun - the receiver thread; stopped (abort) and joined on every way out */
struct ReceiverRun {
	MoveReceiver &rx;
	std::thread t;
	explicit ReceiverRun(MoveReceiver &r) : rx(r), t([&r]() { r.run(); }) {}
	void end(int how)
	{
		if (t.joinable()) {
			int zero = 0;
			rx.stop.compare_exchange_strong(zero, how);
			t.join();
		}
	}
	~ReceiverRun()
	{
		end(2);
		if (rx.listenfd >= 0)
			close(rx.listenfd);
		rx.listenfd = -1;
	}
};

/* the last, non-pending answer of a C-GET or C-MOVE (the responses are freed) */
struct FinalResponse {
	bool have = false;
	Uint16 status = 0xffff, failed = 0, completed = 0, warning = 0;
};

FinalResponse final_response(OFList<RetrieveResponse *> &rsp)
{
	FinalResponse f;

	for (RetrieveResponse *x : rsp) {
		if (!DICOM_PENDING_STATUS(x->m_status)) {
			f.have = true;
			f.status = x->m_status;
			f.failed = x->m_numberOfFailedSubops;
			f.completed = x->m_numberOfCompletedSubops;
			f.warning = x->m_numberOfWarningSubops;
		}
		delete x;
	}
	rsp.clear();
	return f;
}

/* study_context - the accepted Study Root context for a retrieval, or refused */
enum dicom_err study_context(FlipSCU &scu, const char *model, const char *what,
			     const std::string &w, Err &e, T_ASC_PresentationContextID *pc)
{
	*pc = scu.findAnyPresentationContextID(model, "");
	if (*pc != 0)
		return DICOM_OK;
	finish(scu, true);
	return e.set(DICOM_ERR_REJECTED, "%s: Study Root %s not accepted", w.c_str(), what);
}

/*
 * retrieval_start - what every retrieval (op "C-GET" or "C-MOVE") checks first, then
 * the SOP classes of the study: from the C-FIND that found it (the cache), else from
 * a C-FIND of its own, which also makes an unknown study DICOM_ERR_NOT_FOUND
 */
enum dicom_err retrieval_start(const char *op, const struct dicom_peer *peer,
			       const char *study_uid, dicom_store_fn store,
			       std::vector<std::string> &classes, Err &e)
{
	enum dicom_err r = peer_check(peer, e);
	if (r != DICOM_OK)
		return r;
	if (!uid_ok(study_uid))
		return e.set(DICOM_ERR_INVALID, "%s: not a valid Study Instance UID", op);
	if (store == nullptr)
		return e.set(DICOM_ERR_INVALID, "%s: no store callback", op);
	if (cache_take(cache_key(peer, study_uid), classes))
		return DICOM_OK;
	DcmDataset q;
	q.putAndInsertString(DCM_QueryRetrieveLevel, "STUDY");
	q.putAndInsertString(DCM_StudyInstanceUID, study_uid);
	q.putAndInsertString(DCM_SOPClassesInStudy, "");
	size_t matches = 0;
	r = find(peer, q, (std::string("C-FIND (") + op + " preparation)").c_str(),
		 [&](DcmDataset *d, Err &) -> enum dicom_err {
			 matches++;
			 std::vector<std::string> c = sop_classes(d);
			 classes.insert(classes.end(), c.begin(), c.end());
			 return DICOM_OK;
		 },
		 e);
	if (r != DICOM_OK)
		return r;
	if (matches == 0)
		return e.set(DICOM_ERR_NOT_FOUND, "%s: no such study on the PACS",
			     what(op, peer).c_str());
	return DICOM_OK;
}

/* string_value - a string element's values, backslash-separated, padding trimmed,
 * into buf; DICOM_ERR_INVALID when unreadable or not shorter than len */
enum dicom_err string_value(DcmElement *el, char *buf, size_t len)
{
	OFString v;

	if (el->getOFStringArray(v).bad() && el->getLength() != 0)
		return DICOM_ERR_INVALID;
	std::string t = trim(v);
	if (t.size() >= len)
		return DICOM_ERR_INVALID;
	memcpy(buf, t.c_str(), t.size() + 1);
	return DICOM_OK;
}

/* study_identifier - the study-level identifier of a C-GET or C-MOVE */
void study_identifier(DcmDataset &d, const char *study_uid)
{
	d.putAndInsertString(DCM_QueryRetrieveLevel, "STUDY");
	d.putAndInsertString(DCM_StudyInstanceUID, study_uid);
}

}  // namespace

/* ---- the C API ------------------------------------------------------------------- */

extern "C" {

/* dicom_init - dcmtk's logging (silent, or INFO lines into log_debug()), UN reading */
void dicom_init(int debug)
{
	/* a standard attribute written with VR UN in an explicit-VR file (some
	 * writers do) is read with its dictionary VR, so that its value can be seen
	 * and de-identified like any other */
	dcmEnableUnknownVRConversion.set(OFTrue);
	try {
		dcmtk::log4cplus::Logger root = dcmtk::log4cplus::Logger::getRoot();

		root.removeAllAppenders();
		if (debug) {
			root.addAppender(dcmtk::log4cplus::SharedAppenderPtr(new NodeAppender()));
			root.setLogLevel(dcmtk::log4cplus::INFO_LOG_LEVEL);
		} else {
			root.setLogLevel(dcmtk::log4cplus::OFF_LOG_LEVEL);
		}
		initialised = true;
	} catch (...) {
		/* logging stays as dcmtk set it; nothing else depends on it */
	}
}

/* dicom_err_name - the category as the state files and logs spell it */
const char *dicom_err_name(enum dicom_err e)
{
	switch (e) {
	case DICOM_OK:
		return "ok";
	case DICOM_ERR_UNREACHABLE:
		return "pacs_unreachable";
	case DICOM_ERR_REJECTED:
		return "association_rejected";
	case DICOM_ERR_NOT_FOUND:
		return "not_found";
	case DICOM_ERR_STORAGE:
		return "storage_error";
	case DICOM_ERR_PROTOCOL:
		return "protocol_error";
	case DICOM_ERR_CORRUPT:
		return "corrupt_file";
	case DICOM_ERR_IO:
		return "io_error";
	case DICOM_ERR_INVALID:
		return "invalid_argument";
	case DICOM_ERR_NOMEM:
		return "out_of_memory";
	}
	return "unknown";
}

/* dicom_echo - C-ECHO: the PACS answers and accepts us */
enum dicom_err dicom_echo(const struct dicom_peer *peer, char *err, size_t errlen)
{
	Err e(err, errlen);

	return guarded(e, "C-ECHO", [&]() -> enum dicom_err {
		enum dicom_err r = peer_check(peer, e);
		if (r != DICOM_OK)
			return r;
		FlipSCU scu;
		std::string w = what("C-ECHO", peer);
		setup(scu, peer);
		scu.addPresentationContext(UID_VerificationSOPClass, syntax_list(uncompressed, 2));
		if ((r = connect(scu, w, e)) != DICOM_OK)
			return r;
		OFCondition c = scu.sendECHORequest(0);
		if (c.bad()) {
			finish(scu, false);
			return e.set(DICOM_ERR_PROTOCOL, "%s: %s", w.c_str(), c.text());
		}
		finish(scu, true);
		return DICOM_OK;
	});
}

/* dicom_find_studies - the studies whose AccessionNumber matches, as the PACS says */
enum dicom_err dicom_find_studies(const struct dicom_peer *peer, const char *accession,
				  struct dicom_study **studies, size_t *n, char *err, size_t errlen)
{
	Err e(err, errlen);

	if (studies)
		*studies = nullptr;
	if (n)
		*n = 0;
	return guarded(e, "C-FIND", [&]() -> enum dicom_err {
		enum dicom_err r = peer_check(peer, e);
		if (r != DICOM_OK)
			return r;
		if (studies == nullptr || n == nullptr)
			return e.set(DICOM_ERR_INVALID, "C-FIND: no result pointers");
		if (!query_value_ok(accession, 64))
			return e.set(DICOM_ERR_INVALID,
				     "C-FIND: accession empty, too long, or holding a wildcard, "
				     "backslash or control character");
		DcmDataset q;
		q.putAndInsertString(DCM_QueryRetrieveLevel, "STUDY");
		q.putAndInsertString(DCM_AccessionNumber, accession);
		q.putAndInsertString(DCM_StudyInstanceUID, "");
		q.putAndInsertString(DCM_NumberOfStudyRelatedInstances, "");
		q.putAndInsertString(DCM_SOPClassesInStudy, "");
		std::vector<struct dicom_study> found;
		std::vector<std::pair<std::string, std::vector<std::string>>> classes;
		r = find(peer, q, "C-FIND",
			 [&](DcmDataset *d, Err &ee) -> enum dicom_err {
				 struct dicom_study s;
				 OFString v;
				 std::string t;

				 memset(&s, 0, sizeof s);
				 s.instances = -1;
				 if (d->findAndGetOFString(DCM_StudyInstanceUID, v).bad() ||
				     !uid_ok((t = trim(v)).c_str()))
					 return ee.set(DICOM_ERR_PROTOCOL,
						       "C-FIND: a match without a valid "
						       "StudyInstanceUID");
				 snprintf(s.study_uid, sizeof s.study_uid, "%s", t.c_str());
				 if (d->findAndGetOFStringArray(DCM_AccessionNumber, v).good()) {
					 t = trim(v);
					 if (t.size() >= sizeof s.accession)
						 return ee.set(DICOM_ERR_PROTOCOL,
							       "C-FIND: an AccessionNumber longer "
							       "than 64 bytes");
					 snprintf(s.accession, sizeof s.accession, "%s", t.c_str());
				 }
				 Sint32 k;
				 if (d->findAndGetSint32(DCM_NumberOfStudyRelatedInstances, k).good() &&
				     k >= 0)
					 s.instances = k;
				 found.push_back(s);
				 classes.emplace_back(s.study_uid, sop_classes(d));
				 return DICOM_OK;
			 },
			 e);
		if (r != DICOM_OK)
			return r;
		for (auto &c : classes)
			if (!c.second.empty())
				cache_put(cache_key(peer, c.first.c_str()), std::move(c.second));
		if (!found.empty()) {
			*studies = static_cast<struct dicom_study *>(
				malloc(found.size() * sizeof(struct dicom_study)));
			if (*studies == nullptr)
				return e.set(DICOM_ERR_NOMEM, "C-FIND: out of memory");
			memcpy(*studies, found.data(), found.size() * sizeof(struct dicom_study));
		}
		*n = found.size();
		return DICOM_OK;
	});
}

/* dicom_get_study - C-GET of one study, every instance through store() */
enum dicom_err dicom_get_study(const struct dicom_peer *peer, const char *study_uid,
			       dicom_store_fn store, void *arg, struct dicom_get_stats *stats,
			       char *err, size_t errlen)
{
	Err e(err, errlen);

	if (stats)
		memset(stats, 0, sizeof *stats);
	return guarded(e, "C-GET", [&]() -> enum dicom_err {
		/* 1. which SOP classes does the study hold (and does it exist at all) */
		std::vector<std::string> classes;
		enum dicom_err r = retrieval_start("C-GET", peer, study_uid, store, classes, e);
		if (r != DICOM_OK)
			return r;

		/* 2. the association: the GET model, then the storage contexts (SCP role) */
		FlipSCU scu;
		std::string w = what("C-GET", peer);
		setup(scu, peer);
		scu.store = store;
		scu.arg = arg;
		scu.addPresentationContext(UID_GETStudyRootQueryRetrieveInformationModel,
					   syntax_list(uncompressed, 2));
		OFList<OFString> all = syntax_list(storage_syntaxes, n_storage_syntaxes);
		if (classes.empty()) {
			/* the PACS did not say: the common storage classes, one context each */
			for (int i = 0; i < numberOfDcmLongSCUStorageSOPClassUIDs &&
					(size_t)i < MAX_CONTEXTS;
			     i++)
				scu.addPresentationContext(dcmLongSCUStorageSOPClassUIDs[i], all,
							   ASC_SC_ROLE_SCP);
		} else if (classes.size() * n_storage_syntaxes <= MAX_CONTEXTS) {
			for (const std::string &cl : classes)
				for (size_t k = 0; k < n_storage_syntaxes; k++)
					scu.addPresentationContext(
						cl.c_str(), syntax_list(&storage_syntaxes[k], 1),
						ASC_SC_ROLE_SCP);
		} else {
			for (size_t i = 0; i < classes.size() && i < MAX_CONTEXTS; i++)
				scu.addPresentationContext(classes[i].c_str(), all, ASC_SC_ROLE_SCP);
		}
		if ((r = connect(scu, w, e)) != DICOM_OK)
			return r;
		T_ASC_PresentationContextID pc;
		if ((r = study_context(scu, UID_GETStudyRootQueryRetrieveInformationModel, "C-GET", w,
				       e, &pc)) != DICOM_OK)
			return r;

		/* 3. C-GET; the instances arrive in FlipSCU::handleSTORERequest */
		DcmDataset g;
		study_identifier(g, study_uid);
		OFList<RetrieveResponse *> rsp;
		OFCondition c = scu.sendCGETRequest(pc, &g, &rsp);
		FinalResponse fin = final_response(rsp);
		Uint16 status = fin.status, failed = fin.failed, completed = fin.completed,
		       warning = fin.warning;
		bool have_final = fin.have;
		if (stats) {
			stats->instances = scu.stored;
			stats->bytes = scu.bytes;
		}
		if (scu.store_failed) {
			finish(scu, false);
			return e.set(DICOM_ERR_STORAGE, "%s: storing an instance failed: %s",
				     w.c_str(), scu.store_err.c_str());
		}
		if (c.bad()) {
			finish(scu, false);
			return e.set(DICOM_ERR_PROTOCOL, "%s: %s (after %lu instances)", w.c_str(),
				     c.text(), scu.stored);
		}
		if (!have_final) {
			finish(scu, false);
			return e.set(DICOM_ERR_PROTOCOL, "%s: no final C-GET response", w.c_str());
		}
		finish(scu, true);
		if (status == STATUS_Success && scu.stored == 0)
			return e.set(DICOM_ERR_NOT_FOUND, "%s: the PACS sent no instance", w.c_str());
		if (status == STATUS_Success)
			return DICOM_OK;
		if ((status & 0xf000) == 0xc000 || (status & 0xff00) == 0xa700 ||
		    (status & 0xff00) == 0xa900) {
			if (scu.stored == 0 && completed == 0 && failed == 0 && warning == 0)
				return e.set(DICOM_ERR_NOT_FOUND,
					     "%s: the PACS refused: status 0x%04x (%s)", w.c_str(),
					     status, DU_cgetStatusString(status));
		}
		return e.set(DICOM_ERR_PROTOCOL,
			     "%s: final status 0x%04x (%s): %u completed, %u failed, %u warning, "
			     "%lu received",
			     w.c_str(), status, DU_cgetStatusString(status), completed, failed,
			     warning, scu.stored);
	});
}

/* dicom_move_study - C-MOVE of one study to a receiver of our own, every instance
 * through store() */
enum dicom_err dicom_move_study(const struct dicom_peer *peer, const char *study_uid,
				const char *bind_host, int port, dicom_store_fn store, void *arg,
				struct dicom_get_stats *stats, char *err, size_t errlen)
{
	Err e(err, errlen);

	if (stats)
		memset(stats, 0, sizeof *stats);
	return guarded(e, "C-MOVE", [&]() -> enum dicom_err {
		if (bind_host == nullptr || !*bind_host)
			return e.set(DICOM_ERR_INVALID, "C-MOVE: no bind address for the receiver");
		if (port < 1 || port > 65535)
			return e.set(DICOM_ERR_INVALID, "C-MOVE: receiver port %d out of range 1..65535",
				     port);

		/* 1. does the study exist (its classes are the receiver's business) */
		std::vector<std::string> classes;
		enum dicom_err r = retrieval_start("C-MOVE", peer, study_uid, store, classes, e);
		if (r != DICOM_OK)
			return r;

		/* 2. the receiver: our socket, then the thread */
		std::string w = what("C-MOVE", peer) + " (receiver " + bind_host + ":" +
				std::to_string(port) + ")";
		MoveReceiver rx;
		rx.our_ae = peer->calling_ae;
		rx.study_uid = study_uid;
		rx.store = store;
		rx.arg = arg;
		rx.acse_timeout = or_default(peer->assoc_timeout);
		rx.dimse_timeout = or_default(peer->dimse_timeout);
		if ((r = open_listener(bind_host, port, rx.listenfd, e)) != DICOM_OK)
			return r;
		ReceiverRun run(rx);

		/* 3. the C-MOVE on an association of its own */
		FlipSCU scu;
		setup(scu, peer);
		scu.addPresentationContext(UID_MOVEStudyRootQueryRetrieveInformationModel,
					   syntax_list(uncompressed, 2));
		if ((r = connect(scu, w, e)) != DICOM_OK)
			return r;
		T_ASC_PresentationContextID pc;
		if ((r = study_context(scu, UID_MOVEStudyRootQueryRetrieveInformationModel, "C-MOVE",
				       w, e, &pc)) != DICOM_OK)
			return r;
		DcmDataset m;
		study_identifier(m, study_uid);
		OFList<RetrieveResponse *> rsp;
		OFCondition c = scu.sendMOVERequest(pc, peer->calling_ae, &m, &rsp);
		FinalResponse fin = final_response(rsp);
		Uint16 status = fin.status, failed = fin.failed, completed = fin.completed,
		       warning = fin.warning;
		bool have_final = fin.have;
		bool healthy = c.good() && have_final;
		finish(scu, healthy);

		/* 4. the receiver ends: drains after a final response, aborts otherwise */
		run.end(healthy && !rx.store_failed ? 1 : 2);
		if (stats) {
			stats->instances = rx.stored;
			stats->bytes = rx.bytes;
		}
		std::string extra = rx.problem.empty() ? "" : "; receiver: " + rx.problem;
		if (rx.foreign)
			extra += "; " + std::to_string(rx.foreign) +
				 " instances of another study refused";
		if (rx.store_failed)
			return e.set(DICOM_ERR_STORAGE, "%s: storing an instance failed: %s",
				     w.c_str(), rx.store_err.c_str());
		if (c.bad())
			return e.set(DICOM_ERR_PROTOCOL, "%s: %s (after %lu instances)%s", w.c_str(),
				     c.text(), rx.stored, extra.c_str());
		if (!have_final)
			return e.set(DICOM_ERR_PROTOCOL, "%s: no final C-MOVE response%s", w.c_str(),
				     extra.c_str());
		if (status == STATUS_MOVE_Failed_MoveDestinationUnknown)
			return e.set(DICOM_ERR_REJECTED,
				     "%s: the PACS does not know the move destination %s (register "
				     "the node's AE title, address and port on the PACS)",
				     w.c_str(), peer->calling_ae);
		if (status == STATUS_Success && completed == 0 && failed == 0 && rx.stored == 0)
			return e.set(DICOM_ERR_NOT_FOUND, "%s: the PACS sent no instance", w.c_str());
		if (status == STATUS_Success && rx.stored >= completed && rx.problem.empty())
			return DICOM_OK;
		if (rx.associations == 0)
			return e.set(DICOM_ERR_PROTOCOL,
				     "%s: final status 0x%04x (%s), but the PACS never connected to "
				     "the receiver: does it send %s to this host and port?%s",
				     w.c_str(), status, DU_cmoveStatusString(status), peer->calling_ae,
				     extra.c_str());
		return e.set(DICOM_ERR_PROTOCOL,
			     "%s: final status 0x%04x (%s): %u completed, %u failed, %u warning, "
			     "%lu received%s",
			     w.c_str(), status, DU_cmoveStatusString(status), completed, failed,
			     warning, rx.stored, extra.c_str());
	});
}

/* dicom_ds_load - a whole DICOM file into memory */
enum dicom_err dicom_ds_load(const char *path, struct dicom_ds **out, char *err, size_t errlen)
{
	Err e(err, errlen);

	if (out)
		*out = nullptr;
	if (path == nullptr || out == nullptr)
		return e.set(DICOM_ERR_INVALID, "dicom_ds_load: no path");
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return e.set(DICOM_ERR_IO, "%s: %s", path,
			     errno == ELOOP ? "is a symbolic link (refused)" : strerror(errno));
	enum dicom_err r = guarded(e, path, [&]() -> enum dicom_err {
		struct stat st;
		if (fstat(fd, &st) != 0)
			return e.set(DICOM_ERR_IO, "%s: %s", path, strerror(errno));
		if (!S_ISREG(st.st_mode))
			return e.set(DICOM_ERR_IO, "%s: not a regular file", path);
		if ((unsigned long long)st.st_size > DICOM_MAX_FILE)
			return e.set(DICOM_ERR_IO, "%s: larger than %llu bytes", path,
				     (unsigned long long)DICOM_MAX_FILE);
		if (st.st_size < 8)
			return e.set(DICOM_ERR_CORRUPT, "%s: too short to be DICOM", path);
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		DcmFileFormat *ff = new DcmFileFormat();
		/* Values longer than DCM_MaxReadLength are only located, not read, by the
		 * parse: a length beyond the end of the file then fails as a premature end
		 * of the stream instead of first allocating that many bytes. They are read
		 * (through the same /proc path, while fd is open) just after. */
		OFCondition c = ff->loadFile(proc, EXS_Unknown, EGL_noChange, DCM_MaxReadLength,
					     ERM_autoDetect);
		if (c.good())
			c = ff->loadAllDataIntoMemory();
		if (c.bad()) {
			delete ff;
			if (c == EC_MemoryExhausted)
				return e.set(DICOM_ERR_CORRUPT,
					     "%s: not a DICOM file dcmtk can read (a value "
					     "length beyond the file?)",
					     path);
			return e.set(DICOM_ERR_CORRUPT, "%s: not a readable DICOM file: %s", path,
				     c.text());
		}
		if (ff->getDataset()->card() == 0) {
			delete ff;
			return e.set(DICOM_ERR_CORRUPT, "%s: no DICOM dataset in the file", path);
		}
		try {
			*out = ds_wrap(ff);
		} catch (...) {
			delete ff;
			throw;
		}
		return DICOM_OK;
	});
	close(fd);
	return r;
}

/* dicom_ds_save_fd - a Part 10 file onto fd, in the dataset's own transfer syntax */
enum dicom_err dicom_ds_save_fd(struct dicom_ds *ds, int fd, char *err, size_t errlen)
{
	Err e(err, errlen);

	if (ds == nullptr || fd < 0)
		return e.set(DICOM_ERR_INVALID, "dicom_ds_save_fd: no dataset or descriptor");
	return guarded(e, "save", [&]() -> enum dicom_err {
		FlipSink sink;
		sink.fd = fd;
		return save_to(ds, sink, e);
	});
}

/* dicom_ds_save - the same into path (created or truncated, not fsynced) */
enum dicom_err dicom_ds_save(struct dicom_ds *ds, const char *path, char *err, size_t errlen)
{
	Err e(err, errlen);

	if (ds == nullptr || path == nullptr)
		return e.set(DICOM_ERR_INVALID, "dicom_ds_save: no dataset or path");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0)
		return e.set(DICOM_ERR_IO, "%s: %s", path, strerror(errno));
	enum dicom_err r = dicom_ds_save_fd(ds, fd, err, errlen);
	if (close(fd) != 0 && r == DICOM_OK)
		r = e.set(DICOM_ERR_IO, "%s: %s", path, strerror(errno));
	return r;
}

/* dicom_ds_free - the dataset and everything in it */
void dicom_ds_free(struct dicom_ds *ds)
{
	if (ds == nullptr)
		return;
	delete ds->ff;
	delete ds;
}

/* dicom_ds_get_string - a top-level string value */
enum dicom_err dicom_ds_get_string(struct dicom_ds *ds, uint32_t tag, char *buf, size_t len)
{
	if (buf && len)
		buf[0] = 0;
	if (ds == nullptr || buf == nullptr || len == 0)
		return DICOM_ERR_INVALID;
	try {
		DcmElement *el = nullptr;
		DcmTagKey key(DICOM_GROUP(tag), DICOM_ELEMENT(tag));

		if (item_for(ds, tag)->findAndGetElement(key, el, OFFalse).bad() || el == nullptr)
			return DICOM_ERR_NOT_FOUND;
		if (!el->isaString())
			return DICOM_ERR_INVALID;
		return string_value(el, buf, len);
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

/* dicom_ds_put_string - set or insert a top-level attribute */
enum dicom_err dicom_ds_put_string(struct dicom_ds *ds, uint32_t tag, const char *value)
{
	if (ds == nullptr || value == nullptr)
		return DICOM_ERR_INVALID;
	try {
		DcmTag t(DICOM_GROUP(tag), DICOM_ELEMENT(tag));

		if (!t.getVR().isaString())
			return DICOM_ERR_INVALID;
		return item_for(ds, tag)->putAndInsertString(t, value).good() ? DICOM_OK
										 : DICOM_ERR_INVALID;
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

/* dicom_ds_put_code_item - append a coded entry to a top-level sequence */
enum dicom_err dicom_ds_put_code_item(struct dicom_ds *ds, uint32_t seq_tag, const char *value,
				      const char *scheme, const char *meaning)
{
	if (ds == nullptr || value == nullptr || scheme == nullptr || meaning == nullptr)
		return DICOM_ERR_INVALID;
	try {
		DcmItem *it = nullptr;
		DcmTag t(DICOM_GROUP(seq_tag), DICOM_ELEMENT(seq_tag));

		if (t.getEVR() != EVR_SQ)
			return DICOM_ERR_INVALID;
		if (ds->ff->getDataset()->findOrCreateSequenceItem(t, it, -2).bad() || it == nullptr)
			return DICOM_ERR_INVALID;
		if (it->putAndInsertString(DCM_CodeValue, value).bad() ||
		    it->putAndInsertString(DCM_CodingSchemeDesignator, scheme).bad() ||
		    it->putAndInsertString(DCM_CodeMeaning, meaning).bad())
			return DICOM_ERR_INVALID;
		return DICOM_OK;
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

/* dicom_ds_remove - delete a top-level attribute: 1, or 0 when absent */
int dicom_ds_remove(struct dicom_ds *ds, uint32_t tag)
{
	if (ds == nullptr)
		return 0;
	try {
		DcmTagKey key(DICOM_GROUP(tag), DICOM_ELEMENT(tag));

		return item_for(ds, tag)->findAndDeleteElement(key, OFFalse, OFFalse).good() ? 1 : 0;
	} catch (...) {
		return 0;
	}
}

/* dicom_ds_remove_private - every odd-group attribute, at every level */
size_t dicom_ds_remove_private(struct dicom_ds *ds)
{
	size_t n = 0;

	if (ds != nullptr)
		(void)dicom_ds_walk(ds, remove_private_cb, &n);
	return n;
}

/* dicom_ds_walk - every attribute, depth first, fn deciding */
enum dicom_err dicom_ds_walk(struct dicom_ds *ds, dicom_walk_fn fn, void *arg)
{
	if (ds == nullptr || fn == nullptr)
		return DICOM_ERR_INVALID;
	try {
		if (walk_item(ds->ff->getMetaInfo(), 0, 0, fn, arg) < 0 ||
		    walk_item(ds->ff->getDataset(), 0, 0, fn, arg) < 0)
			return DICOM_ERR_INVALID;
		return DICOM_OK;
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

/* dicom_ds_has_pixel_data - any of the three pixel data attributes */
int dicom_ds_has_pixel_data(struct dicom_ds *ds)
{
	if (ds == nullptr)
		return 0;
	DcmDataset *d = ds->ff->getDataset();
	return d->tagExists(DCM_PixelData) || d->tagExists(DCM_FloatPixelData) ||
	       d->tagExists(DCM_DoubleFloatPixelData);
}

/* dicom_ds_burned_in - BurnedInAnnotation is YES */
int dicom_ds_burned_in(struct dicom_ds *ds)
{
	char v[16];

	if (dicom_ds_get_string(ds, DICOM_TAG(0x0028, 0x0301), v, sizeof v) != DICOM_OK)
		return 0;
	return strcasecmp(v, "YES") == 0;
}

/* dicom_ds_transfer_syntax - the UID the dataset came in, "" when unknown */
const char *dicom_ds_transfer_syntax(struct dicom_ds *ds)
{
	return ds ? ds->xfer : "";
}

/* dicom_ds_encode_element - one element as written in the dataset's syntax */
enum dicom_err dicom_ds_encode_element(struct dicom_ds *ds, uint32_t tag, unsigned char **buf,
				       size_t *len)
{
	if (buf)
		*buf = nullptr;
	if (len)
		*len = 0;
	if (ds == nullptr || buf == nullptr || len == nullptr)
		return DICOM_ERR_INVALID;
	try {
		DcmElement *el = nullptr;
		DcmTagKey key(DICOM_GROUP(tag), DICOM_ELEMENT(tag));
		E_TransferSyntax x = ds->ff->getDataset()->getOriginalXfer();

		if (x == EXS_Unknown)
			x = EXS_LittleEndianExplicit;
		if (item_for(ds, tag)->findAndGetElement(key, el, OFFalse).bad() || el == nullptr)
			return DICOM_ERR_NOT_FOUND;
		std::string out;
		FlipSink sink;
		sink.out = &out;
		SinkStream stream(&sink);
		el->transferInit();
		OFCondition c = el->write(stream, x, EET_UndefinedLength, nullptr);
		el->transferEnd();
		stream.flush();
		if (c.bad())
			return DICOM_ERR_CORRUPT;
		*buf = static_cast<unsigned char *>(malloc(out.size() ? out.size() : 1));
		if (*buf == nullptr)
			return DICOM_ERR_NOMEM;
		memcpy(*buf, out.data(), out.size());
		*len = out.size();
		return DICOM_OK;
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

uint32_t dicom_elem_tag(const struct dicom_elem *e)
{
	return DICOM_TAG(e->el->getGTag(), e->el->getETag());
}

const char *dicom_elem_vr(const struct dicom_elem *e) { return e->vr; }

int dicom_elem_depth(const struct dicom_elem *e) { return e->depth; }

uint32_t dicom_elem_parent(const struct dicom_elem *e) { return e->parent; }

int dicom_elem_is_sequence(const struct dicom_elem *e) { return e->el->ident() == EVR_SQ; }

int dicom_elem_is_string(const struct dicom_elem *e)
{
	return e->el->ident() != EVR_SQ && e->el->isaString();
}

/* dicom_elem_get_string - the element's string value (see dicom_ds_get_string) */
enum dicom_err dicom_elem_get_string(const struct dicom_elem *e, char *buf, size_t len)
{
	if (buf && len)
		buf[0] = 0;
	if (e == nullptr || buf == nullptr || len == 0 || !dicom_elem_is_string(e))
		return DICOM_ERR_INVALID;
	try {
		return string_value(e->el, buf, len);
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

/* dicom_elem_set_string - replace a string element's value in place */
enum dicom_err dicom_elem_set_string(struct dicom_elem *e, const char *value)
{
	if (e == nullptr || value == nullptr || !dicom_elem_is_string(e))
		return DICOM_ERR_INVALID;
	try {
		return e->el->putString(value).good() ? DICOM_OK : DICOM_ERR_INVALID;
	} catch (const std::bad_alloc &) {
		return DICOM_ERR_NOMEM;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

/* dicom_elem_clear - zero-length value; a sequence loses all its items */
enum dicom_err dicom_elem_clear(struct dicom_elem *e)
{
	if (e == nullptr)
		return DICOM_ERR_INVALID;
	try {
		return e->el->clear().good() ? DICOM_OK : DICOM_ERR_INVALID;
	} catch (...) {
		return DICOM_ERR_INVALID;
	}
}

}  // extern "C"
