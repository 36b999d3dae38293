// Package selftest is raftlite's own linearizability campaign: the code
// behind "raftlite selftest". It owns everything between "start a cluster"
// and "this history is (not) linearizable":
//
//   - a cluster of real raftlite processes (the running binary's own "serve"
//     subcommand) on random loopback ports in a scratch directory, each with a
//     fault-injecting TCP proxy in front of its Raft port (every node
//     advertises its proxy, so all node-to-node traffic, Raft and the cluster
//     service alike, passes through the proxies);
//   - the workload: writers that update a small key-value table through any
//     node with exactly-once sessions (a retry keeps its client_id and seq, so
//     an ambiguous failure is retried until its outcome is known), and readers
//     that read one key on one node and, the moment that read returns, the
//     same key on another node: the pattern that exposes a follower serving
//     a state older than one another node already showed;
//   - the nemesis: kill -9 and restart, SIGSTOP/SIGCONT of the leader,
//     partitions (the proxies blackhole every link of one node), leadership
//     transfer, and snapshots (a low snapshot threshold on every node);
//   - the checks: porcupine with a per-key register model whose state counts
//     the writes applied to the key (a write applied twice cannot be
//     linearized), the HTML visualisation, and a final count of every key's
//     applications against the acknowledged writes (duplicates, lost writes)
//     and a comparison of the replicas.
//
// Outcomes the clients could not learn (timeouts, unknown_outcome, a lost
// connection) are recorded as such: the write may take effect at any time
// after its call, or never (porcupine: its return is the end of the
// history). They are never counted as successes or failures.
//
// Why a proxy and not network namespaces: it needs neither root nor iproute2.
// A proxy sees only the connections made to its node, so it tells which node
// opened each one by looking up the owner of the connecting socket in /proc
// (Linux); elsewhere the partition fault is unavailable and is skipped.
package selftest
