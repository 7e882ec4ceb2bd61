#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# fakeclient.sh - a stand-in for the NVFLARE client in flip-fl's tests.
#
# Prints the lines flip-fl's status looks for in the client's log (a job
# received, rounds started and finished), says whether any of the node's secrets
# reached its environment, then waits until it is signalled. Knobs, from the
# environment flip-fl passes on:
#   FAKE_JOB=ID          the job id it claims to have received
#   FAKE_EXIT=N          exit with status N after printing, instead of waiting
#   FAKE_IGNORE_TERM=1   ignore SIGTERM (flip-fl stop must use SIGKILL)
job=${FAKE_JOB:-3f2c9a7e-0b1d-4c8e-9f00-1234567890ab}
echo "$(date '+%F %T') - ClientRunner - INFO - Received new job $job"
echo "$(date '+%F %T') - ClientRunner - INFO - Round 0 started."
echo "$(date '+%F %T') - ClientRunner - INFO - Round 0 finished."
echo "$(date '+%F %T') - ClientRunner - INFO - Round 1 started."
echo "fakeclient: pid $$ cwd $(pwd)"
echo "fakeclient: secrets in environment: ${TRUST_API_KEY:+TRUST_API_KEY }${AES_KEY_BASE64:+AES_KEY_BASE64 }${DATA_ACCESS_POSTGRES_PASSWORD:+DATA_ACCESS_POSTGRES_PASSWORD }end"
if [ -n "$FAKE_EXIT" ]; then
	exit "$FAKE_EXIT"
fi
if [ -n "$FAKE_IGNORE_TERM" ]; then
	trap '' TERM
else
	trap 'echo "fakeclient: SIGTERM, leaving"; exit 0' TERM
fi
# sleep in the background and wait for it, so that a trap runs at once
while :; do
	sleep 0.2 &
	wait $!
done
