package shell

import "strings"

// tokenKind classifies the tokens of SQL text as far as the shell needs
// them: to find where statements end and to tell reads from writes.
type tokenKind int

const (
	tokWord   tokenKind = iota // a keyword, identifier or number
	tokQuoted                  // '...', "...", `...` or [...]
	tokSemi                    // ;
	tokOther                   // any other character: ( ) , . = ...
)

type token struct {
	kind       tokenKind
	start, end int // byte offsets in the text
}

// lexer walks SQL text token by token, skipping white space and comments.
type lexer struct {
	src string
	pos int
	// open is set when the text ends inside a quoted string, a quoted
	// identifier or a block comment: more input is needed.
	open bool
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// next returns the next token; ok is false at the end of the text (or where
// the text ends inside a quote or block comment, with open set).
func (l *lexer) next() (tok token, ok bool) {
	s := l.src
	for l.pos < len(s) {
		c := s[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			l.pos++
		case c == '-' && l.pos+1 < len(s) && s[l.pos+1] == '-':
			nl := strings.IndexByte(s[l.pos:], '\n')
			if nl < 0 {
				l.pos = len(s)
			} else {
				l.pos += nl + 1
			}
		case c == '/' && l.pos+1 < len(s) && s[l.pos+1] == '*':
			end := strings.Index(s[l.pos+2:], "*/")
			if end < 0 {
				l.pos = len(s)
				l.open = true
				return token{}, false
			}
			l.pos += 2 + end + 2
		case c == '\'' || c == '"' || c == '`' || c == '[':
			closer := c
			if c == '[' {
				closer = ']'
			}
			start := l.pos
			i := l.pos + 1
			for {
				j := strings.IndexByte(s[i:], closer)
				if j < 0 {
					l.pos = len(s)
					l.open = true
					return token{}, false
				}
				i += j + 1
				// A doubled quote character stands for itself; brackets
				// have no escape.
				if closer != ']' && i < len(s) && s[i] == closer {
					i++
					continue
				}
				break
			}
			l.pos = i
			return token{kind: tokQuoted, start: start, end: i}, true
		case isWordByte(c):
			start := l.pos
			for l.pos < len(s) && isWordByte(s[l.pos]) {
				l.pos++
			}
			return token{kind: tokWord, start: start, end: l.pos}, true
		case c == ';':
			l.pos++
			return token{kind: tokSemi, start: l.pos - 1, end: l.pos}, true
		default:
			l.pos++
			return token{kind: tokOther, start: l.pos - 1, end: l.pos}, true
		}
	}
	return token{}, false
}

// text returns the token's source text.
func (l *lexer) text(t token) string { return l.src[t.start:t.end] }

// is reports whether t is the word w, case-insensitively.
func (l *lexer) is(t token, w string) bool {
	return t.kind == tokWord && strings.EqualFold(l.text(t), w)
}

// tokens returns all tokens of sql, comments and white space left out.
func tokens(sql string) (*lexer, []token) {
	l := &lexer{src: sql}
	var out []token
	for {
		t, ok := l.next()
		if !ok {
			return l, out
		}
		out = append(out, t)
	}
}
