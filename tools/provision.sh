#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# provision.sh - install and start flip-node on a trust's host over SSH, from the
# operator's workstation (`make provision`, which builds the package first).
#
# Contract
#   Settings come from the environment (make passes its command-line variables):
#     TRUST_HOST       the target host (name or address)                 required
#     KIT              the trust's kit file, mode 0600 or 0640           required
#     DEB              the package, build/deb/flip-node_<v>_<arch>.deb   required
#     SSH_USER         login on the target (default root); any other user
#                      needs sudo without a password (BatchMode: nothing prompts)
#     SSH_PORT         default 22
#     SSH_KEY          a private key file (default: ssh's own, or the agent)
#     SSH_CONFIG       an ssh_config file for ssh -F (default: ssh's own)
#     SSH_KNOWN_HOSTS  a known_hosts file (default: ssh's own)
#     FORCE_KIT=1      replace a different /etc/flip/flip.env on the target
#                      (the old one is kept as /etc/flip/flip.env.previous, 0600)
#     APT_UPDATE=1     run apt-get update on the target before installing
#     DRY_RUN=1        print what would run on the target; connect to nothing
#   `provision.sh --check` checks the settings and the kit's mode only (make runs
#   it before building the package).
#
#   Steps, one line each ("provision: [n/11] ..."), in this order:
#     1 check the settings and the kit locally: a kit whose mode is not 0600 or
#       0640 is refused before any connection is made;
#     2 connect: one SSH master connection (ControlMaster, a socket in a private
#       local directory) that every later step shares; BatchMode=yes and
#       StrictHostKeyChecking=yes always, so an unknown or changed host key stops
#       here (the operator adds the key to known_hosts after checking it);
#     3 check the target: root or password-less sudo, apt-get, dpkg, runuser, the
#       package's architecture; make a private directory (mktemp -d in /tmp,
#       mode 0700, owned by the login user);
#     4 copy the package and the kit into it with scp (the kit is never on a
#       command line, never printed, and never readable by others on the target);
#     5 compare the kit with the target's /etc/flip/flip.env: a different one
#       stops here, before anything is installed, unless FORCE_KIT=1;
#     6 apt-get install -y ./flip-node_<v>_<arch>.deb (Depends come from the
#       target's archive); the same version again changes nothing;
#     7 install the kit as /etc/flip/flip.env, root:flip 0640: install(1) creates
#       it 0600 beside the old one and only then sets owner and mode, and a rename
#       puts it in place (never world-readable, never half-written); a kit that
#       is there already gets its owner and mode set again;
#     8 flipctl init (as root);
#     9 flipctl doctor as flip, its report shown: a FAIL stops here, before any
#       unit is enabled;
#    10 systemctl enable --now the units of deploy-on-prem.md step 6 and
#       flip-exec-imaging.timer; flip-fl.timer and flip-serve.socket too when
#       doctor verified an FL kit (its "ok fl-kit" line); they are never
#       disabled. Where systemd is not running (a container, a chroot) the units
#       are enabled for the next boot and nothing is started (said);
#    11 flipctl status as flip, shown.
#   The private directory on the target and the local one are removed on every
#   exit; running it again is safe (nothing changes that is already right).
#   Exit status: 0 done; 1 a step failed (the step is named); 2 a usage error.
#
# POSIX sh; the workstation needs ssh and scp (OpenSSH), the target Debian or
# Ubuntu with systemd.

# The scripts run on the target are single-quoted on purpose (they expand there):
# shellcheck disable=SC2016
# cleanup is reached through the EXIT trap:
# shellcheck disable=SC2317

set -u
umask 077

PROG=provision
STEPS=11
CORE_UNITS="flip-poll.timer flip-exec.path flip-exec.timer flip-report.path flip-report.timer flip-purge.timer flip-exec-imaging.timer"
FL_UNITS="flip-fl.timer flip-serve.socket"

TRUST_HOST=${TRUST_HOST:-}
KIT=${KIT:-}
DEB=${DEB:-}
SSH_USER=${SSH_USER:-root}
SSH_PORT=${SSH_PORT:-22}
SSH_KEY=${SSH_KEY:-}
SSH_CONFIG=${SSH_CONFIG:-}
SSH_KNOWN_HOSTS=${SSH_KNOWN_HOSTS:-}
FORCE_KIT=${FORCE_KIT:-}
APT_UPDATE=${APT_UPDATE:-}
DRY_RUN=${DRY_RUN:-}

step_no=0
step_name="check the settings"
ltmp=""
rtmp=""
connected=""

say() { printf '%s: %s\n' "$PROG" "$*"; }
step() {
	step_no=$((step_no + 1))
	step_name=$1
	printf '%s: [%d/%d] %s\n' "$PROG" "$step_no" "$STEPS" "$1"
}
usage() {
	printf '%s: %s\n' "$PROG" "$*" >&2
	echo "usage: make provision TRUST_HOST=host KIT=file [SSH_USER=user] [SSH_PORT=port] [SSH_KEY=file] [FORCE_KIT=1]" >&2
	exit 2
}
# fail WHY: name the step, say why, stop (cleanup runs from the EXIT trap)
fail() {
	printf '%s: FAILED at step %d/%d (%s): %s\n' "$PROG" "$step_no" "$STEPS" "$step_name" "$*" >&2
	exit 1
}
# indent FILE: show captured output, indented
indent() { sed 's/^/    /' "$1"; }

# shquote S: S as one single-quoted word for a POSIX shell
shquote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# ---------------------------------------------------------------------------
# 1. the settings and the kit, locally

step "check the settings and the kit's mode"
[ -n "$TRUST_HOST" ] || usage "TRUST_HOST is not set"
[ -n "$KIT" ] || usage "KIT is not set (the trust's kit file)"
case $TRUST_HOST in
-* | *[!A-Za-z0-9.:_-]*) usage "TRUST_HOST '$TRUST_HOST' is not a host name or address" ;;
esac
case $SSH_USER in
'' | -* | *[!A-Za-z0-9._-]*) usage "SSH_USER '$SSH_USER' is not a user name" ;;
esac
case $SSH_PORT in
'' | *[!0-9]*) usage "SSH_PORT '$SSH_PORT' is not a port number" ;;
esac
[ -f "$KIT" ] || fail "KIT $KIT is not a file"
[ -r "$KIT" ] || fail "KIT $KIT cannot be read"
# the mode of the file itself (through a symbolic link); GNU stat, then BSD stat
kit_mode=$(stat -L -c '%a' "$KIT" 2>/dev/null || stat -L -f '%Lp' "$KIT" 2>/dev/null) ||
	fail "cannot read the mode of $KIT"
case $kit_mode in
600 | 640) ;;
*) fail "KIT $KIT has mode 0$kit_mode: a kit holds secrets and must be 0600 or 0640 (run: chmod 600 $KIT); nothing was copied" ;;
esac
if [ -n "$SSH_KEY" ] && [ ! -r "$SSH_KEY" ]; then fail "SSH_KEY $SSH_KEY cannot be read"; fi
if [ -n "$SSH_CONFIG" ] && [ ! -r "$SSH_CONFIG" ]; then fail "SSH_CONFIG $SSH_CONFIG cannot be read"; fi
case $SSH_KNOWN_HOSTS in
*[[:space:]]*) fail "SSH_KNOWN_HOSTS must be a path without spaces" ;;
esac
if [ "${1:-}" = "--check" ]; then
	say "settings and kit mode are fine"
	exit 0
fi
[ -n "$DEB" ] || usage "DEB is not set (make provision sets it)"
[ -f "$DEB" ] || fail "no package $DEB (run make deb)"
deb_name=$(basename "$DEB")
case $deb_name in
flip-node_*_*.deb) ;;
*) fail "$deb_name is not a flip-node package file" ;;
esac
case $deb_name in
*[!A-Za-z0-9._+~-]*) fail "unexpected characters in the package name $deb_name" ;;
esac
deb_arch=${deb_name##*_}
deb_arch=${deb_arch%.deb}
for c in ssh scp mktemp; do
	command -v "$c" >/dev/null 2>&1 || fail "$c is not installed on this workstation (openssh-client)"
done

dest="$SSH_USER@$TRUST_HOST"
case $TRUST_HOST in
*:*) scp_dest="$SSH_USER@[$TRUST_HOST]" ;;
*) scp_dest=$dest ;;
esac

# the options every ssh and scp call shares: host-key checking stays on, nothing
# prompts, and all of them go through the one master connection
ctl=""
ssh_opts() {
	_o="-o BatchMode=yes -o StrictHostKeyChecking=yes -o ControlPath=$ctl"
	[ -n "$SSH_KNOWN_HOSTS" ] && _o="$_o -o UserKnownHostsFile=$SSH_KNOWN_HOSTS"
	printf '%s' "$_o"
}
# sshx ARG...: ssh with the shared options (SSH_KEY and SSH_CONFIG may hold spaces)
sshx() {
	if [ -n "$SSH_KEY" ]; then set -- -i "$SSH_KEY" -o IdentitiesOnly=yes "$@"; fi
	if [ -n "$SSH_CONFIG" ]; then set -- -F "$SSH_CONFIG" "$@"; fi
	# shellcheck disable=SC2046 # the options are words without spaces
	ssh $(ssh_opts) -p "$SSH_PORT" "$@"
}
scpx() {
	if [ -n "$SSH_KEY" ]; then set -- -i "$SSH_KEY" -o IdentitiesOnly=yes "$@"; fi
	if [ -n "$SSH_CONFIG" ]; then set -- -F "$SSH_CONFIG" "$@"; fi
	# shellcheck disable=SC2046
	scp -q $(ssh_opts) -P "$SSH_PORT" "$@"
}

# What every remote script starts with: a known PATH, private files, and
# as_root / as_flip, which use sudo -n only when the login is not root.
PRELUDE='set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 077
if [ "$(id -u)" -eq 0 ]; then as_root() { "$@"; }; else as_root() { sudo -n -- "$@"; }; fi
as_flip() { as_root runuser -u flip -- env -i PATH="$PATH" LANG=C.UTF-8 "$@"; }
'

# remote SCRIPT [ARG...]: run SCRIPT (after PRELUDE) with sh on the target, each
# ARG as $1, $2, ... (paths and words, never a secret); stdin is /dev/null
remote() {
	_script=$1
	shift
	_cmd="sh -c $(shquote "$PRELUDE$_script") provision"
	for _a in "$@"; do _cmd="$_cmd $(shquote "$_a")"; done
	if [ "$DRY_RUN" = 1 ]; then
		printf '    would run on %s, with arguments:%s\n' "$dest" "$(for _a in "$@"; do printf ' %s' "$_a"; done)"
		printf '%s\n' "$_script" | sed -e '/^$/d' -e 's/^/        /'
		return 0
	fi
	sshx -n "$dest" "$_cmd"
}

# run_step OUT SCRIPT [ARG...]: remote, its output (stdout and stderr) in OUT
# (with DRY_RUN=1 the script is printed and OUT left empty)
run_step() {
	_out=$1
	shift
	if [ "$DRY_RUN" = 1 ]; then
		: >"$_out"
		remote "$@"
		return 0
	fi
	remote "$@" >"$_out" 2>&1
}

cleanup() {
	_rc=$?
	trap - EXIT INT TERM HUP PIPE
	if [ -n "$connected" ]; then
		if [ -n "$rtmp" ] && ! remote 'rm -rf "$1"' "$rtmp" >/dev/null 2>&1; then
			say "could not remove $rtmp on $TRUST_HOST: remove it by hand (it holds a copy of the kit)" >&2
			[ "$_rc" -ne 0 ] || _rc=1
		fi
		sshx -O exit "$dest" >/dev/null 2>&1
	fi
	[ -z "$ltmp" ] || rm -rf "$ltmp"
	exit "$_rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# the local private directory: the master connection's socket, the steps' output
ltmp=$(mktemp -d "${TMPDIR:-/tmp}/flip-provision.XXXXXXXX") || { ltmp=""; fail "cannot make a temporary directory"; }
case $ltmp in
*[[:space:]]*) fail "the temporary directory $ltmp has a space in its path: set TMPDIR" ;;
esac
ctl="$ltmp/ctl"

if [ "$DRY_RUN" = 1 ]; then
	say "DRY_RUN=1: printing what would run on $dest; nothing connects"
fi

# ---------------------------------------------------------------------------
# 2. connect

step "connect to $dest port $SSH_PORT (host key checked, one shared connection)"
if [ "$DRY_RUN" = 1 ]; then
	printf '    would run: ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ControlMaster=yes -o ControlPersist=120 -f -N -p %s %s\n' "$SSH_PORT" "$dest"
else
	# the master goes to the background once authenticated, and ends by itself
	# 120 s after its last session if this script is killed before cleanup
	if ! sshx -o ControlMaster=yes -o ControlPersist=120 -o ConnectTimeout=20 -f -N "$dest" \
		</dev/null 2>"$ltmp/connect"; then
		indent "$ltmp/connect" >&2
		if grep -qi -e 'host key verification failed' -e 'no .* host key is known' \
			-e 'identification has changed' "$ltmp/connect"; then
			fail "the host key of $TRUST_HOST is not in your known_hosts, or it has changed. Host-key checking stays on and this script never accepts a key by itself: get the key's fingerprint from the trust's IT, compare it with \`ssh-keyscan -p $SSH_PORT $TRUST_HOST | ssh-keygen -lf -\`, and add the line to ~/.ssh/known_hosts${SSH_KNOWN_HOSTS:+ (here: $SSH_KNOWN_HOSTS)} yourself"
		fi
		if grep -qi 'permission denied' "$ltmp/connect"; then
			fail "$TRUST_HOST refused the login as $SSH_USER: check SSH_USER and SSH_KEY (the key must be in that user's authorized_keys; BatchMode cannot ask for a passphrase or password: use ssh-agent)"
		fi
		fail "cannot connect to $dest on port $SSH_PORT (what ssh said is above)"
	fi
	connected=1
fi

# ---------------------------------------------------------------------------
# 3. the target

step "check the target: root or sudo, apt-get, architecture; make a private directory"
run_step "$ltmp/check" '
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "need: $(id -un) is not root and sudo is not installed"; exit 3; }
	sudo -n true 2>/dev/null || { echo "need: $(id -un) cannot run sudo without a password"; exit 3; }
fi
for c in apt-get dpkg dpkg-query runuser install cmp mktemp; do
	command -v "$c" >/dev/null 2>&1 || { echo "need: $c is not installed (is this Debian or Ubuntu?)"; exit 3; }
done
a=$(dpkg --print-architecture)
[ "$a" = "$1" ] || { echo "need: this host is $a, the package is for $1"; exit 3; }
d=$(mktemp -d /tmp/flip-provision.XXXXXXXX)
echo "tmp $d"' "$deb_arch"
rc=$?
if [ "$DRY_RUN" = 1 ]; then
	rtmp=/tmp/flip-provision.XXXXXXXX
elif [ $rc -ne 0 ]; then
	need=$(sed -n 's/^need: //p' "$ltmp/check")
	if [ -n "$need" ]; then
		case $need in
		*sudo*) fail "$need on $TRUST_HOST: log in as root (SSH_USER=root) or give $SSH_USER a NOPASSWD sudo rule; nothing can prompt for a password here" ;;
		*) fail "$need" ;;
		esac
	fi
	indent "$ltmp/check" >&2
	fail "the checks on $TRUST_HOST did not run (its output is above)"
else
	rtmp=$(sed -n 's/^tmp //p' "$ltmp/check" | tail -n 1)
	case $rtmp in
	/tmp/flip-provision.*) ;;
	*) indent "$ltmp/check" >&2; rtmp=""; fail "the target did not name its temporary directory" ;;
	esac
	case $rtmp in
	*[!A-Za-z0-9./_-]*) rtmp=""; fail "unexpected temporary directory name on the target" ;;
	esac
fi

# ---------------------------------------------------------------------------
# 4. copy

step "copy $deb_name and the kit to $rtmp on $TRUST_HOST (mode 0700)"
if [ "$DRY_RUN" = 1 ]; then
	printf '    would run: scp %s %s:%s/\n    would run: scp KIT %s:%s/kit\n' "$DEB" "$scp_dest" "$rtmp" "$scp_dest" "$rtmp"
else
	scpx "$DEB" "$scp_dest:$rtmp/$deb_name" 2>"$ltmp/scp" || { indent "$ltmp/scp" >&2; fail "scp of the package failed"; }
	scpx "$KIT" "$scp_dest:$rtmp/kit" 2>"$ltmp/scp" || { indent "$ltmp/scp" >&2; fail "scp of the kit failed"; }
	run_step "$ltmp/chmod" 'chmod 0600 "$1/kit"' "$rtmp" || { indent "$ltmp/chmod" >&2; fail "cannot chmod the copy of the kit"; }
fi

# ---------------------------------------------------------------------------
# 5. an existing kit on the target

step "compare the kit with /etc/flip/flip.env on $TRUST_HOST"
COMPARE='
if as_root test -e /etc/flip/flip.env; then
	if as_root cmp -s "$1/kit" /etc/flip/flip.env; then echo "kit same"; else echo "kit differs"; fi
else
	echo "kit absent"
fi'
run_step "$ltmp/compare" "$COMPARE" "$rtmp" || { indent "$ltmp/compare" >&2; fail "cannot compare the kits"; }
kit_state=$(sed -n 's/^kit //p' "$ltmp/compare" | tail -n 1)
[ "$DRY_RUN" = 1 ] && kit_state=absent
case $kit_state in
absent) say "no /etc/flip/flip.env there yet: the kit will be installed" ;;
same) say "/etc/flip/flip.env there is this kit already" ;;
differs)
	if [ "$FORCE_KIT" = 1 ]; then
		say "/etc/flip/flip.env there differs from KIT: FORCE_KIT=1, so it will be replaced (the old one kept as /etc/flip/flip.env.previous, 0600)"
	else
		fail "/etc/flip/flip.env on $TRUST_HOST differs from $KIT: not replaced, and nothing was installed. Run again with FORCE_KIT=1 to replace it (the old one is kept as /etc/flip/flip.env.previous)"
	fi
	;;
*) indent "$ltmp/compare" >&2; fail "cannot tell whether the target has a kit" ;;
esac

# ---------------------------------------------------------------------------
# 6. the package

step "install the package: apt-get install -y ./$deb_name${APT_UPDATE:+ (after apt-get update)}"
APT_SCRIPT='
cd "$1"
if [ "$3" = 1 ]; then as_root env DEBIAN_FRONTEND=noninteractive apt-get -q update </dev/null; fi
as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install "./$2" </dev/null
echo "version $(dpkg-query -W -f="\${Version}" flip-node)"'
if ! run_step "$ltmp/apt" "$APT_SCRIPT" "$rtmp" "$deb_name" "$APT_UPDATE"; then
	tail -n 30 "$ltmp/apt" | sed 's/^/    /' >&2
	fail "apt-get could not install $deb_name (the end of its output is above; if a dependency was not found, run again with APT_UPDATE=1)"
fi
if [ "$DRY_RUN" != 1 ]; then
	version=$(sed -n 's/^version //p' "$ltmp/apt" | tail -n 1)
	if grep -q 'flip-node is already the newest version' "$ltmp/apt"; then
		say "flip-node $version was installed already: unchanged"
	else
		say "flip-node $version is installed"
	fi
fi

# ---------------------------------------------------------------------------
# 7. the kit

step "install the kit as /etc/flip/flip.env (root:flip 0640)"
KIT_SCRIPT='
k=/etc/flip/flip.env
getent group flip >/dev/null || { echo "need: there is no group flip (the package makes it)"; exit 3; }
if as_root test -e "$k"; then
	if as_root cmp -s "$1/kit" "$k"; then state=same; else state=differs; fi
else
	state=absent
fi
if [ "$state" = differs ] && [ "$2" != 1 ]; then echo "need: $k changed since step 5; not replaced"; exit 3; fi
if [ "$state" = differs ]; then as_root install -m 0600 -o root -g root "$k" "$k.previous"; fi
if [ "$state" != same ]; then
	as_root install -d -m 0755 -o root -g root /etc/flip
	# install creates the file 0600, then sets its owner and mode; the rename
	# replaces the old one in one step
	as_root install -m 0640 -o root -g flip "$1/kit" /etc/flip/.flip.env.new
	as_root mv -f /etc/flip/.flip.env.new "$k"
fi
as_root chown root:flip "$k"
as_root chmod 0640 "$k"
echo "kit $state"'
if ! run_step "$ltmp/kit" "$KIT_SCRIPT" "$rtmp" "$FORCE_KIT"; then
	need=$(sed -n 's/^need: //p' "$ltmp/kit")
	[ -n "$need" ] && fail "$need"
	indent "$ltmp/kit" >&2
	fail "cannot install the kit"
fi
case $(sed -n 's/^kit //p' "$ltmp/kit" | tail -n 1) in
same) say "unchanged (owner and mode checked)" ;;
differs) say "replaced; the old one is /etc/flip/flip.env.previous" ;;
absent) say "installed" ;;
esac

# ---------------------------------------------------------------------------
# 8. the directories

step "create the directories: flipctl init"
run_step "$ltmp/init" 'as_root env -i PATH="$PATH" LANG=C.UTF-8 flipctl init </dev/null' ||
	{ indent "$ltmp/init" >&2; fail "flipctl init failed (its output is above)"; }

# ---------------------------------------------------------------------------
# 9. doctor

step "check the set-up: flipctl doctor, as flip"
run_step "$ltmp/doctor" 'as_flip flipctl doctor </dev/null'
rc=$?
indent "$ltmp/doctor"
if [ $rc -ne 0 ]; then
	fail "flipctl doctor found a problem (its FAIL lines are above; \"--\" lines are only parts not configured): fix the kit or the host, then run make provision again; nothing was enabled or started by this run"
fi
fl=""
grep -q '^ok[[:space:]]\{1,\}fl-kit[[:space:]]' "$ltmp/doctor" && fl=1

# ---------------------------------------------------------------------------
# 10. the units

units=$CORE_UNITS
[ -n "$fl" ] && units="$units $FL_UNITS"
step "enable and start: $units"
ENABLE_SCRIPT='
command -v systemctl >/dev/null 2>&1 || { echo "need: there is no systemctl on this host: use cron instead (/etc/flip/flip.cron.example)"; exit 3; }
if [ -d /run/systemd/system ]; then
	as_root systemctl daemon-reload
	as_root systemctl enable --now "$@"
	echo "systemd running"
else
	as_root systemctl enable "$@"
	echo "systemd offline"
fi
for u in "$@"; do
	s=$(as_root systemctl is-enabled "$u" 2>/dev/null || true)
	[ "$s" = enabled ] || { echo "need: $u is $s, not enabled"; exit 3; }
done'
# shellcheck disable=SC2086 # the unit names are words
if ! run_step "$ltmp/enable" "$ENABLE_SCRIPT" $units; then
	need=$(sed -n 's/^need: //p' "$ltmp/enable")
	indent "$ltmp/enable" >&2
	fail "${need:-systemctl failed (its output is above)}"
fi
if grep -q '^systemd offline' "$ltmp/enable"; then
	say "systemd is not running on $TRUST_HOST: the units are enabled for its next boot and nothing was started"
fi
if [ -z "$fl" ]; then
	say "no verified FL kit (doctor's fl-kit line): $FL_UNITS left as they are; after flip-fl install-kit, run make provision again"
fi

# ---------------------------------------------------------------------------
# 11. status

step "status: flipctl status, as flip"
run_step "$ltmp/status" 'as_flip flipctl status </dev/null'
rc=$?
indent "$ltmp/status"
[ $rc -eq 0 ] || fail "flipctl status failed (its output is above)"

if [ "$DRY_RUN" = 1 ]; then
	say "DRY_RUN=1: nothing was done"
else
	say "done: flip-node on $TRUST_HOST is installed, checked and enabled"
fi
exit 0
