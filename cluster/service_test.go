package cluster

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/api"
)

// TestServiceErrorsAreJSON: every error the cluster service answers, its
// mux's own included (unknown path, wrong method), is JSON with a code, so
// the calling node keeps the error's meaning across the hop.
func TestServiceErrorsAreJSON(t *testing.T) {
	srv := newServiceServer(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cases := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/cluster/v1/nope", `{}`, http.StatusNotFound, api.ErrNotFound.Code},
		{"GET", pathJoin, ``, http.StatusNotFound, api.ErrNotFound.Code},
		{"POST", pathJoin, `{not json`, http.StatusBadRequest, api.ErrBadRequest.Code},
		{"POST", pathRemove, strings.Repeat(" ", maxServiceRequestBody+1) + `{}`, http.StatusBadRequest, api.ErrBadRequest.Code},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
		var e errorResponse
		if rec.Code != tc.status || rec.Header().Get("Content-Type") != "application/json" ||
			json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Code != tc.code || e.Error == "" {
			t.Errorf("%s %s: %d %q %q, want %d with code %s", tc.method, tc.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String(), tc.status, tc.code)
		}
	}
}
