#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# hostile.sh - training code that tries what it must not (tests/integration/test_training_code.py).
#
# Run by flip-fl as the FL client (FL_CLIENT_COMMAND), it tries to read the node's
# secrets and to change the project store through its image copy, and to do the few
# things it may (read its copy, write uploads and transfer/), printing one line per
# attempt: "hostile: ALLOWED <what>" or "hostile: DENIED <what>". Then it prints the
# names (never the values) of its environment, its uid and gid, "hostile: done", and
# waits until it is signalled.
#   hostile.sh KIT_FILE STATE_DIR SPOOL_DIR LOG_DIR IMAGE_COPY UPLOAD_DIR TRANSFER_DIR
kitfile=$1 state=$2 spool=$3 logdir=$4 copy=$5 upload=$6 transfer=$7
try() {
	what=$1
	shift
	if "$@" >/dev/null 2>&1; then
		echo "hostile: ALLOWED $what"
	else
		echo "hostile: DENIED $what"
	fi
}
try read-kit-file cat "$kitfile"
try list-state-dir ls "$state"
try read-deid-key cat "$state/deid.key"
try list-project-store ls "$state/imaging"
try list-spool ls "$spool"
try list-log-dir ls "$logdir"
try read-audit-trail cat "$logdir/audit.log"
try write-image-copy sh -c "printf EVIL >> '$copy'"
try chmod-image-copy chmod u+w "$copy"
try replace-image-copy sh -c "rm '$copy' && printf EVIL > '$copy'"
try read-image-copy cat "$copy"
try write-upload sh -c "printf seg > '$upload/seg.nii.gz'"
try write-transfer sh -c "printf x > '$transfer/hostile.txt'"
echo "hostile: env $(env | cut -d= -f1 | sort | tr '\n' ' ')"
echo "hostile: uid $(id -u) gid $(id -g)"
echo "hostile: done"
trap 'exit 0' TERM
while :; do
	sleep 0.2 &
	wait $!
done
