package sqlsplit

import (
	"bytes"
	"io"
	"strings"
)

// Statement is one statement cut from the input.
type Statement struct {
	// SQL is the statement's text without its terminating ';', trimmed of
	// surrounding white space.
	SQL string
	// Line is the input line (from 1) where the statement starts.
	Line int
	// Head holds the statement's first words (up to five) in upper case.
	Head []string
}

// State describes what is left after the last complete statement.
type State int

const (
	// Empty: nothing but white space and comments.
	Empty State = iota
	// Unterminated: a statement that lacks only its ';'.
	Unterminated
	// Open: the input ends inside a quoted string or identifier, a block
	// comment or the body of a CREATE TRIGGER.
	Open
)

// Rest is what follows the last complete statement at the end of the input.
type Rest struct {
	State State
	// Text is the input after the last complete statement, comments
	// replaced unless the Scanner keeps them.
	Text string
	// Stmt is the statement lacking its ';' when State is Unterminated;
	// when State is Open, Stmt.Line is where the unfinished statement
	// starts (0 if it has no token yet).
	Stmt Statement
	// For State Open: Quote is the opening character of an unclosed quote
	// (0 if none), Comment is set for an unclosed block comment, and
	// OpenLine is the line where the quote or comment starts. With
	// neither, the input ends inside a CREATE TRIGGER.
	Quote    byte
	Comment  bool
	OpenLine int
}

// Scanner reads statements one at a time from a stream. Its memory is
// bounded by the largest statement.
type Scanner struct {
	// KeepComments keeps comments in the statements' text; by default a
	// line comment becomes a newline and a block comment a space. Set it
	// before the first call to Next.
	KeepComments bool

	lex   *lexer
	r     io.Reader
	words int // significant tokens in the current statement
	head  []string
	line  int // line of the current statement's first token
	// trigger is set in a CREATE TRIGGER; afterSemi / afterEnd track
	// "; END ;", which closes its body.
	trigger, afterSemi, afterEnd bool
}

// NewScanner returns a Scanner reading from r.
func NewScanner(r io.Reader) *Scanner { return &Scanner{r: r} }

// Next returns the next complete statement (one ended by its ';').
// Statements holding nothing but comments are skipped. At the end of the
// input it returns io.EOF, and Rest says what is left; a read error is
// returned as it is.
func (s *Scanner) Next() (Statement, error) {
	if s.lex == nil {
		s.lex = newLexer(s.r, s.KeepComments)
	}
	l := s.lex
	for {
		t, ok := l.next()
		if !ok {
			break
		}
		if t.Kind == Semi {
			if s.trigger && !s.afterEnd {
				s.afterSemi = true
				s.words++
				continue
			}
			if s.words > 0 {
				st := s.statement(l.text[:len(l.text)-1])
				s.reset()
				return st, nil
			}
			s.reset()
			continue
		}
		if s.words == 0 {
			s.line = t.Line
		}
		s.words++
		if len(s.head) < 5 && t.Kind == Word {
			s.head = append(s.head, strings.ToUpper(string(l.tokenText(t))))
			s.trigger = s.trigger || isTriggerHead(s.head)
		}
		if s.trigger {
			s.afterEnd = s.afterSemi && t.Kind == Word && bytes.EqualFold(l.tokenText(t), []byte("END"))
			s.afterSemi = false
		}
	}
	if l.err != nil {
		return Statement{}, l.err
	}
	return Statement{}, io.EOF
}

func (s *Scanner) statement(text []byte) Statement {
	return Statement{SQL: strings.TrimSpace(string(text)), Line: s.line, Head: s.head}
}

func (s *Scanner) reset() {
	s.lex.text = s.lex.text[:0]
	s.words, s.head, s.trigger, s.afterSemi, s.afterEnd = 0, nil, false, false, false
}

// Line returns the input line the Scanner has reached, for reporting a read
// error.
func (s *Scanner) Line() int {
	if s.lex == nil {
		return 1
	}
	return s.lex.line
}

// Rest says what is left after the last complete statement, once Next has
// returned io.EOF.
func (s *Scanner) Rest() Rest {
	if s.lex == nil {
		return Rest{}
	}
	l := s.lex
	r := Rest{Text: string(l.text)}
	switch {
	case l.open != openNone:
		r.State, r.Quote, r.Comment, r.OpenLine = Open, l.quote, l.open == openComment, l.openLine
		if s.words > 0 {
			r.Stmt.Line = s.line
		}
	case s.trigger && s.words > 0:
		r.State = Open
		r.Stmt.Line = s.line
	case s.words > 0:
		r.State = Unterminated
		r.Stmt = s.statement(l.text)
	}
	return r
}

// Split cuts text into complete statements, comments kept in their text.
// rest is the text after the last complete statement; state says whether
// it is empty, a statement short of its ';', or open.
func Split(text string) (stmts []Statement, rest string, state State) {
	s := NewScanner(strings.NewReader(text))
	s.KeepComments = true
	for {
		st, err := s.Next()
		if err != nil {
			break
		}
		stmts = append(stmts, st)
	}
	r := s.Rest()
	return stmts, r.Text, r.State
}

// isTriggerHead reports whether the leading words of a statement make it a
// CREATE TRIGGER: [EXPLAIN [QUERY PLAN]] CREATE [TEMP|TEMPORARY] TRIGGER.
func isTriggerHead(head []string) bool {
	h := head
	if len(h) > 0 && h[0] == "EXPLAIN" {
		h = h[1:]
		if len(h) > 1 && h[0] == "QUERY" && h[1] == "PLAN" {
			h = h[2:]
		}
	}
	if len(h) == 0 || h[0] != "CREATE" {
		return false
	}
	h = h[1:]
	if len(h) > 0 && (h[0] == "TEMP" || h[0] == "TEMPORARY") {
		h = h[1:]
	}
	return len(h) > 0 && h[0] == "TRIGGER"
}

// IsDumpBoilerplate reports whether a statement whose first words are head
// (as Statement.Head gives them) is one a dump wraps its content in:
// BEGIN, COMMIT or END (of a transaction), or PRAGMA foreign_keys, as
// sqlite3's .dump and rqlite's dumps write them.
func IsDumpBoilerplate(head []string) bool {
	if len(head) == 0 {
		return false
	}
	switch head[0] {
	case "BEGIN", "COMMIT", "END":
		return true
	case "PRAGMA":
		return len(head) > 1 && strings.HasPrefix(head[1], "FOREIGN_KEYS")
	}
	return false
}
