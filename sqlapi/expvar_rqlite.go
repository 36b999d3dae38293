package sqlapi

import (
	"strings"
)

// rqlite's /debug/vars objects "http", "store" and "cluster" hold counters
// that its own system tests, its CLI's .expvar and dashboards built for it
// read by name. raftlite serves the same names, each backed by the
// raftlite metric that counts the same event; a name whose event does not
// exist in raftlite (rqlite's incremental snapshots, its inter-node
// protobuf client, auto-restore from cloud storage, ...) is served as 0 so
// that readers find it. API.md, "/debug/vars", lists which is which.

// source computes one rqlite counter from series (see series()); nil means
// the event does not exist in raftlite and the counter is always 0.
type source func(series map[string]float64) float64

// one is a single series.
func one(name string) source {
	return func(s map[string]float64) float64 { return s[name] }
}

// sum adds sources.
func sum(srcs ...source) source {
	return func(s map[string]float64) float64 {
		var t float64
		for _, src := range srcs {
			t += src(s)
		}
		return t
	}
}

// requests counts the HTTP requests of an endpoint, by status code when
// codes are given, else all of them.
func requests(ep endpoint, codes ...string) source {
	return func(s map[string]float64) float64 {
		const prefix = "raftlite_http_requests_total."
		suffix := "." + ep.String()
		var t float64
		for k, v := range s {
			if !strings.HasPrefix(k, prefix) || !strings.HasSuffix(k, suffix) {
				continue
			}
			code := strings.TrimSuffix(strings.TrimPrefix(k, prefix), suffix)
			if len(codes) == 0 || contains(codes, code) {
				t += v
			}
		}
		return t
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// statements counts the SQL statements received on an endpoint.
func statements(ep endpoint) source { return one("raftlite_http_statements_total." + ep.String()) }

// forwarded counts the requests of an endpoint forwarded to the leader.
func forwarded(ep endpoint) source { return one("raftlite_http_forwarded_total." + ep.String()) }

// rqliteCounters are the counters of each rqlite /debug/vars object, by
// name (names from rqlite's http/service.go, store/store.go and
// cluster/service.go).
var rqliteCounters = map[string]map[string]source{
	"http": {
		"executions":                        requests(epExecute),
		"execute_stmts_rx":                  statements(epExecute),
		"queries":                           requests(epQuery),
		"query_stmts_rx":                    statements(epQuery),
		"requests":                          requests(epRequest),
		"request_stmts_rx":                  statements(epRequest),
		"backups":                           requests(epBackup),
		"loads":                             requests(epLoad),
		"num_status":                        requests(epStatus),
		"num_readyz":                        requests(epReadyz),
		"leader_not_found":                  one("raftlite_http_leader_not_found_total"),
		"authFail":                          one("raftlite_http_auth_failures_total"),
		"queued_executions":                 one("raftlite_queue_requests_total"),
		"queued_executions_ok":              one("raftlite_queue_batches_total"),
		"queued_executions_num_stmts_rx":    one("raftlite_queue_statements_total"),
		"queued_executions_num_stmts_tx":    one("raftlite_queue_statements_total"),
		"queued_executions_failed":          one("raftlite_queue_attempt_failures_total"),
		"remote_executions":                 forwarded(epExecute),
		"remote_queries":                    forwarded(epQuery),
		"remote_requests":                   forwarded(epRequest),
		"remote_backups":                    forwarded(epBackup),
		"remote_loads":                      forwarded(epLoad),
		"remote_remove_node":                forwarded(epRemove),
		"remote_executions_failed":          nil, // forward errors are not counted by endpoint
		"remote_queries_failed":             nil,
		"remote_requests_failed":            nil,
		"queued_executions_no_leader":       nil, // the queue retries; failures are queued_executions_failed
		"queued_executions_not_leader":      nil,
		"queued_executions_leadership_lost": nil,
		"queued_executions_unknown_error":   nil,
		"queued_executions_wait":            nil,
		"loads_aborted":                     nil,
		"boot":                              nil,
		"authOK":                            nil, // successes are not counted apart from requests
	},
	"store": {
		"num_snapshots":                      one("raftlite_fsm_snapshot_seconds_count"),
		"num_restores":                       one("raftlite_fsm_snapshot_restore_seconds_count"),
		"num_backups":                        requests(epBackup, "200"),
		"num_loads":                          requests(epLoad, "200"),
		"num_joins":                          one("raftlite_cluster_joins_total"),
		"leader_changes_observed":            one("raftlite_raft_leader_changes_total"),
		"num_wal_snapshots":                  one("raftlite_raft_snapshots_by_log_size_total"),
		"num_snapshots_failed":               nil, // raft logs a failed snapshot and retries; not counted
		"num_restores_failed":                nil,
		"num_user_snapshots":                 nil, // no user-triggered snapshot endpoint counts here
		"num_user_snapshots_failed":          nil,
		"num_wal_snapshots_failed":           nil,
		"num_snapshots_full":                 one("raftlite_fsm_snapshot_seconds_count"), // every raftlite snapshot is full
		"num_snapshots_incremental":          nil,                                        // rqlite's WAL-only snapshots do not exist here
		"num_full_checkpoint_failed":         nil,
		"num_wal_checkpoint_truncate_failed": nil,
		"num_auto_vacuums":                   nil,
		"num_auto_vacuums_failed":            nil,
		"num_boots":                          nil,
		"num_auto_restores":                  nil, // no auto-restore from cloud storage
		"num_auto_restores_skipped":          nil,
		"num_auto_restores_failed":           nil,
		"num_recoveries":                     nil, // no peers.json recovery
		"num_provider_checks":                nil, // no auto-backup provider
		"num_provider_provides":              nil,
		"num_provider_provides_fail":         nil,
		"num_uncompressed_commands":          nil,
		"num_compressed_commands":            nil,
		"num_ignored_joins":                  nil,
		"num_removed_before_joins":           nil,
		"num_db_stats_errors":                nil,
		"leader_changes_dropped":             nil,
		"failed_heartbeat_observed":          nil,
		"nodes_reaped_ok":                    nil,
		"nodes_reaped_failed":                nil,
	},
	"cluster": {
		"num_join_req":               sum(one("raftlite_cluster_joins_total"), one("raftlite_cluster_joins_forwarded_total")),
		"num_notify_req":             one("raftlite_cluster_bootstrap_notifies_total"),
		"num_remove_node_req":        one("raftlite_cluster_removes_total"),
		"num_get_node_api":           nil, // API addresses travel in the Raft configuration, not by RPC
		"num_get_node_api_req":       nil,
		"num_get_node_api_req_local": nil,
		"num_execute_req":            nil, // followers forward over HTTP: see http.remote_*
		"num_query_req":              nil,
		"num_request_req":            nil,
		"num_backup_req":             nil,
		"num_load_req":               nil,
		"num_client_retries":         nil, // no inter-node protobuf client
		"num_client_load_retries":    nil,
		"num_client_execute_retries": nil,
		"num_client_request_retries": nil,
		"num_client_force_new_conn":  nil,
	},
}

// rqliteVars builds one /debug/vars object: rqlite's counters of group,
// and for "http" also every raftlite counter under its Prometheus name.
func rqliteVars(group string, series map[string]float64) map[string]float64 {
	out := map[string]float64{}
	if group == "http" {
		for k, v := range series {
			if !strings.HasSuffix(k, "_count") {
				out[k] = v
			}
		}
	}
	for name, src := range rqliteCounters[group] {
		if src != nil {
			out[name] = src(series)
		} else {
			out[name] = 0
		}
	}
	return out
}
