// Package shell is raftlite's interactive SQL shell, "raftlite shell".
//
// It talks to a cluster only through the Go client (package client), so
// every write it sends runs in the client's exactly-once session, and it
// fails over between the nodes given with -H, saying so when the node that
// answers changes.
//
// Input is cut into statements at ';' (internal/sqlsplit), respecting
// quotes, comments and the BEGIN ... END bodies of triggers; statements may
// span lines, and a line may hold several, which go as one request
// (exec.go). Plain reads alone (SELECT, VALUES, WITH ... SELECT, PRAGMA
// name) go to /db/query at the session's consistency level; everything
// else goes to /db/request, where the server runs writes through the Raft
// log and reads at the level (route.go). BEGIN ... COMMIT is kept by the
// shell, which holds the statements and sends them at COMMIT as one
// ?transaction request (tx.go). Lines that start with a dot are the
// shell's own commands (dot.go), whose arguments follow shell quoting
// rules (args.go).
//
// With a terminal on stdin and stdout the shell is interactive: line
// editing and history that keeps multi-line entries intact
// (github.com/peterh/liner, interactive.go), Tab completion of keywords,
// tables and columns (complete.go), a pager for long results (pager.go), a
// banner, row counts, and errors that do not end the session. Otherwise it
// runs its script (standard input or -c), prints nothing but results, and
// exits with status 1 after the first line with an error.
package shell
