package sqlapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"sort"
	"strconv"
	"strings"

	"github.com/raftlite/raftlite/api"
)

// The one-line reasons of a 400 answer to a bad body.
var (
	errInvalidJSON     = errors.New("invalid JSON body")
	errInvalidRequest  = errors.New("invalid request")
	errNoStatements    = errors.New("no statements")
	errUnsupportedType = errors.New("unsupported parameter type")
)

// isTextPlain reports whether a Content-Type header says text/plain, which
// makes the whole body one SQL statement.
func isTextPlain(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/plain"
}

// parseBody turns a request body into statements: one SQL string when
// textPlain, else the JSON array of API.md.
func parseBody(body []byte, textPlain bool) ([]api.Statement, error) {
	if textPlain {
		if len(bytes.TrimSpace(body)) == 0 {
			return nil, errNoStatements
		}
		return []api.Statement{{SQL: string(body)}}, nil
	}
	return ParseStatements(body)
}

// parseStatementList parses a body as parseBody does, then applies
// rqlite's rules for statement lists (statements.go): blank statements are
// dropped, leaving possibly none, and extra positional values are refused.
func parseStatementList(body []byte, textPlain bool) ([]api.Statement, error) {
	stmts, err := parseBody(body, textPlain)
	if err != nil {
		return nil, err
	}
	stmts = dropBlank(stmts)
	if err := checkParamCounts(stmts); err != nil {
		return nil, err
	}
	return stmts, nil
}

// ParseStatements parses a JSON request body: an array whose elements are
// each a SQL string, [sql, positional params...] or [sql, {named params}].
// Errors are one-line reasons suitable for a 400 answer.
func ParseStatements(body []byte) ([]api.Statement, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return nil, errInvalidJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errInvalidJSON // trailing data after the array
	}
	elems, ok := top.([]any)
	if !ok {
		return nil, errInvalidRequest
	}
	if len(elems) == 0 {
		return nil, errNoStatements
	}
	stmts := make([]api.Statement, len(elems))
	for i, el := range elems {
		switch e := el.(type) {
		case string:
			stmts[i].SQL = e
		case []any:
			if len(e) == 0 {
				return nil, errInvalidRequest // [[]], as rqlite answers it
			}
			sql, ok := e[0].(string)
			if !ok {
				return nil, errInvalidRequest
			}
			ps, err := parseParamList(e[1:])
			if err != nil {
				return nil, err
			}
			stmts[i] = api.Statement{SQL: sql, Params: ps}
		default:
			return nil, errInvalidRequest
		}
	}
	return stmts, nil
}

// parseParamList turns the elements after the SQL string into parameters:
// values bind positionally, objects bind by name. Named parameters are
// sorted by name so that the log entry does not depend on JSON key order.
func parseParamList(list []any) ([]api.Param, error) {
	if len(list) == 0 {
		return nil, nil
	}
	var positional []api.Param
	var named map[string]api.Value
	for _, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			v, err := paramValue(el)
			if err != nil {
				return nil, err
			}
			positional = append(positional, api.Param{Value: v})
			continue
		}
		if named == nil {
			named = make(map[string]api.Value, len(m))
		}
		for k, raw := range m {
			name := strings.TrimLeft(k, ":@$")
			if name == "" || len(k)-len(name) > 1 {
				return nil, fmt.Errorf("%w: bad parameter name %q", errInvalidRequest, k)
			}
			v, err := paramValue(raw)
			if err != nil {
				return nil, err
			}
			named[name] = v
		}
	}
	if named == nil {
		return positional, nil
	}
	if positional != nil {
		return nil, fmt.Errorf("%w: positional and named parameters mixed", errInvalidRequest)
	}
	names := make([]string, 0, len(named))
	for k := range named {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]api.Param, len(names))
	for i, n := range names {
		out[i] = api.Param{Name: n, Value: named[n]}
	}
	return out, nil
}

// paramValue converts one decoded JSON value into an api.Value.
func paramValue(v any) (api.Value, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		return x, nil
	case string:
		if b, ok := hexBlob(x); ok {
			return b, nil
		}
		return x, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: number %s out of range", errUnsupportedType, x)
		}
		return f, nil
	case []any:
		b := make([]byte, len(x))
		for i, e := range x {
			n, ok := e.(json.Number)
			if !ok {
				return nil, fmt.Errorf("%w: array elements must be byte values 0-255", errUnsupportedType)
			}
			u, err := strconv.ParseUint(string(n), 10, 8)
			if err != nil {
				return nil, fmt.Errorf("%w: array elements must be byte values 0-255", errUnsupportedType)
			}
			b[i] = byte(u)
		}
		return b, nil
	case map[string]any:
		return nil, fmt.Errorf("%w: nested object", errUnsupportedType)
	default:
		return nil, errUnsupportedType
	}
}

// hexBlob recognises SQLite's BLOB literal syntax x'ABCD' (or X'...') and
// decodes it.
func hexBlob(s string) ([]byte, bool) {
	if len(s) < 3 || (s[0] != 'x' && s[0] != 'X') || s[1] != '\'' || s[len(s)-1] != '\'' {
		return nil, false
	}
	h := s[2 : len(s)-1]
	if len(h)%2 != 0 {
		return nil, false
	}
	b := make([]byte, len(h)/2)
	if _, err := hex.Decode(b, []byte(h)); err != nil {
		return nil, false
	}
	return b, true
}
