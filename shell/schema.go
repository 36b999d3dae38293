package shell

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/raftlite/raftlite/client"
)

// hideInternal is the condition that leaves out SQLite's own objects and
// raftlite's replicated bookkeeping tables (_raftlite_*).
const hideInternal = `name NOT LIKE 'sqlite\_%' ESCAPE '\' AND tbl_name NOT LIKE '\_raftlite\_%' ESCAPE '\'`

// query runs a read of the shell's own at the session's consistency level
// and returns its single result.
func (s *session) query(ctx context.Context, sql string, args ...any) (*client.Result, error) {
	resp, err := s.c.With(client.WithLevel(s.level)).Query(ctx, client.SQL(sql, args...))
	s.checkFailover()
	if err != nil {
		return nil, err
	}
	if len(resp.Results) != 1 {
		return nil, errors.New("the server returned no result")
	}
	if msg := resp.Results[0].Error; msg != "" {
		return nil, errors.New(msg)
	}
	return &resp.Results[0], nil
}

// names runs a query whose first column is text and returns that column.
func (s *session) names(ctx context.Context, sql string, args ...any) ([]string, error) {
	res, err := s.query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(res.Values))
	for _, row := range res.Values {
		if len(row) > 0 && row[0] != nil {
			out = append(out, formatValue(row[0]))
		}
	}
	return out, nil
}

// likeFilter adds "AND column LIKE ?" for an optional pattern.
func likeFilter(column string, args []string) (string, []any) {
	if len(args) == 0 {
		return "", nil
	}
	return " AND " + column + ` LIKE ? ESCAPE '\'`, []any{args[0]}
}

func (s *session) cmdTables(ctx context.Context, args []string) error {
	cond, params := likeFilter("name", args)
	names, err := s.names(ctx, `SELECT name FROM sqlite_master WHERE type IN ('table','view') AND `+
		hideInternal+cond+` ORDER BY name`, params...)
	if err != nil {
		return err
	}
	s.printColumns(names)
	return nil
}

func (s *session) cmdIndexes(ctx context.Context, args []string) error {
	cond, params := likeFilter("tbl_name", args)
	names, err := s.names(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND `+
		hideInternal+cond+` ORDER BY name`, params...)
	if err != nil {
		return err
	}
	s.printColumns(names)
	return nil
}

func (s *session) cmdSchema(ctx context.Context, args []string) error {
	cond, params := likeFilter("tbl_name", args)
	stmts, err := s.names(ctx, `SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND `+hideInternal+cond+
		` ORDER BY tbl_name, CASE type WHEN 'table' THEN 0 WHEN 'view' THEN 1 WHEN 'index' THEN 2 ELSE 3 END, name`, params...)
	if err != nil {
		return err
	}
	for _, sql := range stmts {
		fmt.Fprintf(s.out, "%s;\n", sql)
	}
	return nil
}

// printColumns lists names in columns across the width, top to bottom then
// left to right like ls, or one a line when there is no width.
func (s *session) printColumns(names []string) {
	width := s.width()
	if width <= 0 || len(names) == 0 {
		for _, n := range names {
			fmt.Fprintln(s.out, n)
		}
		return
	}
	colW := 0
	for _, n := range names {
		colW = max(colW, cellWidth.StringWidth(n)+2)
	}
	cols := max(1, (width+2)/colW)
	rows := (len(names) + cols - 1) / cols
	for r := 0; r < rows; r++ {
		var b strings.Builder
		for c := 0; c < cols; c++ {
			i := c*rows + r
			if i >= len(names) {
				break
			}
			b.WriteString(cellWidth.FillRight(names[i], colW))
		}
		fmt.Fprintln(s.out, strings.TrimRight(b.String(), " "))
	}
}
