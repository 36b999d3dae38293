package sqlapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/raftlite/raftlite/api"
)

const (
	contentTypeJSON = "application/json; charset=utf-8"
	contentTypeText = "text/plain; charset=utf-8"
)

// requestError is a request-level failure answered with the JSON body shape
// {"results":[],"error":msg,"code":code} and its outcome's status and code.
type requestError struct {
	outcome *api.Error
	msg     string
}

func (e *requestError) Error() string { return e.msg }

// writeError answers a failure with the JSON error shape
// {"results":[],"error":msg,"code":code}, so that every error a client
// meets, not only request-level ones, carries a machine-readable code.
func writeError(w http.ResponseWriter, outcome *api.Error, msg string) {
	w.Header().Del("Content-Length")
	writeRequestError(w, &requestError{outcome, msg}, encodeOpts{})
}

// writeText answers with a one-line text/plain body: /readyz (rqlite's
// plain-text format), a redirect's body and empty successes.
func writeText(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", contentTypeText)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if msg != "" {
		_, _ = w.Write([]byte(msg + "\n"))
	}
}

// writeJSONBytes answers with a JSON body.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte, pretty bool) {
	if pretty {
		body = indent(body)
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeResponse encodes r and writes it with status.
func writeResponse(w http.ResponseWriter, status int, r *apiResponse, o encodeOpts) {
	bp := getBuf()
	*bp = appendResponse((*bp)[:0], r, o)
	writeJSONBytes(w, status, *bp, o.pretty)
	putBuf(bp)
}

// writeNoResults answers a request whose statements were all blank: rqlite
// runs nothing and answers {"results":[]}.
func writeNoResults(w http.ResponseWriter, p *params, ep endpoint) {
	out := &apiResponse{}
	if p.timings {
		out.time = time.Since(p.start).Seconds()
	}
	writeResponse(w, http.StatusOK, out, p.encodeOpts(ep))
}

// writeRequestError answers a request-level failure.
func writeRequestError(w http.ResponseWriter, e *requestError, o encodeOpts) {
	writeResponse(w, e.outcome.Status, &apiResponse{err: e.msg, code: e.outcome.Code}, o)
}

// classifyStoreError maps a Store error (other than "not leader", which the
// caller forwards) to a request-level failure (api.OutcomeOf).
func classifyStoreError(err error) *requestError {
	var re *requestError
	if errors.As(err, &re) {
		return re
	}
	o := api.OutcomeOf(err)
	if o == api.ErrCanceled {
		return &requestError{o, "request canceled: " + err.Error()}
	}
	return &requestError{o, err.Error()}
}
