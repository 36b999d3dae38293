package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/raftlite/raftlite/internal/cli"
	"github.com/raftlite/raftlite/internal/httpx"
	"github.com/raftlite/raftlite/internal/tlsconf"
)

// transferFlags are the flags backup and restore share, and the membership
// commands (members.go).
type transferFlags struct {
	hosts   string
	user    string
	timeout time.Duration
	tls     tlsconf.ClientFlags
}

func (t *transferFlags) register(fs *flag.FlagSet, defaultTimeout time.Duration) {
	fs.StringVar(&t.hosts, "H", "127.0.0.1:4001", "comma-separated `host:port` list of nodes; the first that answers is used")
	fs.StringVar(&t.user, "u", "", "credentials as `user:password` (HTTP basic auth)")
	fs.DurationVar(&t.timeout, "timeout", defaultTimeout, "overall time limit")
	t.tls.Register(fs)
}

// do sends a request built by mk to each host in turn until one answers;
// it tries the next only when a host cannot be reached. An answer other
// than 200 is returned as an error.
// It goes over raftlite's shared transport (internal/httpx) but not through
// client/, whose Backup and Load hold the whole database in memory and
// cannot ask for chosen tables or level=none: backup and restore stream.
func (t *transferFlags) do(mk func(base string) (*http.Request, error)) (*http.Response, error) {
	tlsCfg, err := t.tls.Config()
	if err != nil {
		return nil, err
	}
	hc := httpx.NewClient(httpx.Options{ProxyFromEnvironment: true, TLS: tlsCfg})
	hc.Timeout = t.timeout
	var errs []error
	for _, h := range strings.Split(t.hosts, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		rq, err := mk(t.tls.URL(h))
		if err != nil {
			return nil, err
		}
		if t.user != "" {
			u, p, _ := strings.Cut(t.user, ":")
			rq.SetBasicAuth(u, p)
		}
		resp, err := hc.Do(rq)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			err := httpFailure(resp)
			resp.Body.Close()
			return nil, err
		}
		return resp, nil
	}
	if len(errs) == 0 {
		return nil, errors.New("no hosts given")
	}
	return nil, errors.Join(errs...)
}

// httpFailure describes a non-200 answer.
func httpFailure(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return fmt.Errorf("HTTP %d from %s: %s", resp.StatusCode, resp.Request.URL.Host, strings.TrimSpace(string(b)))
}

// backup runs `raftlite backup`: it streams GET /db/backup into a file (or
// stdout), written aside and renamed into place once complete.
func backup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf transferFlags
	tf.register(fs, time.Hour)
	format := fs.String("fmt", "binary", "backup format: binary (an SQLite database file) or sql (a text dump)")
	out := fs.String("o", "", "output `file` (default: stdout)")
	force := fs.Bool("f", false, "with -o, overwrite the file if it exists")
	tables := fs.String("tables", "", "with -fmt sql, dump only these comma-separated tables")
	none := fs.Bool("local", false, "back up the first reachable node's own copy (level=none) instead of the leader's")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: raftlite backup [flags]

Downloads a consistent copy of the cluster's database (GET /db/backup):
a plain SQLite file, or with -fmt sql a dump that replays into sqlite3.
raftlite's internal _raftlite_* tables are not included.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || (*format != "binary" && *format != "sql") {
		fs.Usage()
		return 2
	}
	if _, err := os.Lstat(*out); *out != "" && !*force && err == nil {
		fmt.Fprintf(stderr, "raftlite backup: %s exists; use -f to overwrite it\n", *out)
		return 1
	}
	q := url.Values{"fmt": {*format}}
	if *tables != "" {
		q.Set("tables", *tables)
	}
	if *none {
		q.Set("level", "none")
	}
	resp, err := tf.do(func(base string) (*http.Request, error) {
		return http.NewRequest(http.MethodGet, base+"/db/backup?"+q.Encode(), nil)
	})
	if err != nil {
		fmt.Fprintf(stderr, "raftlite backup: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	progress := cli.NewProgress(stderr, "backup", resp.ContentLength)
	body := progress.Reader(resp.Body)
	if *out == "" {
		_, err := io.Copy(stdout, body)
		progress.Done()
		if err != nil {
			fmt.Fprintf(stderr, "raftlite backup: %v\n", err)
			return 1
		}
		return 0
	}
	n, err := writeAside(*out, body)
	progress.Done()
	if err != nil {
		fmt.Fprintf(stderr, "raftlite backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "wrote %d bytes to %s\n", n, *out)
	return 0
}

// writeAside writes r to a temporary file beside path, syncs it and renames
// it to path, so that path never holds a partial download.
func writeAside(path string, r io.Reader) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return 0, err
	}
	return n, nil
}

// restore runs `raftlite restore FILE`: it streams FILE (an SQLite database,
// which replaces the database, or an SQL dump, which is executed on top of
// it) to POST /db/load.
func restore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf transferFlags
	tf.register(fs, time.Hour)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: raftlite restore [flags] FILE

Loads FILE into the cluster (POST /db/load): an SQLite database file
replaces the whole database on every node; an SQL dump is executed on top
of the current data, as rqlite does (restore a dump into an empty
database to get just its content).

Flags:
`)
		fs.PrintDefaults()
	}
	// Accept the file before or after the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := cli.Parse(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 || file == "" {
		fs.Usage()
		return 2
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(stderr, "raftlite restore: %v\n", err)
		return 1
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fmt.Fprintf(stderr, "raftlite restore: %v\n", err)
		return 1
	}
	head := make([]byte, 16)
	n, _ := io.ReadFull(f, head)
	ct := "text/plain"
	if bytes.Equal(head[:n], []byte("SQLite format 3\x00")) {
		ct = "application/octet-stream"
	}
	start := time.Now()
	progress := cli.NewProgress(stderr, "restore", st.Size())
	resp, err := tf.do(func(base string) (*http.Request, error) {
		rq, err := http.NewRequest(http.MethodPost, base+"/db/load", progress.Reader(io.NewSectionReader(f, 0, st.Size())))
		if err != nil {
			return nil, err
		}
		rq.ContentLength = st.Size()
		rq.Header.Set("Content-Type", ct)
		return rq, nil
	})
	progress.Done()
	if err != nil {
		fmt.Fprintf(stderr, "raftlite restore: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if bytes.Contains(body, []byte(`"error"`)) {
		fmt.Fprintf(stderr, "raftlite restore: %s\n", strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintf(stdout, "restored %s (%d bytes) in %s\n", file, st.Size(), time.Since(start).Round(time.Millisecond))
	return 0
}
