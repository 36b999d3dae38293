package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, as the nodes use
)

// Floor is what the disk and SQLite themselves allow on this machine,
// measured in the same run so that the workloads' figures can be read as
// ratios to it. Each rate is the median of the repeats.
type Floor struct {
	Dir string `json:"dir"`
	// OnTmpfs warns that Dir is in memory, so fsync costs nothing there.
	OnTmpfs bool `json:"on_tmpfs,omitempty"`
	// FsyncPerSec: 4 KiB appended to a file and fsync'd, one after the
	// other; FsyncLatency is the mean time of one append+fsync.
	FsyncPerSec  float64       `json:"fsync_per_sec"`
	FsyncLatency time.Duration `json:"fsync_latency_ns"`
	// SQLiteOffPerSec and SQLiteFullPerSec: single-row INSERT transactions
	// (autocommit, a prepared statement, one connection) into a WAL-mode
	// database with synchronous=OFF and synchronous=FULL.
	SQLiteOffPerSec  float64 `json:"sqlite_wal_off_txn_per_sec"`
	SQLiteFullPerSec float64 `json:"sqlite_wal_full_txn_per_sec"`
	// SQLiteSelectPerSec: point SELECTs by primary key on one connection.
	SQLiteSelectPerSec float64 `json:"sqlite_point_select_per_sec"`
}

// measureFloor measures the floor repeat times, each measurement lasting
// dur, in a fresh directory under dir (the system's temporary directory if
// dir is ""), which it removes afterwards.
func measureFloor(ctx context.Context, dir string, dur time.Duration, repeat int) (*Floor, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	work, err := os.MkdirTemp(dir, "raftlite-bench-floor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	// SQLite's file: URI needs an absolute path ("file:data/x.db" names
	// the authority "data").
	if work, err = filepath.Abs(work); err != nil {
		return nil, err
	}
	fl := &Floor{Dir: filepath.Dir(work), OnTmpfs: onTmpfs(work)}

	var fsync, fsyncLat, off, full, sel []float64
	for i := range repeat {
		rate, lat, err := measureFsync(ctx, work, dur)
		if err != nil {
			return nil, fmt.Errorf("append+fsync: %w", err)
		}
		fsync, fsyncLat = append(fsync, rate), append(fsyncLat, float64(lat))
		o, s, err := measureSQLite(ctx, filepath.Join(work, fmt.Sprintf("off-%d.db", i)), "OFF", dur)
		if err != nil {
			return nil, fmt.Errorf("sqlite synchronous=OFF: %w", err)
		}
		off, sel = append(off, o), append(sel, s)
		f, _, err := measureSQLite(ctx, filepath.Join(work, fmt.Sprintf("full-%d.db", i)), "FULL", dur)
		if err != nil {
			return nil, fmt.Errorf("sqlite synchronous=FULL: %w", err)
		}
		full = append(full, f)
	}
	fl.FsyncPerSec = Median(fsync)
	fl.FsyncLatency = time.Duration(Median(fsyncLat))
	fl.SQLiteOffPerSec = Median(off)
	fl.SQLiteFullPerSec = Median(full)
	fl.SQLiteSelectPerSec = Median(sel)
	return fl, nil
}

// measureFsync appends 4 KiB blocks to a new file in dir, fsyncing after
// each, for dur; it returns the rate and the mean latency.
func measureFsync(ctx context.Context, dir string, dur time.Duration) (float64, time.Duration, error) {
	f, err := os.CreateTemp(dir, "fsync-*.dat")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 4096)
	for i := range block {
		block[i] = byte(i)
	}
	n := 0
	start := time.Now()
	end := start.Add(dur)
	for time.Now().Before(end) && ctx.Err() == nil {
		if _, err := f.Write(block); err != nil {
			return 0, 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, 0, err
		}
		n++
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	el := time.Since(start)
	if n == 0 {
		return 0, 0, errors.New("no append completed")
	}
	return float64(n) / el.Seconds(), el / time.Duration(n), f.Close()
}

// measureSQLite inserts single-row transactions into a new WAL-mode
// database at path with the given synchronous setting for dur, then runs
// point SELECTs on what it inserted for dur/2. It returns both rates.
func measureSQLite(ctx context.Context, path, synchronous string, dur time.Duration) (insPerSec, selPerSec float64, err error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+synchronous+")")
	q.Add("_pragma", "busy_timeout(5000)")
	dsn := (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		db.Close()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suffix)
		}
	}()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL)"); err != nil {
		return 0, 0, err
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return 0, 0, err
	}
	if mode != "wal" {
		return 0, 0, fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	ins, err := db.PrepareContext(ctx, "INSERT INTO t(k, v) VALUES(?, ?)")
	if err != nil {
		return 0, 0, err
	}
	defer ins.Close()
	n := 0
	start := time.Now()
	end := start.Add(dur)
	for time.Now().Before(end) && ctx.Err() == nil {
		if _, err := ins.ExecContext(ctx, n, payload); err != nil {
			return 0, 0, err
		}
		n++
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, errors.New("no insert completed")
	}
	insPerSec = float64(n) / time.Since(start).Seconds()

	sel, err := db.PrepareContext(ctx, "SELECT id, k, v FROM t WHERE id = ?")
	if err != nil {
		return 0, 0, err
	}
	defer sel.Close()
	rnd := rand.New(rand.NewPCG(1, 2))
	var (
		id, k int64
		v     string
	)
	m := 0
	start = time.Now()
	end = start.Add(dur / 2)
	for time.Now().Before(end) && ctx.Err() == nil {
		if err := sel.QueryRowContext(ctx, 1+rnd.IntN(n)).Scan(&id, &k, &v); err != nil {
			return 0, 0, err
		}
		m++
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	return insPerSec, float64(m) / time.Since(start).Seconds(), nil
}
