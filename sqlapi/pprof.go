package sqlapi

import (
	"net/http"
	"net/http/pprof"
	"strings"
)

// pprofPrefix is where Go's runtime profiles are served, as in rqlite:
// `go tool pprof http://host:4001/debug/pprof/profile?seconds=10`. The
// profiles need the status permission when auth is on.
const pprofPrefix = "/debug/pprof"

// handlePprof serves net/http/pprof's handlers. They parse their own
// parameters (seconds, debug, gc), so p is not used.
func handlePprof(w http.ResponseWriter, r *http.Request, _ *params) {
	switch strings.TrimPrefix(r.URL.Path, pprofPrefix+"/") {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r)
	}
}
