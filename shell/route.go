package shell

// isPlainRead reports whether sql is certainly read-only, so that it can go
// to /db/query at the chosen consistency level: SELECT, VALUES, WITH ...
// SELECT and an argument-less PRAGMA. Everything else goes to /db/request,
// where the server decides (and a read there is still served at the chosen
// level); being conservative here only costs the session a sequence number.
func isPlainRead(sql string) bool {
	l, toks := tokens(sql)
	if len(toks) == 0 {
		return false
	}
	switch {
	case l.is(toks[0], "SELECT"), l.is(toks[0], "VALUES"):
		return true
	case l.is(toks[0], "PRAGMA"):
		// PRAGMA name or PRAGMA schema.name, nothing more: "= value" and
		// "(value)" may set something.
		rest := toks[1:]
		switch len(rest) {
		case 1:
			return rest[0].Kind != tokSemi
		case 3:
			return l.text(rest[1]) == "."
		}
		return false
	case l.is(toks[0], "WITH"):
		return withIsSelect(l, toks[1:])
	}
	return false
}

// withIsSelect skips the common table expressions of a WITH clause and
// reports whether the statement that follows them is a SELECT or VALUES.
func withIsSelect(l *lexer, toks []token) bool {
	i := 0
	if i < len(toks) && l.is(toks[i], "RECURSIVE") {
		i++
	}
	for {
		// name [(columns)] AS [NOT] [MATERIALIZED] (select)
		if i >= len(toks) || toks[i].Kind == tokSemi || toks[i].Kind == tokOther {
			return false
		}
		i++
		if i < len(toks) && l.text(toks[i]) == "(" {
			if i = skipParens(l, toks, i); i < 0 {
				return false
			}
		}
		if i >= len(toks) || !l.is(toks[i], "AS") {
			return false
		}
		i++
		if i < len(toks) && l.is(toks[i], "NOT") {
			i++
		}
		if i < len(toks) && l.is(toks[i], "MATERIALIZED") {
			i++
		}
		if i >= len(toks) || l.text(toks[i]) != "(" {
			return false
		}
		if i = skipParens(l, toks, i); i < 0 {
			return false
		}
		if i < len(toks) && l.text(toks[i]) == "," {
			i++
			continue
		}
		break
	}
	return i < len(toks) && (l.is(toks[i], "SELECT") || l.is(toks[i], "VALUES"))
}

// skipParens returns the index after the parenthesis that closes the one at
// toks[i], or -1 when it is not closed.
func skipParens(l *lexer, toks []token, i int) int {
	depth := 0
	for ; i < len(toks); i++ {
		if toks[i].Kind != tokOther {
			continue
		}
		switch l.text(toks[i]) {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}
