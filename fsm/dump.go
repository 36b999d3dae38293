package fsm

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
)

// dumpFile writes the database at path (a scratch copy) to w as SQL text in
// the style of the sqlite3 shell's .dump: the tables with their rows, then
// the indexes, triggers and views, in creation order, in one transaction.
// Values are rendered by SQLite's own quote(), so text (quotes included),
// blobs (X'..'), NULL, integers and reals (printed with enough digits to
// read back the same double) replay exactly. With tables, only those tables
// and the indexes, triggers and views on them are written. Rows are
// streamed one at a time.
func dumpFile(ctx context.Context, path string, w io.Writer, tables []string) error {
	db, err := sql.Open("sqlite", scratchDSN(path)+"&mode=ro")
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := writeDump(ctx, db, bw, tables); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	return nil
}

// schemaObject is one row of sqlite_master.
type schemaObject struct {
	typ, name, table, sql string
}

func writeDump(ctx context.Context, db *sql.DB, w *bufio.Writer, tables []string) error {
	want := map[string]bool{}
	for _, t := range tables {
		want[strings.ToLower(t)] = true
	}
	keep := func(table string) bool { return len(want) == 0 || want[strings.ToLower(table)] }
	objs, err := schemaObjects(ctx, db)
	if err != nil {
		return err
	}
	w.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
	hasSeq := false
	for _, o := range objs {
		if o.name == "sqlite_sequence" {
			hasSeq = true
			continue
		}
		if o.typ != "table" || !keep(o.name) {
			continue
		}
		w.WriteString(o.sql)
		w.WriteString(";\n")
		if strings.HasPrefix(strings.ToUpper(o.sql), "CREATE VIRTUAL TABLE") {
			continue
		}
		if err := dumpRows(ctx, db, w, o.name); err != nil {
			return err
		}
	}
	if hasSeq {
		if err := dumpSequence(ctx, db, w, keep); err != nil {
			return err
		}
	}
	for _, o := range objs {
		if o.typ == "table" || !keep(o.table) {
			continue
		}
		w.WriteString(o.sql)
		w.WriteString(";\n")
	}
	_, err = w.WriteString("COMMIT;\n")
	return err
}

// schemaObjects lists the user's schema objects in creation order, without
// SQLite's (except sqlite_sequence) and raftlite's own.
func schemaObjects(ctx context.Context, db *sql.DB) ([]schemaObject, error) {
	rows, err := db.QueryContext(ctx, `SELECT type, name, tbl_name, sql FROM sqlite_master
		WHERE sql NOT NULL AND (substr(name, 1, 7) <> 'sqlite_' OR name = 'sqlite_sequence')
		AND substr(name, 1, ?1) <> ?2 AND substr(tbl_name, 1, ?1) <> ?2
		ORDER BY rowid`, len(internalPrefix), internalPrefix)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var objs []schemaObject
	for rows.Next() {
		var o schemaObject
		if err := rows.Scan(&o.typ, &o.name, &o.table, &o.sql); err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, rows.Err()
}

// dumpRows writes an INSERT for every row of table.
func dumpRows(ctx context.Context, db *sql.DB, w *bufio.Writer, table string) error {
	cols, err := columnNames(ctx, db, table)
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		return nil
	}
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = "quote(" + quoteIdent(c) + ")"
	}
	rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(exprs, "||','||")+" FROM "+quoteIdent(table))
	if err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	prefix := "INSERT INTO " + quoteIdent(table) + " VALUES("
	var vals sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&vals); err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
		w.WriteString(prefix)
		w.Write(vals)
		if _, err := w.WriteString(");\n"); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	return nil
}

// columnNames lists the stored (not generated) columns of table.
func columnNames(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT name FROM pragma_table_info(?)", table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// dumpSequence restores the AUTOINCREMENT counters of the dumped tables.
func dumpSequence(ctx context.Context, db *sql.DB, w *bufio.Writer, keep func(string) bool) error {
	rows, err := db.QueryContext(ctx, "SELECT name, quote(name)||','||quote(seq) FROM sqlite_sequence")
	if err != nil {
		return fmt.Errorf("read sqlite_sequence: %w", err)
	}
	defer rows.Close()
	first := true
	for rows.Next() {
		var name, vals string
		if err := rows.Scan(&name, &vals); err != nil {
			return err
		}
		if !keep(name) {
			continue
		}
		if first {
			w.WriteString("DELETE FROM sqlite_sequence;\n")
			first = false
		}
		w.WriteString("INSERT INTO sqlite_sequence VALUES(" + vals + ");\n")
	}
	return rows.Err()
}
