package sqlsplit

import (
	"bufio"
	"io"
	"strings"
)

// Kind classifies tokens.
type Kind int

const (
	Word   Kind = iota // a keyword, identifier or number
	Quoted             // '...', "...", `...` or [...]
	Semi               // ;
	Other              // any other character: ( ) , . = ...
)

// Token is one significant token: white space and comments are skipped.
type Token struct {
	Kind       Kind
	Start, End int // byte offsets in the input
	Line       int // input line (from 1) where the token starts
}

// openKind says what the input ends inside of.
type openKind int

const (
	openNone openKind = iota
	openQuote
	openComment
)

// lexer reads tokens from a stream. Every byte it reads is appended to text,
// except that comments are replaced by a space or newline unless keep is
// set; a token's bytes are always appended unchanged, so a token's text is
// the last End-Start bytes of text when next returns it.
type lexer struct {
	r    *bufio.Reader
	keep bool
	text []byte
	off  int
	line int
	err  error // a read error other than io.EOF

	open     openKind
	quote    byte // the opening character, when open == openQuote
	openLine int  // where the unclosed quote or comment starts
}

func newLexer(r io.Reader, keep bool) *lexer {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &lexer{r: br, keep: keep, line: 1}
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// read reads one byte, counting lines; ok is false at the end of the input
// or on a read error (then kept in l.err).
func (l *lexer) read() (c byte, ok bool) {
	c, err := l.r.ReadByte()
	if err != nil {
		if err != io.EOF {
			l.err = err
		}
		return 0, false
	}
	l.off++
	if c == '\n' {
		l.line++
	}
	return c, true
}

// peekIs reports whether the next byte is c, without reading it.
func (l *lexer) peekIs(c byte) bool {
	b, err := l.r.Peek(1)
	return err == nil && b[0] == c
}

// next returns the next token; ok is false at the end of the input, on a
// read error, or where the input ends inside a quote or block comment (with
// l.open set).
func (l *lexer) next() (tok Token, ok bool) {
	for {
		c, ok := l.read()
		if !ok {
			return Token{}, false
		}
		start, line := l.off-1, l.line
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			l.text = append(l.text, c)
		case c == '-' && l.peekIs('-'):
			l.keepByte(c)
			for {
				b, ok := l.read()
				if !ok {
					if l.err != nil {
						return Token{}, false
					}
					break
				}
				l.keepByte(b)
				if b == '\n' {
					break
				}
			}
			if !l.keep {
				l.text = append(l.text, '\n')
			}
		case c == '/' && l.peekIs('*'):
			l.keepByte(c)
			b, _ := l.read()
			l.keepByte(b)
			prev := byte(0)
			for {
				b, ok := l.read()
				if !ok {
					if l.err == nil {
						l.open, l.openLine = openComment, line
					}
					return Token{}, false
				}
				l.keepByte(b)
				if prev == '*' && b == '/' {
					break
				}
				prev = b
			}
			if !l.keep {
				l.text = append(l.text, ' ')
			}
		case c == '\'' || c == '"' || c == '`' || c == '[':
			closer := c
			if c == '[' {
				closer = ']'
			}
			l.text = append(l.text, c)
			for {
				b, ok := l.read()
				if !ok {
					if l.err == nil {
						l.open, l.quote, l.openLine = openQuote, c, line
					}
					return Token{}, false
				}
				l.text = append(l.text, b)
				if b != closer {
					continue
				}
				// A doubled quote character stands for itself; brackets
				// have no escape.
				if closer != ']' && l.peekIs(closer) {
					l.read()
					l.text = append(l.text, closer)
					continue
				}
				break
			}
			return Token{Kind: Quoted, Start: start, End: l.off, Line: line}, true
		case isWordByte(c):
			l.text = append(l.text, c)
			for {
				b, err := l.r.Peek(1)
				if err != nil || !isWordByte(b[0]) {
					break
				}
				l.read()
				l.text = append(l.text, b[0])
			}
			return Token{Kind: Word, Start: start, End: l.off, Line: line}, true
		case c == ';':
			l.text = append(l.text, c)
			return Token{Kind: Semi, Start: start, End: l.off, Line: line}, true
		default:
			l.text = append(l.text, c)
			return Token{Kind: Other, Start: start, End: l.off, Line: line}, true
		}
	}
}

// keepByte appends a comment's byte to text when comments are kept.
func (l *lexer) keepByte(c byte) {
	if l.keep {
		l.text = append(l.text, c)
	}
}

// tokenText returns the text of t, the token next just returned.
func (l *lexer) tokenText(t Token) []byte {
	return l.text[len(l.text)-(t.End-t.Start):]
}

// Tokens returns the tokens of sql, white space and comments left out. open
// is set when sql ends inside a quote or a block comment.
func Tokens(sql string) (toks []Token, open bool) {
	// A buffer the size of the text, not newLexer's 64 KiB: statements
	// are tokenized on the write path, one by one.
	l := newLexer(bufio.NewReaderSize(strings.NewReader(sql), min(max(len(sql), 16), 64<<10)), true)
	for {
		t, ok := l.next()
		if !ok {
			return toks, l.open != openNone
		}
		toks = append(toks, t)
		l.text = l.text[:0]
	}
}
