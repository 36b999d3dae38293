package sqlapi

import (
	"net/http"
	"strings"

	"github.com/raftlite/raftlite/api"
)

// consolePath is where Config.Console is served (package console's Path:
// this package does not import it, see doc.go).
const consolePath = "/console"

func isConsolePath(path string) bool {
	return path == consolePath || strings.HasPrefix(path, consolePath+"/")
}

// serveConsole serves the web console's files, or 404 without one.
func serveConsole(cfg Config, w http.ResponseWriter, r *http.Request) {
	if cfg.Console == nil {
		writeError(w, api.ErrNotFound, "this node serves no web console")
		return
	}
	cfg.Console.ServeHTTP(w, r)
}

// redirectRoot answers "/": a browser asking for a page (Accept:
// text/html) goes to the web console when there is one, anything else
// (curl, rqlite's clients) to /status as before.
func redirectRoot(cfg Config, w http.ResponseWriter, r *http.Request) {
	target := "/status"
	if cfg.Console != nil && strings.Contains(r.Header.Get("Accept"), "text/html") {
		target = consolePath + "/"
	}
	http.Redirect(w, r, target, http.StatusFound)
}
