/* SPDX-License-Identifier: Apache-2.0 */
/*
 * toml - read a TOML file into a jansson tree (see toml.h for the contract).
 *
 * This is one of the two C++ files of the project: a shim that keeps toml11 (a
 * header-only C++17 library) behind one C function. Everything C++ stays in this
 * file; every exception is caught here, because one crossing into C code would
 * terminate the program.
 *
 * The file is read by us, not by toml11, so that it can be opened O_NOFOLLOW,
 * checked to be a regular file and capped before a byte is parsed. The text is
 * then scanned once (toml_prescan_ok) for what toml11 3.7 handles badly: deep
 * nesting (it recurses) and long binary literals (signed overflow). toml11 parses
 * from memory, and the tree is converted to jansson (toml_to_json), re-reading the
 * source text of every integer and float because toml11 saturates an out-of-range
 * number instead of refusing it. Tables are kept in a std::map, so a converted
 * object lists its keys in sorted order: the same file always gives the same tree.
 */
#include "lib/toml.h"
#include "lib/err.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml.hpp>

namespace {

using tvalue = toml::basic_value<toml::discard_comments, std::map, std::vector>;

/* toml_printable - control characters in err (a key or value from the file may hold
 * any) become '?', so that the message stays on one line */
void toml_printable(char *err, size_t errlen)
{
	if (err == nullptr || errlen == 0)
		return;
	for (char *c = err; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

/* toml_read - the whole file into text; "" or a reason in why */
bool toml_read(const char *path, size_t max_bytes, std::string &text, std::string &why)
{
	struct stat st;
	int fd;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		why = errno == ELOOP ? "is a symbolic link (refused)" : strerror(errno);
		return false;
	}
	if (fstat(fd, &st) != 0) {
		why = strerror(errno);
		close(fd);
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		why = "not a regular file";
		close(fd);
		return false;
	}
	if ((unsigned long long)st.st_size > max_bytes) {
		why = "larger than " + std::to_string(max_bytes) + " bytes";
		close(fd);
		return false;
	}
	/* read at most max_bytes + 1: a file growing under us is still caught */
	text.resize(max_bytes + 1);
	size_t got = 0;
	while (got < text.size()) {
		ssize_t n = read(fd, &text[got], text.size() - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			why = strerror(errno);
			close(fd);
			return false;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got > max_bytes) {
		why = "larger than " + std::to_string(max_bytes) + " bytes";
		return false;
	}
	text.resize(got);
	return true;
}

/*
 * toml_prescan_ok - keep toml11 away from what it handles badly. A small lexer
 * skips comments and the four kinds of string; outside them it counts the depth of
 * [ and { and the dots of each line (a dotted key a.b.c nests like a.b.c tables; a
 * key cannot span lines, so a per-line count bounds it), and the digits of binary
 * integers. False with the line number and why when a bound is passed. A lexing
 * mistake here can only make a bound looser or stricter; toml11 still parses the
 * text itself.
 */
bool toml_prescan_ok(const std::string &t, unsigned &line, std::string &why)
{
	size_t i = 0, n = t.size();
	int depth = 0, dots = 0;

	line = 1;
	while (i < n) {
		char c = t[i];

		if (c == '\n') {
			line++;
			dots = 0;
			i++;
		} else if (c == '#') {
			while (i < n && t[i] != '\n')
				i++;
		} else if (c == '"' || c == '\'') {
			bool multi = t.compare(i, 3, std::string(3, c)) == 0;

			i += multi ? 3 : 1;
			while (i < n) {
				if (c == '"' && t[i] == '\\') { /* escape: skip the next char */
					if (i + 1 < n && t[i + 1] == '\n')
						line++;
					i += 2;
					continue;
				}
				if (t[i] == '\n') {
					if (!multi)
						break; /* unterminated: toml11 will say so */
					line++;
				}
				if (t[i] == c && (!multi || t.compare(i, 3, std::string(3, c)) == 0)) {
					i += multi ? 3 : 1;
					/* up to two more quotes belong to the string ("""a"""") */
					for (int k = 0; multi && k < 2 && i < n && t[i] == c; k++)
						i++;
					break;
				}
				i++;
			}
		} else {
			if (c == '[' || c == '{') {
				if (++depth > TOML_MAX_DEPTH) {
					why = "nested deeper than " + std::to_string(TOML_MAX_DEPTH) +
					      " levels of [ or {";
					return false;
				}
			} else if ((c == ']' || c == '}') && depth > 0) {
				depth--;
			} else if (c == '.' && ++dots > TOML_MAX_DOTS) {
				why = "more than " + std::to_string(TOML_MAX_DOTS) +
				      " dots outside strings on one line";
				return false;
			} else if (c == '0' && i + 1 < n && t[i + 1] == 'b' &&
				   (i == 0 || !(isalnum((unsigned char)t[i - 1]) || t[i - 1] == '_' ||
						t[i - 1] == '-'))) {
				/* toml11 3.7 doubles a signed 64-bit place value once per binary
				 * digit: 63 digits or more overflow it (undefined behaviour) */
				size_t k = i + 2;
				int bits = 0;

				for (; k < n && (t[k] == '0' || t[k] == '1' || t[k] == '_'); k++)
					bits += t[k] != '_';
				if (bits > 62) {
					why = "binary integer of more than 62 digits";
					return false;
				}
				i = k;
				continue;
			}
			i++;
		}
	}
	return true;
}

/* toml_one_line - toml11's multi-line (maybe coloured) syntax error reduced to
 * "what" and the line it points at: the first line without "[error] " and the
 * "toml::parse_xxx: " prefix (or, when that is all the first line says, the last
 * "^--- hint" under the source), and the number of the last " N | " source line */
std::string toml_one_line(const std::string &what, unsigned &line)
{
	std::string plain, first, hint;
	std::istringstream in;
	std::string l;

	for (size_t i = 0; i < what.size(); i++) { /* drop ANSI escapes ESC [ ... letter */
		if (what[i] == '\x1b') {
			size_t j = i + 1;

			if (j < what.size() && what[j] == '[')
				for (j++; j < what.size() && !(what[j] >= 0x40 && what[j] <= 0x7e); j++)
					;
			i = j;
			continue;
		}
		plain += what[i];
	}
	in.str(plain);
	while (std::getline(in, l)) {
		size_t p = l.find_first_not_of(' ');
		size_t bar = l.find("| ");
		bool numbered = p != std::string::npos && bar != std::string::npos && bar > p &&
				l.find_first_not_of("0123456789", p) == bar - 1;

		if (numbered) {
			unsigned long n = 0;

			for (size_t k = p; k < bar - 1 && n < 100000000UL; k++)
				n = n * 10 + (unsigned long)(l[k] - '0');
			line = (unsigned)n;
		} else if (p != std::string::npos && p == bar) { /* "   |   ^--- hint" */
			size_t m = l.find_first_of("^~", bar);
			size_t h = m == std::string::npos ? m : l.find_first_not_of("^~- ", m);

			if (h != std::string::npos)
				hint = l.substr(h);
		} else if (first.empty() && p != std::string::npos) {
			first = l.substr(p);
		}
	}
	if (first.compare(0, 8, "[error] ") == 0)
		first.erase(0, 8);
	if (first.compare(0, 6, "toml::") == 0) {
		size_t colon = first.find(": ");

		first.erase(0, colon == std::string::npos ? std::string::npos : colon + 2);
	}
	if (first.empty())
		first = hint;
	return first.empty() ? "syntax error" : first;
}

/* toml_key_path - "a.b[2].c" for messages; a NUL in a key (TOML allows "\u0000")
 * becomes '?' here, or the C string of the message would end at it */
std::string toml_key_path(const std::string &parent, const std::string &key)
{
	std::string k = key;

	for (char &c : k)
		if (c == 0)
			c = '?';
	return parent.empty() ? k : parent + "." + k;
}

/* toml_token - the source text of a scalar value, "" when toml11 cannot say */
std::string toml_token(const tvalue &v)
{
	const toml::source_location loc = v.location();
	const std::string &l = loc.line_str();

	if (loc.column() < 1 || loc.column() - 1 + loc.region() > l.size())
		return "";
	std::string t = l.substr(loc.column() - 1, loc.region());
	t.erase(std::remove(t.begin(), t.end(), '_'), t.end());
	return t;
}

/*
 * toml_integer_ok - toml11 3.7 saturates an integer that does not fit 64 bits
 * (99999999999999999999 becomes INT64_MAX, a 65-bit 0b literal -1) instead of
 * refusing it as TOML requires; a floor of "a very large number" must not become
 * some other number. Re-read the source text and insist on the same value.
 */
bool toml_integer_ok(const tvalue &v)
{
	std::string t = toml_token(v);
	int base = 10;
	const char *digits = t.c_str();
	char *end = nullptr;
	long long n;

	if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'o' || t[1] == 'b')) {
		unsigned long long u;

		base = t[1] == 'x' ? 16 : t[1] == 'o' ? 8 : 2;
		digits += 2;
		errno = 0;
		u = strtoull(digits, &end, base);
		if (errno != 0 || end == digits || *end != 0 || u > (unsigned long long)LLONG_MAX)
			return false;
		n = (long long)u;
	} else {
		errno = 0;
		n = strtoll(digits, &end, 10);
		if (errno != 0 || end == digits || *end != 0)
			return false;
	}
	return n == (long long)v.as_integer();
}

/* toml_float_ok - likewise, 1e400 must not quietly become DBL_MAX */
bool toml_float_ok(const tvalue &v)
{
	std::string t = toml_token(v);
	char *end = nullptr;
	double d;

	errno = 0;
	d = strtod(t.c_str(), &end);
	if (end == t.c_str() || *end != 0)
		return false;
	return !(errno == ERANGE && std::isinf(d));
}

/*
 * toml_to_json - the jansson tree for v, or nullptr with why (and line) set.
 * depth is the level of v: 0 for the root table, 1 for its values, and so on.
 */
json_t *toml_to_json(const tvalue &v, int depth, const std::string &where, std::string &why,
		     unsigned &line)
{
	json_t *j = nullptr;

	line = v.location().line();
	switch (v.type()) {
	case toml::value_t::boolean:
		j = json_boolean(v.as_boolean());
		break;
	case toml::value_t::integer:
		if (!toml_integer_ok(v)) {
			why = "key '" + where + "': integer does not fit in 64 bits";
			return nullptr;
		}
		j = json_integer((json_int_t)v.as_integer());
		break;
	case toml::value_t::floating:
		if (!std::isfinite(v.as_floating())) {
			why = "key '" + where + "': inf and nan are not supported";
			return nullptr;
		}
		if (!toml_float_ok(v)) {
			why = "key '" + where + "': float out of range";
			return nullptr;
		}
		j = json_real(v.as_floating());
		break;
	case toml::value_t::string: {
		const std::string &s = v.as_string().str;

		if (s.find('\0') != std::string::npos) {
			why = "key '" + where + "': string holds a NUL character";
			return nullptr;
		}
		j = json_stringn(s.data(), s.size());
		if (j == nullptr) {
			why = "key '" + where + "': string is not valid UTF-8";
			return nullptr;
		}
		break;
	}
	case toml::value_t::offset_datetime:
	case toml::value_t::local_datetime:
	case toml::value_t::local_date:
	case toml::value_t::local_time: {
		std::ostringstream text;

		if (v.is_offset_datetime())
			text << v.as_offset_datetime();
		else if (v.is_local_datetime())
			text << v.as_local_datetime();
		else if (v.is_local_date())
			text << v.as_local_date();
		else
			text << v.as_local_time();
		j = json_pack("{s:s}", "$datetime", text.str().c_str());
		break;
	}
	case toml::value_t::array: {
		size_t k = 0;

		if (depth > TOML_MAX_DEPTH) {
			why = "key '" + where + "': nested deeper than " +
			      std::to_string(TOML_MAX_DEPTH) + " levels";
			return nullptr;
		}
		j = json_array();
		if (j == nullptr)
			break;
		for (const tvalue &e : v.as_array()) {
			json_t *c = toml_to_json(e, depth + 1, where + "[" + std::to_string(k++) + "]",
						 why, line);

			if (c == nullptr || json_array_append_new(j, c) != 0) {
				json_decref(j);
				return nullptr;
			}
		}
		break;
	}
	case toml::value_t::table: {
		if (depth > TOML_MAX_DEPTH) {
			why = "key '" + where + "': nested deeper than " +
			      std::to_string(TOML_MAX_DEPTH) + " levels";
			return nullptr;
		}
		j = json_object();
		if (j == nullptr)
			break;
		for (const auto &kv : v.as_table()) {
			std::string path = toml_key_path(where, kv.first);
			json_t *c;

			if (kv.first.find('\0') != std::string::npos) {
				line = kv.second.location().line();
				why = "key '" + path + "': key holds a NUL character";
				json_decref(j);
				return nullptr;
			}
			c = toml_to_json(kv.second, depth + 1, path, why, line);
			if (c == nullptr) {
				json_decref(j);
				return nullptr;
			}
			if (json_object_set_new(j, kv.first.c_str(), c) != 0) {
				why = "key '" + path + "': key is not valid UTF-8";
				json_decref(j);
				return nullptr;
			}
		}
		break;
	}
	default:
		why = "key '" + where + "': value of unknown type";
		return nullptr;
	}
	if (j == nullptr && why.empty())
		why = "out of memory";
	return j;
}

} // namespace

/* toml_load - the TOML file at path as a new JSON object, or NULL and err */
static json_t *toml_load(const char *path, size_t max_bytes, char *err, size_t errlen)
{
	try {
		std::string text, why;
		unsigned line = 0;

		if (path == nullptr || *path == 0) {
			err_set(err, errlen, "no TOML file given");
			return nullptr;
		}
		if (!toml_read(path, max_bytes, text, why)) {
			err_set(err, errlen, "%s: %s", path, why.c_str());
			return nullptr;
		}
		if (!toml_prescan_ok(text, line, why)) {
			err_set(err, errlen, "%s: line %u: %s", path, line, why.c_str());
			return nullptr;
		}

		tvalue doc;
		try {
			std::istringstream in(text);

			text.clear();
			doc = toml::parse<toml::discard_comments, std::map, std::vector>(in, path);
		} catch (const toml::syntax_error &e) {
			line = e.location().line();
			std::string what = toml_one_line(e.what(), line);

			err_set(err, errlen, "%s: line %u: %s", path, line, what.c_str());
			return nullptr;
		}

		json_t *j = toml_to_json(doc, 0, "", why, line);
		if (j == nullptr) {
			err_set(err, errlen, "%s: line %u: %s", path, line, why.c_str());
			return nullptr;
		}
		return j;
	} catch (const std::bad_alloc &) {
		err_set(err, errlen, "%s: out of memory", path ? path : "");
	} catch (const std::exception &e) {
		/* no allocation here: this handler must not throw */
		const char *w = e.what();

		err_set(err, errlen, "%s: %.*s", path ? path : "", (int)strcspn(w, "\n"), w);
	} catch (...) {
		err_set(err, errlen, "%s: internal error while reading TOML", path ? path : "");
	}
	return nullptr;
}

/* toml_load_file - toml_load(), every message on one line */
extern "C" json_t *toml_load_file(const char *path, size_t max_bytes, char *err, size_t errlen)
{
	json_t *j = toml_load(path, max_bytes, err, errlen);

	if (j == nullptr)
		toml_printable(err, errlen);
	return j;
}
