package shell

import (
	"strings"

	"github.com/raftlite/raftlite/internal/sqlsplit"
)

// The shell lexes SQL with sqlsplit, which owns the rules for quotes,
// comments and where statements end.
type (
	token     = sqlsplit.Token
	statement = sqlsplit.Statement
)

const (
	tokSemi  = sqlsplit.Semi
	tokOther = sqlsplit.Other
)

// lexer holds SQL text, to read its tokens' text.
type lexer struct {
	src string
	// open is set when the text ends inside a quoted string, a quoted
	// identifier or a block comment.
	open bool
}

// text returns the token's source text.
func (l *lexer) text(t token) string { return l.src[t.Start:t.End] }

// is reports whether t is the word w, case-insensitively.
func (l *lexer) is(t token, w string) bool {
	return t.Kind == sqlsplit.Word && strings.EqualFold(l.text(t), w)
}

// tokens returns all tokens of sql, comments and white space left out.
func tokens(sql string) (*lexer, []token) {
	toks, open := sqlsplit.Tokens(sql)
	return &lexer{src: sql, open: open}, toks
}
