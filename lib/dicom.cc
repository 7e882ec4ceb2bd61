/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dicom - the extern "C" shim over dcmtk (see dicom.h for the contract): what every
 * call of it shares.
 *
 * The shim is four C++ files over one internal header (dicom_shim.h): this one
 * (dcmtk's logging into the node's log, the error names, the checks of peers and
 * UIDs, and the TCP transport of every association), dicom_net.cc (the association
 * as requestor, C-ECHO, C-FIND, C-GET), dicom_move.cc (C-MOVE with its receiver
 * thread) and dicom_dataset.cc (files and dataset editing). Every dcmtk call of the
 * node is in them; every public function catches every exception (std::bad_alloc
 * becomes DICOM_ERR_NOMEM) because one escaping into C would terminate the program.
 */
#include "lib/dicom.h"
#include "lib/dicom_shim.h"

#include <cstdarg>
#include <cstring>
#include <new>
#include <string>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "dcmtk/oflog/oflog.h"
#include "dcmtk/oflog/appender.h"
#include "dcmtk/oflog/spi/logevent.h"

extern "C" {
#include "lib/err.h"
#include "lib/log.h"
}

namespace {

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

}  // namespace

void ensure_init(void)
{
	if (!initialised)
		dicom_init(0);
}

/* ---- small helpers -------------------------------------------------------------- */

/* Err::set - the message into the caller's err with lib/err.h's formatter, control
 * characters replaced (one line, nothing a terminal would act on); returns e */
enum dicom_err Err::set(enum dicom_err e, const char *fmt, ...)
{
	va_list ap;

	if (buf == nullptr || len == 0)
		return e;
	va_start(ap, fmt);
	err_vset(buf, len, fmt, ap);
	va_end(ap);
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return e;
}

namespace {

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

}  // namespace

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

/* ---- the transport ---------------------------------------------------------------- */

namespace {

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

}  // namespace

/* TunedLayer::createConnection - a TunedConnection, whatever the "secure" flag says
 * (see TunedLayer in dicom_shim.h) */
DcmTransportConnection *TunedLayer::createConnection(DcmNativeSocketType s, OFBool)
{
	return new (std::nothrow) TunedConnection(s);
}

TunedLayer tuned_layer;

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

}  // extern "C"
