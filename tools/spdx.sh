#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# spdx.sh - give every source file of the tree its licence identifier.
#
# SYNOPSIS
#	tools/spdx.sh [--check] [FILE...]
#
# DESCRIPTION
#	Puts the line `SPDX-License-Identifier: Apache-2.0`, in the comment syntax of
#	the file's language, at the top of each FILE (default: every file git tracks,
#	run from the top of the tree): the first line, or the second when the first
#	is a `#!` line. A file that already names an SPDX licence in its first two
#	lines is left alone, so running the script again changes nothing; run it
#	after every merge that brings new files.
#
#	Which syntax a file gets is decided here, in rule(), by its path:
#	    /* ... */   C and C++ (*.c, *.h, *.cc)
#	    # ...       Python, shell, Makefile, systemd units, the crontab, debian/
#	                maintainer scripts and control files, *.list, *.env.example,
#	                .gitignore, and files whose #! line names sh, bash or python
#	    -- ...      SQL
#	    .\" ...     manual pages (*.7, *.8)
#	Files where a comment is impossible or would change what they are (fuzzing
#	corpora, JSON, the licence texts, debian/changelog, debian/copyright,
#	debian/source/format, VERSION) and prose (*.md) are skipped on purpose.
#	A file that matches no rule is an error: add a rule or a skip, so that a new
#	kind of file is a decision rather than an oversight.
#
#	--check changes nothing: it lists each file that lacks the line (or has no
#	rule) and exits 1 if there is any.
#
#	Every rewrite is a temporary sibling with the original's mode, then rename(2).
#
# DIAGNOSTICS
#	Exit 0 all done (or, with --check, nothing missing); 1 files missing the line
#	(--check) or without a rule; 2 usage error or a file that cannot be rewritten.

set -eu

ID='SPDX-License-Identifier: Apache-2.0'

usage() {
	echo "usage: tools/spdx.sh [--check] [FILE...]" >&2
	exit 2
}

# rule FILE - print the comment style of FILE (c, hash, sql, roff), or skip, or none
rule() {
	case "$1" in
	tests/fuzz/corpus/*|*.json|*.md|LICENSE|NOTICE|VERSION) echo skip; return ;;
	debian/changelog|debian/copyright|debian/source/format) echo skip; return ;;
	*.c|*.h|*.cc|*.inc) echo c; return ;;
	*.sql) echo sql; return ;;
	*.7|*.8) echo roff; return ;;
	*.py|*.sh|*.yml|Makefile|*.service|*.timer|*.path|*.socket|*.cron) echo hash; return ;;
	*.list|*.env.example|.gitignore|debian/rules|debian/control) echo hash; return ;;
	debian/*.docs|debian/*.lintian-overrides) echo hash; return ;;
	debian/*.postinst|debian/*.postrm|debian/*.prerm|debian/*.preinst) echo hash; return ;;
	esac
	case "$(head -n 1 -- "$1" 2>/dev/null)" in
	'#!'*sh|'#!'*sh\ *|'#!'*python3|'#!'*python3\ *) echo hash ;;
	*) echo none ;;
	esac
}

# comment STYLE - the identifier line in STYLE
comment() {
	case "$1" in
	c) printf '/* %s */\n' "$ID" ;;
	hash) printf '# %s\n' "$ID" ;;
	sql) printf '%s %s\n' '--' "$ID" ;;
	roff) printf '.\\" %s\n' "$ID" ;;
	esac
}

# has_id FILE - whether FILE names an SPDX licence in its first two lines
has_id() {
	head -n 2 -- "$1" | grep -q 'SPDX-License-Identifier:'
}

# add FILE STYLE - rewrite FILE with the identifier line at its top
add() {
	tmp="$1.spdx.$$"
	line=$(comment "$2")
	first=$(head -n 1 -- "$1")
	{
		case "$first" in
		'#!'*)	printf '%s\n%s\n' "$first" "$line"
			tail -n +2 -- "$1" ;;
		*)	printf '%s\n' "$line"
			cat -- "$1" ;;
		esac
	} >"$tmp" || { rm -f -- "$tmp"; echo "spdx.sh: cannot write $tmp" >&2; exit 2; }
	chmod --reference="$1" -- "$tmp" &&
	    mv -f -- "$tmp" "$1" || { rm -f -- "$tmp"; echo "spdx.sh: cannot replace $1" >&2; exit 2; }
}

check=0
if [ "${1:-}" = "--check" ]; then
	check=1
	shift
fi
case "${1:-}" in
-*) usage ;;
esac

# No files named: every tracked file, handed back to this script in batches by
# xargs (names may hold any character); xargs says 123 when a batch exited 1.
if [ $# -eq 0 ]; then
	self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
	cd "$(dirname "$self")/.."
	git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
	    { echo "spdx.sh: not in a git work tree: name the files" >&2; exit 2; }
	flag=
	[ $check -eq 1 ] && flag=--check
	rc=0
	git ls-files -z | xargs -0 -r sh "$self" $flag || rc=$?
	case $rc in
	0) exit 0 ;;
	123) exit 1 ;;
	*) exit 2 ;;
	esac
fi

bad=0
for f in "$@"; do
	[ -f "$f" ] && [ ! -L "$f" ] || continue # a deleted, linked or special file
	style=$(rule "$f")
	case "$style" in
	skip) continue ;;
	none)
		echo "spdx.sh: $f: no rule for this kind of file (add one to tools/spdx.sh)" >&2
		bad=1
		continue ;;
	esac
	has_id "$f" && continue
	if [ $check -eq 1 ]; then
		echo "$f: no $ID line"
		bad=1
	else
		add "$f" "$style"
	fi
done
exit $bad
