// Package console is raftlite's web console: a SQL editor, the cluster's
// members, a live view of a table through the change feed (/db/watch) and
// backup and restore, as static files (HTML, CSS and plain
// JavaScript, no build step and nothing fetched from elsewhere) embedded
// in the binary. The browser talks to the node's own HTTP API with the
// user's credentials, so the console can do exactly what the API lets that
// user do, over the same TLS.
//
// Package sqlapi serves Handler at /console (sqlapi.Config.Console): it
// needs no permission, since the files hold no data; every API call the
// page makes is authorized as any other.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

// Path is where the console is served.
const Path = "/console"

//go:embed static
var files embed.FS

// Handler serves the console's files under Path. Path itself redirects to
// Path + "/", so that the page's relative links resolve.
func Handler() http.Handler {
	static, err := fs.Sub(files, "static")
	if err != nil { // the directory is embedded above: cannot happen
		panic("console: " + err.Error())
	}
	fileServer := http.StripPrefix(Path, http.FileServerFS(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == Path {
			http.Redirect(w, r, Path+"/", http.StatusMovedPermanently)
			return
		}
		h := w.Header()
		// The page loads nothing but its own files and talks only to this
		// node; it is never framed by another site.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// A new binary may bring new files: the browser revalidates them.
		h.Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}
