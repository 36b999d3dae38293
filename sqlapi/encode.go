package sqlapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/raftlite/raftlite/api"
)

// encodeOpts are the query parameters that change the response encoding.
type encodeOpts struct {
	pretty      bool
	timings     bool
	associative bool
	blobArray   bool
	// execRows adds "rows":null to execute-shaped results in associative
	// mode, as rqlite does on /db/request so that clients can tell the
	// shapes apart.
	execRows bool
}

// apiResponse is the top level of a /db/* answer.
type apiResponse struct {
	results   []api.Result
	err       string
	code      string
	time      float64 // seconds; written when timings
	raftIndex uint64  // written when non-zero
	seqNum    int64   // queue sequence number; written when non-zero
	dedup     bool
}

// appendResponse appends r as compact JSON:
// {"results":[...],"error":"...","code":"...","time":f,"raft_index":n,
// "sequence_number":n,"deduplicated":true}, each field but results
// omitted when empty.
func appendResponse(b []byte, r *apiResponse, o encodeOpts) []byte {
	b = append(b, `{"results":[`...)
	for i := range r.results {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendResult(b, &r.results[i], o)
	}
	b = append(b, ']')
	if r.err != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, r.err)
	}
	if r.code != "" {
		b = append(b, `,"code":`...)
		b = appendString(b, r.code)
	}
	if o.timings && r.time != 0 {
		b = append(b, `,"time":`...)
		b = appendFloat(b, r.time)
	}
	if r.raftIndex != 0 {
		b = append(b, `,"raft_index":`...)
		b = strconv.AppendUint(b, r.raftIndex, 10)
	}
	if r.seqNum != 0 {
		b = append(b, `,"sequence_number":`...)
		b = strconv.AppendInt(b, r.seqNum, 10)
	}
	if r.dedup {
		b = append(b, `,"deduplicated":true`...)
	}
	return append(b, '}')
}

// appendResult appends one statement's result in the shape its kind calls
// for: {"error":...}, the query shape or the execute shape.
func appendResult(b []byte, r *api.Result, o encodeOpts) []byte {
	b = append(b, '{')
	n := len(b)
	switch {
	case r.Error != "":
		b = append(b, `"error":`...)
		b = appendString(b, r.Error)
	case r.IsQuery() && o.associative:
		b = appendAssociative(b, r, o)
	case r.IsQuery():
		if len(r.Columns) > 0 {
			b = append(b, `"columns":`...)
			b = appendStrings(b, r.Columns)
		}
		if len(r.Types) > 0 {
			b = appendSep(b, n)
			b = append(b, `"types":`...)
			b = appendStrings(b, r.Types)
		}
		if len(r.Rows) > 0 {
			b = appendSep(b, n)
			b = append(b, `"values":[`...)
			for i, row := range r.Rows {
				if i > 0 {
					b = append(b, ',')
				}
				if row == nil {
					b = append(b, "null"...)
					continue
				}
				b = append(b, '[')
				for j, v := range row {
					if j > 0 {
						b = append(b, ',')
					}
					b = appendValue(b, v, o.blobArray)
				}
				b = append(b, ']')
			}
			b = append(b, ']')
		}
	default:
		if r.LastInsertID != 0 {
			b = append(b, `"last_insert_id":`...)
			b = strconv.AppendInt(b, r.LastInsertID, 10)
		}
		if r.RowsAffected != 0 {
			b = appendSep(b, n)
			b = append(b, `"rows_affected":`...)
			b = strconv.AppendInt(b, r.RowsAffected, 10)
		}
	}
	if o.timings && r.Seconds != 0 {
		b = appendSep(b, n)
		b = append(b, `"time":`...)
		b = appendFloat(b, r.Seconds)
	}
	if o.associative && o.execRows && r.Error == "" && !r.IsQuery() {
		b = appendSep(b, n)
		b = append(b, `"rows":null`...)
	}
	return append(b, '}')
}

// appendAssociative appends the fields of the associative query shape:
// "types":{"col":"type"},"rows":[{"col":value}]. Keys are sorted and a
// repeated column name keeps its last value, as rqlite's map-based encoding
// does.
func appendAssociative(b []byte, r *api.Result, o encodeOpts) []byte {
	idx := make([]int, len(r.Columns))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return r.Columns[idx[i]] < r.Columns[idx[j]] })
	uniq := idx[:0]
	for i, c := range idx {
		if i+1 < len(idx) && r.Columns[idx[i+1]] == r.Columns[c] {
			continue // a later column of the same name wins
		}
		uniq = append(uniq, c)
	}
	if len(uniq) > 0 {
		b = append(b, `"types":{`...)
		for i, c := range uniq {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, r.Columns[c])
			b = append(b, ':')
			t := ""
			if c < len(r.Types) {
				t = r.Types[c]
			}
			b = appendString(b, t)
		}
		b = append(b, "},"...)
	}
	b = append(b, `"rows":[`...)
	for i, row := range r.Rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		for j, c := range uniq {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendString(b, r.Columns[c])
			b = append(b, ':')
			var v api.Value
			if c < len(row) {
				v = row[c]
			}
			b = appendValue(b, v, o.blobArray)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendSep appends a comma unless nothing was written since start.
func appendSep(b []byte, start int) []byte {
	if len(b) > start {
		return append(b, ',')
	}
	return b
}

// appendValue appends one SQL value: null, a number, true/false, a string,
// or a BLOB as a base64 string (or an array of byte values with
// blobArray).
func appendValue(b []byte, v api.Value, blobArray bool) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		return appendFloat(b, x)
	case bool:
		return strconv.AppendBool(b, x)
	case string:
		return appendString(b, x)
	case []byte:
		if blobArray {
			b = append(b, '[')
			for i, c := range x {
				if i > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendUint(b, uint64(c), 10)
			}
			return append(b, ']')
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, '"')
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int32:
		return strconv.AppendInt(b, int64(x), 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case float32:
		return appendFloat(b, float64(x))
	default:
		// Not one of api.Value's types: fall back to encoding/json so that
		// the answer stays valid JSON.
		enc, err := json.Marshal(x)
		if err != nil {
			return append(b, "null"...)
		}
		return append(b, enc...)
	}
}

// appendFloat formats f as encoding/json does (so 2.0 is 2, 1e-7 is 1e-7).
// JSON has no NaN or infinities: they become null.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-07 -> e-7, as encoding/json writes it.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does with
// HTML escaping off: control characters, quote and backslash escaped,
// invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendRequestBody appends stmts as a JSON request body that
// ParseStatements reads back into the same statements (used to forward
// queued batches). A REAL is always written with a '.' or an exponent so
// that it is not read back as an INTEGER. NaN and infinities, which JSON
// cannot carry, are written as null.
func appendRequestBody(b []byte, stmts []api.Statement) []byte {
	b = append(b, '[')
	for i, st := range stmts {
		if i > 0 {
			b = append(b, ',')
		}
		if len(st.Params) == 0 {
			b = appendString(b, st.SQL)
			continue
		}
		b = append(b, '[')
		b = appendString(b, st.SQL)
		if st.Params[0].Name != "" {
			b = append(b, ",{"...)
			for j, p := range st.Params {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendString(b, p.Name)
				b = append(b, ':')
				b = appendParamValue(b, p.Value)
			}
			b = append(b, '}')
		} else {
			for _, p := range st.Params {
				b = append(b, ',')
				b = appendParamValue(b, p.Value)
			}
		}
		b = append(b, ']')
	}
	return append(b, ']')
}

func appendParamValue(b []byte, v api.Value) []byte {
	switch x := v.(type) {
	case float64:
		n := len(b)
		b = appendFloat(b, x)
		if !bytes.ContainsAny(b[n:], ".en") { // "n" of null
			b = append(b, ".0"...)
		}
		return b
	case []byte:
		return appendValue(b, x, true)
	default:
		return appendValue(b, x, false)
	}
}

// bufPool recycles response buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 1<<20 {
		return // do not keep huge buffers alive
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// indent re-indents compact JSON with four spaces, as rqlite's ?pretty.
func indent(compact []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(compact) * 2)
	if err := json.Indent(&out, compact, "", "    "); err != nil {
		return compact
	}
	return out.Bytes()
}
