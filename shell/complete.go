package shell

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/raftlite/raftlite/client"
)

// sqlKeywords are SQLite's keywords (https://sqlite.org/lang_keywords.html)
// and the type names people write in CREATE TABLE, for tab completion.
var sqlKeywords = strings.Fields(`ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC
	ATTACH AUTOINCREMENT BEFORE BEGIN BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN
	COMMIT CONFLICT CONSTRAINT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME
	CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE DEFERRED DELETE DESC DETACH DISTINCT DO
	DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS EXPLAIN FAIL FILTER FIRST
	FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP GROUPS HAVING IF IGNORE IMMEDIATE
	IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO IS ISNULL JOIN KEY LAST
	LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING NOTNULL NULL NULLS OF OFFSET
	ON OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE RANGE
	RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT
	ROLLBACK ROW ROWS SAVEPOINT SELECT SET TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION
	TRIGGER UNBOUNDED UNION UNIQUE UPDATE USING VACUUM VALUES VIEW VIRTUAL WHEN WHERE
	WINDOW WITH WITHOUT
	INTEGER TEXT REAL BLOB NUMERIC`)

// schemaQuery lists every column of the user's tables and views as (table,
// column) rows, for completion.
const schemaQuery = `SELECT m.t, p.name FROM (SELECT name AS t FROM sqlite_master WHERE type IN ('table','view') AND ` +
	hideInternal + `) AS m, pragma_table_info(m.t) AS p ORDER BY 1, p.cid`

// schemaTimeout bounds the query a Tab may wait for.
const schemaTimeout = 2 * time.Second

// schemaNames are the tables and their columns, loaded on the first Tab
// that needs them and again after a statement that may change the schema.
type schemaNames struct {
	loaded  bool
	tables  []string
	columns map[string][]string // by table, lower case
}

// forgetSchema makes the next completion load the schema again.
func (s *session) forgetSchema() { s.schema.loaded = false }

func (s *session) loadSchema() {
	if s.schema.loaded {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), schemaTimeout)
	defer cancel()
	// Not s.query: a note about a failover would land in the line being
	// edited; the next statement reports it.
	resp, err := s.c.With(client.WithLevel(s.level)).Query(ctx, client.SQL(schemaQuery))
	if err != nil || resp.Err() != nil || len(resp.Results) != 1 {
		return // completion goes on with keywords; the next Tab tries again
	}
	s.schema = schemaNames{loaded: true, columns: map[string][]string{}}
	for _, row := range resp.Results[0].Values {
		if len(row) < 2 {
			continue
		}
		table, column := formatValue(row[0]), formatValue(row[1])
		key := strings.ToLower(table)
		if _, ok := s.schema.columns[key]; !ok {
			s.schema.tables = append(s.schema.tables, table)
		}
		s.schema.columns[key] = append(s.schema.columns[key], column)
	}
}

// isNameRune reports whether r may be part of an unquoted SQL name.
func isNameRune(r rune) bool {
	return r == '_' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// complete is liner's word completer: dot-command names, table names as
// the argument of .schema and .indexes, and in SQL the keywords, table
// names and column names that start with the word before the cursor
// (case-insensitively). "table.col" completes the columns of that table.
func (s *session) complete(line string, pos int) (head string, completions []string, tail string) {
	runes := []rune(line)
	pos = min(pos, len(runes))
	before, tail := string(runes[:pos]), string(runes[pos:])
	if strings.HasPrefix(strings.TrimSpace(before), ".") && !strings.ContainsAny(before, " \t") {
		return "", completeDot(strings.TrimSpace(before)), tail
	}
	start := pos
	for start > 0 && (isNameRune(runes[start-1]) || runes[start-1] == '.') {
		start--
	}
	head, word := string(runes[:start]), string(runes[start:pos])
	if strings.HasPrefix(strings.TrimSpace(head), ".") {
		if !slices.Contains([]string{".schema", ".indexes", ".tables"}, strings.Fields(head)[0]) {
			return head, nil, tail
		}
		s.loadSchema()
		return head, withPrefix(s.schema.tables, word), tail
	}
	if table, col, ok := strings.Cut(word, "."); ok {
		s.loadSchema()
		var out []string
		for _, c := range withPrefix(s.schema.columns[strings.ToLower(table)], col) {
			out = append(out, table+"."+c)
		}
		return head, out, tail
	}
	if word == "" {
		return head, nil, tail
	}
	keywords := withPrefix(sqlKeywords, word)
	if strings.ToLower(word) == word {
		for i, k := range keywords {
			keywords[i] = strings.ToLower(k)
		}
	}
	s.loadSchema()
	names := withPrefix(s.schema.tables, word)
	for _, cols := range s.schema.columns {
		names = append(names, withPrefix(cols, word)...)
	}
	slices.Sort(names)
	return head, append(slices.Compact(names), keywords...), tail
}

// withPrefix returns the words that start with prefix, ignoring case.
func withPrefix(words []string, prefix string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(strings.ToLower(w), strings.ToLower(prefix)) {
			out = append(out, w)
		}
	}
	return out
}
