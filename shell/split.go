package shell

import "strings"

// statement is one complete SQL statement cut from the input.
type statement struct {
	// SQL is the statement's text without its terminating ';', trimmed of
	// surrounding white space.
	SQL string
	// Line is the input line (from 1) where the statement starts.
	Line int
}

// remainder describes what is left after the last complete statement.
type remainder int

const (
	// restEmpty: nothing but white space and comments.
	restEmpty remainder = iota
	// restUnterminated: a statement that lacks only its ';'.
	restUnterminated
	// restOpen: the text ends inside a quoted string or identifier, a block
	// comment or the body of a CREATE TRIGGER.
	restOpen
)

// splitStatements cuts text into complete statements. A statement ends at a
// ';' outside quotes ('...', "...", `...`, [...]) and comments (-- and /* */),
// except inside the BEGIN ... END body of a CREATE TRIGGER, which ends only
// at a ';' that follows "; END". Statements holding nothing but comments are
// dropped. rest is the text after the last complete statement; kind says
// whether it is empty, a statement short of its ';', or open.
func splitStatements(text string) (stmts []statement, rest string, kind remainder) {
	l := &lexer{src: text}
	start := 0    // where the current statement's text begins
	var words int // significant tokens seen in the current statement
	var head []string
	trigger := false
	// afterSemi / afterEnd track "; END ;", which closes a trigger body.
	afterSemi, afterEnd := false, false
	line := 1     // line of text[start]
	lineAt := 0   // offset up to which line counts newlines
	stmtLine := 0 // line of the current statement's first token

	countLines := func(upto int) {
		line += strings.Count(text[lineAt:upto], "\n")
		lineAt = upto
	}
	reset := func(at int) {
		start, words, head, trigger, afterSemi, afterEnd = at, 0, head[:0], false, false, false
	}
	for {
		t, ok := l.next()
		if !ok {
			break
		}
		if t.kind == tokSemi {
			if trigger && !afterEnd {
				afterSemi = true
				words++
				continue
			}
			if words > 0 {
				stmts = append(stmts, statement{SQL: strings.TrimSpace(text[start:t.start]), Line: stmtLine})
			}
			reset(t.end)
			continue
		}
		if words == 0 {
			countLines(t.start)
			stmtLine = line
		}
		words++
		if len(head) < 5 && t.kind == tokWord {
			head = append(head, strings.ToUpper(l.text(t)))
			trigger = trigger || isTriggerHead(head)
		}
		if trigger {
			afterEnd = afterSemi && l.is(t, "END")
			afterSemi = false
		}
	}
	rest = text[start:]
	switch {
	case l.open || (trigger && words > 0):
		kind = restOpen
	case words > 0:
		kind = restUnterminated
	default:
		kind = restEmpty
	}
	return stmts, rest, kind
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
