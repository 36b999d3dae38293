// Package httpx owns how raftlite builds HTTP clients: the one place that
// sets dial and handshake timeouts, TCP keep-alive, the idle connection pool
// and (from issue 16) TLS for every HTTP request raftlite sends, whether
// node to node (sqlapi forwarding and probing, the cluster service calls)
// or tool to node (the Go client in client/ and the shell on top of it,
// backup and restore, bench, selftest).
//
// Callers describe what differs for them in Options (pool sizes, a dialer
// that writes a mux header, a response-header deadline); everything else is
// shared. Request building, retries and error decoding are not here: those
// belong to client/ (our API) and to the callers' own protocols.
package httpx
