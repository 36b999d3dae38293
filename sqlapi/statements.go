package sqlapi

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/internal/sqlsplit"
)

// This file holds the rules rqlite applies to a parsed statement list
// before it runs anything, and the one place raftlite is stricter than
// rqlite (extra positional values). API.md, "Request parsing", records
// rqlite's answers they follow.

// dropBlank removes the statements whose SQL is empty or white space: they
// run nothing, and rqlite gives them no result ([""] answers
// {"results":[]}). It filters in place.
func dropBlank(stmts []api.Statement) []api.Statement {
	out := stmts[:0]
	for _, st := range stmts {
		if strings.TrimSpace(st.SQL) != "" {
			out = append(out, st)
		}
	}
	return out
}

// checkParamCounts refuses a statement given more positional values than it
// has parameters. rqlite (through SQLite's binding) ignores the extra
// values, so a client whose placeholders and values drifted apart writes
// the wrong row without a word; raftlite answers 400 instead. Too few
// values are left to SQLite, which reports them per statement as rqlite
// does.
func checkParamCounts(stmts []api.Statement) error {
	for i, st := range stmts {
		if len(st.Params) == 0 || st.Params[0].Name != "" {
			continue // no values, or named ones (never mixed with positional)
		}
		slots, ok := parameterSlots(st.SQL)
		if ok && len(st.Params) > slots {
			return fmt.Errorf("%w: statement %d has %d parameter(s) but %d value(s) were given",
				errInvalidRequest, i+1, slots, len(st.Params))
		}
	}
	return nil
}

// parameterSlots counts the parameters SQLite numbers in sql, as
// sqlite3_bind_parameter_count does: "?" takes the next number, "?NNN" the
// number NNN, and each distinct ":name", "@name" or "$name" the next
// number; the count is the largest number. Parameters in literals and
// comments do not count. ok is false when sql ends inside a literal or
// comment, for SQLite to judge.
func parameterSlots(sql string) (n int, ok bool) {
	toks, open := sqlsplit.Tokens(sql)
	if open {
		return 0, false
	}
	named := map[string]int{}
	next := func(t sqlsplit.Token, i int) (sqlsplit.Token, bool) {
		if i+1 < len(toks) && toks[i+1].Kind == sqlsplit.Word && toks[i+1].Start == t.End {
			return toks[i+1], true
		}
		return sqlsplit.Token{}, false
	}
	for i, t := range toks {
		text := sql[t.Start:t.End]
		switch {
		case t.Kind == sqlsplit.Other && text == "?":
			if w, ok := next(t, i); ok {
				if num, err := strconv.Atoi(sql[w.Start:w.End]); err == nil {
					n = max(n, num)
					continue
				}
			}
			n++
		case t.Kind == sqlsplit.Other && (text == ":" || text == "@"):
			if w, ok := next(t, i); ok {
				n = nameSlot(named, text+sql[w.Start:w.End], n)
			}
		case t.Kind == sqlsplit.Word && len(text) > 1 && text[0] == '$':
			n = nameSlot(named, text, n)
		}
	}
	return n, true
}

// nameSlot gives a named parameter its number: the one it already has, or
// the next after n. It returns the new largest number.
func nameSlot(named map[string]int, name string, n int) int {
	if _, seen := named[name]; seen {
		return n
	}
	named[name] = n + 1
	return n + 1
}

// firstStatements returns req with every SQL text cut to its first
// statement, for classifying a /db/request as rqlite does: rqlite asks
// SQLite whether the first statement of each text is read-only, and runs a
// text whose first statement reads on its read-only connection, where a
// write later in the text fails. So "SELECT ...; DELETE ..." is refused
// rather than run as a write (and its DELETE applied with the SELECT's
// empty result). ok is false when no text holds more than one statement.
func firstStatements(req *api.Request) (probe *api.Request, ok bool) {
	var cut []api.Statement
	for i, st := range req.Statements {
		stmts, _, state := sqlsplit.Split(st.SQL)
		if len(stmts) == 0 || (len(stmts) == 1 && state == sqlsplit.Empty) {
			continue // one statement, with or without its ';'
		}
		if cut == nil {
			cut = append([]api.Statement(nil), req.Statements...)
		}
		cut[i] = api.Statement{SQL: stmts[0].SQL, Params: st.Params}
	}
	if cut == nil {
		return nil, false
	}
	p := *req
	p.Statements = cut
	return &p, true
}
