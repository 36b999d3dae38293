package sqlapi

import (
	"fmt"
	"net/http"
	"strings"
)

// The permissions of rqlite's credentials file (its auth package), by
// rqlite's names, so that an rqlite credentials file means the same here.
const (
	PermAll          = "all"            // every permission
	PermExecute      = "execute"        // writes
	PermQuery        = "query"          // reads
	PermLoad         = "load"           // replace the database (/db/load, /boot)
	PermBackup       = "backup"         // download the database
	PermStatus       = "status"         // diagnostics: /status, /nodes, /debug/*, /metrics
	PermReady        = "ready"          // /readyz
	PermJoin         = "join"           // join as a voter; here also promote a learner
	PermJoinReadOnly = "join-read-only" // join as a non-voter
	PermRemove       = "remove"         // remove members
	PermSnapshot     = "snapshot"       // take a Raft snapshot now
	PermLeaderOps    = "leader-ops"     // leadership transfer
)

// knownPerms are the permission names rqlite defines (its newer "ui" and
// "cdc-hwm-update" included, which guard nothing here): a name outside
// them in a credentials file is most likely a typo, and is reported.
var knownPerms = map[string]bool{
	PermAll: true, PermExecute: true, PermQuery: true, PermLoad: true, PermBackup: true,
	PermStatus: true, PermReady: true, PermJoin: true, PermJoinReadOnly: true,
	PermRemove: true, PermSnapshot: true, PermLeaderOps: true,
	"ui": true, "cdc-hwm-update": true,
}

// access is what a request needs: one of perms, or every one with all;
// nothing when public.
type access struct {
	perms  []string
	all    bool
	public bool
}

func anyOf(perms ...string) access { return access{perms: perms} }
func allOf(perms ...string) access { return access{perms: perms, all: true} }

// noPermission is the access of what anyone may fetch: the web console's
// static files, which hold no data.
var noPermission = access{public: true}

func (a access) String() string {
	if a.public {
		return "none"
	}
	sep := " or "
	if a.all {
		sep = " and "
	}
	return strings.Join(a.perms, sep)
}

// accessRule says what a request to path with one of methods needs.
type accessRule struct {
	path    string
	methods []string
	need    access
}

// endpointAccess is the one table of the permission each endpoint needs,
// by method (HEAD needs what GET needs). Server.New refuses to build a
// route without a row for each of its methods, so a new endpoint is added
// here first, and TestEveryEndpointPermission tests every row. docs/API.md
// shows this table (a test keeps them equal).
//
// The names and choices are rqlite's (its http/service.go) where rqlite
// has the endpoint: /db/request needs both execute and query, /boot needs
// load, /nodes and the diagnostics need status. The others are raftlite's
// choices: /db/checksum reads with status but proposes a log entry
// (POST) only with execute, as every other log append; GET /leader is a
// diagnostic (status) and POST /leader transfers leadership (rqlite's
// leader-ops); /reap removes members (remove); /promote gives a learner
// a vote, which is what join grants over join-read-only; /db/watch reads
// (query), POST /db/compact, which trims its history through the log,
// needs execute; /console (the web console's files) needs none, as every call
// the console makes needs its own. join and join-read-only guard no HTTP
// endpoint: raftlite's joins travel the Raft port.
var endpointAccess = []accessRule{
	{"/db/execute", []string{http.MethodPost}, anyOf(PermExecute)},
	{"/db/query", []string{http.MethodGet, http.MethodPost}, anyOf(PermQuery)},
	{"/db/request", []string{http.MethodPost}, allOf(PermExecute, PermQuery)},
	{"/db/backup", []string{http.MethodGet}, anyOf(PermBackup)},
	{"/db/load", []string{http.MethodPost}, anyOf(PermLoad)},
	{"/db/checksum", []string{http.MethodGet}, anyOf(PermStatus)},
	{"/db/checksum", []string{http.MethodPost}, anyOf(PermExecute)},
	{"/db/watch", []string{http.MethodGet}, anyOf(PermQuery)},
	{"/db/compact", []string{http.MethodPost}, anyOf(PermExecute)},
	{"/boot", []string{http.MethodPost}, anyOf(PermLoad)},
	{"/snapshot", []string{http.MethodPost}, anyOf(PermSnapshot)},
	{"/reap", []string{http.MethodPost}, anyOf(PermRemove)},
	{"/promote", []string{http.MethodPost}, anyOf(PermJoin)},
	{"/remove", []string{http.MethodDelete}, anyOf(PermRemove)},
	{"/status", []string{http.MethodGet}, anyOf(PermStatus)},
	{"/nodes", []string{http.MethodGet}, anyOf(PermStatus)},
	{"/leader", []string{http.MethodGet}, anyOf(PermStatus)},
	{"/leader", []string{http.MethodPost}, anyOf(PermLeaderOps)},
	{"/readyz", []string{http.MethodGet}, anyOf(PermReady)},
	{"/debug/vars", []string{http.MethodGet}, anyOf(PermStatus)},
	{pprofPrefix, []string{http.MethodGet}, anyOf(PermStatus)},
	{"/metrics", []string{http.MethodGet}, anyOf(PermStatus)},
	{consolePath, []string{http.MethodGet}, noPermission},
}

// accessFor returns what a request to the route at path with method
// needs; ok is false when the table has no row for it.
func accessFor(path, method string) (need access, ok bool) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	for _, r := range endpointAccess {
		if r.path != path {
			continue
		}
		for _, m := range r.methods {
			if m == method {
				return r.need, true
			}
		}
	}
	return access{}, false
}

// routeAccess returns the access of each method of a route, failing for a
// method without a row in endpointAccess: an endpoint nobody has decided
// the permission of must not be served.
func routeAccess(path string, methods []string) (map[string]access, error) {
	out := make(map[string]access, len(methods))
	for _, m := range methods {
		need, ok := accessFor(path, m)
		if !ok {
			return nil, fmt.Errorf("%s %s has no row in endpointAccess", m, path)
		}
		out[m] = need
	}
	return out, nil
}

// accessTable renders endpointAccess as the Markdown table of docs/API.md.
func accessTable() string {
	var b strings.Builder
	b.WriteString("| path | method | permission |\n|---|---|---|\n")
	for _, r := range endpointAccess {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.path, strings.Join(r.methods, ", "), r.need)
	}
	return b.String()
}
