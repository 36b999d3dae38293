package fsm

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/raftlite/raftlite/internal/sqlsplit"
)

// Hiding raftlite's own tables.
//
// _raftlite_meta (the applied index), _raftlite_sessions and
// _raftlite_nodes live in the user's database file, written in the same
// transactions as the data they describe: that is what keeps them atomic
// with it (the durability rule in doc.go). Clients must not see them,
// though: not in sqlite_schema, not in the rqlite shell's .tables, .schema
// and .indexes, not in a table list. SQLite has no hidden tables, and a
// TEMP object cannot shadow sqlite_schema (SQLite reserves the name), so
// every client statement goes through userSQL, and the guard checks what
// it actually reads:
//
//   - Every connection that runs client statements has TEMP views of the
//     schema tables without raftlite's objects (schemaViews).
//   - A statement that reads rows (SELECT, VALUES, WITH, INSERT, REPLACE,
//     UPDATE, DELETE) and names sqlite_schema, sqlite_master, their temp
//     counterparts or pragma_table_list gets a WITH clause that defines
//     those names as the views (a common table expression shadows a table
//     of the same name everywhere in the statement: joins, subqueries,
//     aliases and column references alike); a "main." qualifier before
//     them is dropped. PRAGMA table_list becomes the same SELECT from
//     pragma_table_list.
//   - The guard, for such statements, refuses every read of a schema table
//     that does not go through those views (a "main.sqlite_schema" it
//     could not rewrite, a second statement in the text, a view or trigger
//     reading the schema), and for every client statement refuses to read
//     or write raftlite's tables or name them in a PRAGMA ("no such
//     table"). So a statement either sees only the user's schema or fails:
//     the rewrite can be incomplete, never leaky.
//   - Any other statement that names a schema table (CREATE TABLE ... AS
//     SELECT, CREATE VIEW or TRIGGER over it) is refused, since a view or
//     trigger reading it could not be used anyway.
//
// Dumps and backups are made from a copy with the tables dropped (see
// backup.go), and a loaded database gets them hidden like any other.

// Names of the views, which the guard lets client statements read.
const (
	schemaView     = "_raftlite_schema"
	tempSchemaView = "_raftlite_temp_schema"
	tableListView  = "_raftlite_table_list"
)

// notInternal is the condition that leaves raftlite's objects out of a
// schema row (by the table it belongs to: indexes, triggers and automatic
// indexes of its tables go with them) or a table list row.
func notInternal(column string) string {
	return "lower(substr(" + column + ", 1, " + strconv.Itoa(len(internalPrefix)) + ")) <> '" + internalPrefix + "'"
}

// schemaViews create the views on a connection; they run before the
// connection is made read-only.
var schemaViews = []string{
	"CREATE TEMP VIEW IF NOT EXISTS " + schemaView + " AS SELECT type, name, tbl_name, rootpage, sql FROM main.sqlite_schema WHERE " + notInternal("tbl_name"),
	"CREATE TEMP VIEW IF NOT EXISTS " + tempSchemaView + " AS SELECT type, name, tbl_name, rootpage, sql FROM temp.sqlite_temp_schema WHERE " + notInternal("tbl_name"),
	"CREATE TEMP VIEW IF NOT EXISTS " + tableListView + " AS SELECT * FROM main.pragma_table_list WHERE " + notInternal("name"),
}

// hiddenNames maps the names userSQL shadows to the view that replaces
// them.
var hiddenNames = map[string]string{
	"sqlite_schema":      schemaView,
	"sqlite_master":      schemaView,
	"sqlite_temp_schema": tempSchemaView,
	"sqlite_temp_master": tempSchemaView,
	"pragma_table_list":  tableListView,
}

// isHidingView reports whether name is one of the views.
func isHidingView(name string) bool {
	switch strings.ToLower(name) {
	case schemaView, tempSchemaView, tableListView:
		return true
	}
	return false
}

// errSchemaRead is the refusal of a statement that names a schema table
// where raftlite cannot leave its own tables out.
var errSchemaRead = errors.New("raftlite hides its own tables: read sqlite_schema (sqlite_master, pragma_table_list) in a SELECT, not in CREATE ... AS, a view or a trigger")

// userSQL returns the text to run for a client statement: sql itself, or,
// if it names a schema table, sql rewritten to read the views instead (see
// above), with hide reporting that the guard must hold the statement to
// the views. A statement that names a schema table
// where it cannot be rewritten is refused with errSchemaRead.
func userSQL(sql string) (text string, hide bool, err error) {
	first := firstWord(sql)
	hide = readsRows(first)
	lower := strings.ToLower(sql)
	if !strings.Contains(lower, "sqlite_") && !strings.Contains(lower, "table_list") && !strings.Contains(lower, internalPrefix) {
		return sql, hide, nil
	}
	toks, open := sqlsplit.Tokens(sql)
	if open || len(toks) == 0 {
		return sql, hide, nil // SQLite reports the error
	}
	if first == "pragma" {
		return pragmaTableList(sql, toks)
	}
	var cuts []cut
	used := map[string]bool{}
	for i, t := range toks {
		if first == "create" && isIdent(sql, t) && isInternalName(identText(sql, t)) {
			// A trigger or view body is checked only when it runs.
			return "", false, errors.New("table " + identText(sql, t) + " is reserved for raftlite")
		}
		view, ok := hiddenName(sql, t)
		if !ok {
			continue
		}
		if strings.HasSuffix(view, "table_list") && i+1 < len(toks) && sql[toks[i+1].Start:toks[i+1].End] == "(" {
			continue // pragma_table_list('t'): a table-valued function call
		}
		used[strings.ToLower(identText(sql, t))] = true
		// main.sqlite_schema: the qualifier goes, the name stays.
		if i >= 2 && sql[toks[i-1].Start:toks[i-1].End] == "." && strings.EqualFold(identText(sql, toks[i-2]), "main") {
			cuts = append(cuts, cut{toks[i-2].Start, t.Start, ""})
		}
	}
	if len(used) == 0 {
		return sql, hide, nil
	}
	if !hide {
		return "", false, errSchemaRead
	}
	var ctes strings.Builder
	for _, name := range slices.Sorted(maps.Keys(used)) {
		ctes.WriteString(name + " AS (SELECT * FROM temp." + hiddenNames[name] + "), ")
	}
	at, prefix := toks[0].Start, "WITH "+strings.TrimSuffix(ctes.String(), ", ")+" "
	if first == "with" {
		at, prefix = toks[0].End, " "+ctes.String()
		if len(toks) > 1 && strings.EqualFold(sql[toks[1].Start:toks[1].End], "recursive") {
			at = toks[1].End
		}
	}
	cuts = append([]cut{{at, at, prefix}}, cuts...)
	return applyCuts(sql, cuts), true, nil
}

// readsRows reports whether a statement starting with the keyword first
// (lower case) reads rows, so that the guard holds it to the views of the
// schema. Statements that change the schema read sqlite_schema themselves
// (SQLite's own nested statements) and are not held.
func readsRows(first string) bool {
	switch first {
	case "select", "values", "with", "insert", "replace", "update", "delete", "explain":
		return true
	}
	return false
}

// firstWord returns the first keyword of sql in lower case, after white
// space and comments; "" if it does not start with a word.
func firstWord(sql string) string {
	i := 0
	for i < len(sql) {
		switch {
		case sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r' || sql[i] == '\f' || sql[i] == '\v':
			i++
		case strings.HasPrefix(sql[i:], "--"):
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return ""
			}
			i += end + 4
		default:
			j := i
			for j < len(sql) && (sql[j] >= 'a' && sql[j] <= 'z' || sql[j] >= 'A' && sql[j] <= 'Z') {
				j++
			}
			return strings.ToLower(sql[i:j])
		}
	}
	return ""
}

// pragmaTableList rewrites "PRAGMA [main.]table_list" to a SELECT from the
// table list without raftlite's tables; other pragmas stay as they are.
func pragmaTableList(sql string, toks []sqlsplit.Token) (string, bool, error) {
	words := make([]string, 0, len(toks))
	for _, t := range toks {
		if t.Kind != sqlsplit.Semi {
			words = append(words, strings.ToLower(identText(sql, t)))
		}
	}
	if len(words) == 2 && words[1] == "table_list" || len(words) == 4 && words[1] == "main" && words[2] == "." && words[3] == "table_list" {
		return "WITH pragma_table_list AS (SELECT * FROM temp." + tableListView + ") SELECT * FROM pragma_table_list", true, nil
	}
	return sql, false, nil
}

// hiddenName reports whether token t names a schema table, and the view
// that replaces it.
func hiddenName(sql string, t sqlsplit.Token) (string, bool) {
	if !isIdent(sql, t) {
		return "", false
	}
	view, ok := hiddenNames[strings.ToLower(identText(sql, t))]
	return view, ok
}

// isIdent reports whether token t can be an identifier (a word or a quoted
// name, not a string literal).
func isIdent(sql string, t sqlsplit.Token) bool {
	return t.Kind == sqlsplit.Word || t.Kind == sqlsplit.Quoted && sql[t.Start] != '\''
}

// identText is the identifier a token spells, without its quotes.
func identText(sql string, t sqlsplit.Token) string {
	s := sql[t.Start:t.End]
	if t.Kind == sqlsplit.Quoted && len(s) >= 2 {
		return s[1 : len(s)-1]
	}
	return s
}

// cut replaces sql[from:to] with text.
type cut struct {
	from, to int
	text     string
}

// applyCuts applies cuts, which are in order and do not overlap.
func applyCuts(sql string, cuts []cut) string {
	var b strings.Builder
	prev := 0
	for _, c := range cuts {
		b.WriteString(sql[prev:c.from])
		b.WriteString(c.text)
		prev = c.to
	}
	b.WriteString(sql[prev:])
	return b.String()
}
