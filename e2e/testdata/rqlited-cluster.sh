#!/bin/sh
# Starts a three-node rqlite cluster on one host, as a deployment script
# written for rqlited v10 does, with the flags of `rqlited -h` that such a
# script sets. TestRqlitedScript runs it with RQLITED="raftlite serve";
# unchanged otherwise, it runs rqlited.
#
# Environment: RQLITED (the command, default rqlited), DATA (the data root),
# HOST, and the ports HTTP1 RAFT1 HTTP2 RAFT2 HTTP3 RAFT3. Each node's log is
# $DATA/<node>.log; the PIDs of the started nodes are appended to
# $DATA/pids.
set -eu

RQLITED=${RQLITED:-rqlited}
DATA=${DATA:-/var/lib/rqlite}
HOST=${HOST:-127.0.0.1}
JOIN="$HOST:$RAFT1,$HOST:$RAFT2,$HOST:$RAFT3"

mkdir -p "$DATA"

start_node() {
	id=$1
	http=$2
	raft=$3
	# $RQLITED is split into words on purpose: it may be "raftlite serve".
	# shellcheck disable=SC2086
	$RQLITED \
		-node-id "$id" \
		-http-addr "$HOST:$http" -http-adv-addr "$HOST:$http" \
		-raft-addr "$HOST:$raft" -raft-adv-addr "$HOST:$raft" \
		-http-allow-origin '*' \
		-bootstrap-expect 3 -bootstrap-expect-timeout 120s \
		-join "$JOIN" -join-attempts 10 -join-interval 1s \
		-raft-log-level WARN \
		-raft-snap 4096 -raft-snap-int 5s -raft-snap-wal-size 8388608 \
		-raft-heartbeat-timeout 1s -raft-election-timeout 1s \
		-raft-leader-lease-timeout 500ms -raft-commit-timeout 50ms -raft-apply-timeout 10s \
		-raft-remove-shutdown=false \
		-raft-reap-node-timeout 48h -raft-reap-read-only-node-timeout 30m \
		-raft-cluster-remove-shutdown=false -raft-shutdown-stepdown \
		-fk -auto-vacuum-int 24h \
		-cluster-connect-timeout 30s -compress-snap-transport \
		-write-queue-capacity 2048 -write-queue-batch-size 64 -write-queue-timeout 20ms -write-queue-tx \
		-db-max-ro-conns 64 -auto-optimize-int 24h \
		-on-disk-path "$DATA/$id-sqlite/db.sqlite" \
		"$DATA/$id" >"$DATA/$id.log" 2>&1 &
	echo $! >>"$DATA/pids"
}

start_node node1 "$HTTP1" "$RAFT1"
start_node node2 "$HTTP2" "$RAFT2"
start_node node3 "$HTTP3" "$RAFT3"
