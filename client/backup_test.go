package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestBackupDownloadsAndFailsOver(t *testing.T) {
	var gotQuery atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/db/backup" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		gotQuery.Store(r.URL.Query().Get("fmt"))
		w.Write([]byte("CREATE TABLE t(x);\n"))
	}))
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // connection refused: the client must move on

	c, err := New(Config{Nodes: []string{downURL, srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CurrentNode(); got != downURL {
		t.Fatalf("CurrentNode before any call = %q, want the first node %q", got, downURL)
	}
	body, err := c.Backup(context.Background(), BackupSQL)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "CREATE TABLE t(x);\n" {
		t.Errorf("body = %q", body)
	}
	if q := gotQuery.Load(); q != "sql" {
		t.Errorf("fmt = %v, want sql", q)
	}
	if got := c.CurrentNode(); got != srv.URL {
		t.Errorf("CurrentNode after failover = %q, want %q", got, srv.URL)
	}
	if _, err := c.Backup(context.Background(), "xml"); err == nil {
		t.Error("Backup with an unknown format succeeded")
	}
}

func TestBackupNotImplemented(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "backup is not supported by this node", http.StatusNotImplemented)
	}))
	defer srv.Close()
	c, err := New(Config{Nodes: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Backup(context.Background(), BackupBinary)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotImplemented ||
		apiErr.Message != "backup is not supported by this node" {
		t.Fatalf("err = %v, want an APIError 501 with the server's text", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d attempts, want 1 (501 is definite)", n)
	}
}

func TestLoadContentTypes(t *testing.T) {
	type seen struct{ ct, body string }
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, seen{r.Header.Get("Content-Type"), string(b)})
		if strings.HasPrefix(string(b), "INSERT") {
			w.Write([]byte(`{"results":[{"error":"no such table: t"}]}`))
			return
		}
		w.Write([]byte(`{"results":[]}`))
	}))
	defer srv.Close()
	c, err := New(Config{Nodes: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	file := append([]byte("SQLite format 3\x00"), make([]byte, 84)...)
	resp, err := c.Load(ctx, file)
	if err != nil || resp.Err() != nil {
		t.Fatalf("Load(file) = %v, %v", resp, err)
	}
	resp, err = c.Load(ctx, []byte("INSERT INTO t VALUES(1);"))
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Err(); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("Load(dump).Err() = %v, want the statement error", err)
	}
	if _, err := c.Load(ctx, []byte("  \n")); err == nil {
		t.Error("Load of blank input succeeded")
	}
	if len(got) != 2 || got[0].ct != "application/octet-stream" || got[1].ct != "text/plain" {
		t.Errorf("requests = %+v, want an octet-stream then a text/plain upload", got)
	}
}

func TestLoadIsNotRetriedAfterAmbiguousFailure(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "leadership lost", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c, err := New(Config{Nodes: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Load(context.Background(), []byte("DELETE FROM t"))
	if !errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("err = %v, want ErrUnknownOutcome", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}
