package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// encodeStatements encodes a request body: a JSON array with one element per
// statement, a plain string when the statement has no parameters,
// [sql, p1, p2...] with positional parameters, [sql, {name: value}] with
// named ones.
func encodeStatements(stmts []Statement) ([]byte, error) {
	if len(stmts) == 0 {
		return nil, errNoStatements
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range stmts {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := appendStatement(&buf, &stmts[i]); err != nil {
			return nil, fmt.Errorf("raftlite client: statement %d: %w", i, err)
		}
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}

func appendStatement(buf *bytes.Buffer, s *Statement) error {
	if strings.TrimSpace(s.SQL) == "" {
		return errors.New("empty SQL")
	}
	if len(s.Args) > 0 && len(s.NamedArgs) > 0 {
		return errors.New("both positional and named parameters")
	}
	if len(s.Args) == 0 && len(s.NamedArgs) == 0 {
		return appendString(buf, s.SQL)
	}
	buf.WriteByte('[')
	if err := appendString(buf, s.SQL); err != nil {
		return err
	}
	if len(s.Args) > 0 {
		for i, v := range s.Args {
			buf.WriteByte(',')
			if err := appendValue(buf, v); err != nil {
				return fmt.Errorf("parameter %d: %w", i+1, err)
			}
		}
		buf.WriteByte(']')
		return nil
	}
	// Named parameters, in a stable order, keyed without their prefix.
	names := make([]string, 0, len(s.NamedArgs))
	byName := make(map[string]any, len(s.NamedArgs))
	for k, v := range s.NamedArgs {
		name := strings.TrimLeft(k, ":@$")
		if name == "" {
			return fmt.Errorf("parameter name %q is empty", k)
		}
		if _, dup := byName[name]; dup {
			return fmt.Errorf("parameter %q given twice", name)
		}
		byName[name] = v
		names = append(names, name)
	}
	slices.Sort(names)
	buf.WriteString(",{")
	for i, name := range names {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := appendString(buf, name); err != nil {
			return err
		}
		buf.WriteByte(':')
		if err := appendValue(buf, byName[name]); err != nil {
			return fmt.Errorf("parameter %q: %w", name, err)
		}
	}
	buf.WriteString("}]")
	return nil
}

// appendString writes s as a JSON string. Invalid UTF-8 is refused: JSON
// would silently replace it, so binary data must travel as []byte.
func appendString(buf *bytes.Buffer, s string) error {
	if !utf8.ValidString(s) {
		return errors.New("string is not valid UTF-8 (send binary data as []byte)")
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	buf.Write(b)
	return nil
}

// appendValue writes one parameter value in the wire's encoding: integers as
// JSON integers (bound as INTEGER), floats always with a fraction or an
// exponent (bound as REAL even when integral), []byte as an array of byte
// values (bound as a BLOB).
func appendValue(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(x))
	case string:
		return appendString(buf, x)
	case []byte:
		appendBlob(buf, x)
	case int:
		buf.WriteString(strconv.FormatInt(int64(x), 10))
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
	case int32:
		buf.WriteString(strconv.FormatInt(int64(x), 10))
	case float64:
		return appendFloat(buf, x, 64)
	case json.Number:
		if !validNumber(string(x)) {
			return fmt.Errorf("invalid json.Number %q", string(x))
		}
		buf.WriteString(string(x))
	default:
		return appendReflect(buf, reflect.ValueOf(v))
	}
	return nil
}

// appendReflect handles the remaining integer and float widths, named types
// and pointers.
func appendReflect(buf *bytes.Buffer, rv reflect.Value) error {
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			buf.WriteString("null")
			return nil
		}
		return appendValue(buf, rv.Elem().Interface())
	case reflect.Bool:
		buf.WriteString(strconv.FormatBool(rv.Bool()))
	case reflect.String:
		return appendString(buf, rv.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		buf.WriteString(strconv.FormatInt(rv.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return fmt.Errorf("unsigned value %d does not fit in int64", u)
		}
		buf.WriteString(strconv.FormatUint(u, 10))
	case reflect.Float32:
		return appendFloat(buf, rv.Float(), 32)
	case reflect.Float64:
		return appendFloat(buf, rv.Float(), 64)
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			if rv.IsNil() {
				buf.WriteString("null")
				return nil
			}
			appendBlob(buf, rv.Bytes())
			return nil
		}
		return fmt.Errorf("unsupported parameter type %s", rv.Type())
	default:
		if !rv.IsValid() {
			buf.WriteString("null")
			return nil
		}
		return fmt.Errorf("unsupported parameter type %s", rv.Type())
	}
	return nil
}

func appendFloat(buf *bytes.Buffer, f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("float %v cannot be sent", f)
	}
	s := strconv.FormatFloat(f, 'g', -1, bits)
	buf.WriteString(s)
	if !strings.ContainsAny(s, ".eE") {
		buf.WriteString(".0")
	}
	return nil
}

func appendBlob(buf *bytes.Buffer, b []byte) {
	if b == nil {
		buf.WriteString("null")
		return
	}
	buf.WriteByte('[')
	for i, c := range b {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(strconv.Itoa(int(c)))
	}
	buf.WriteByte(']')
}

// validNumber reports whether s is a JSON number.
func validNumber(s string) bool {
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return false
	}
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil
}
