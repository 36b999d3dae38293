package shell

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"strings"

	"github.com/mattn/go-runewidth"
)

// outputMode is how query results are printed (.mode).
type outputMode string

const (
	modeTable    outputMode = "table"
	modeCSV      outputMode = "csv"
	modeJSON     outputMode = "json"
	modeLine     outputMode = "line"
	modeMarkdown outputMode = "markdown"
)

var outputModes = []outputMode{modeTable, modeCSV, modeJSON, modeLine, modeMarkdown}

func parseMode(s string) (outputMode, bool) {
	switch strings.ToLower(s) {
	case "lines":
		return modeLine, true
	case "md":
		return modeMarkdown, true
	}
	for _, m := range outputModes {
		if strings.EqualFold(s, string(m)) {
			return m, true
		}
	}
	return "", false
}

// resultSet is a query result to print.
type resultSet struct {
	columns []string
	rows    [][]any
}

// renderOptions are the .mode, .headers and .nullvalue settings and the
// width tables must fit (0: no limit).
type renderOptions struct {
	mode    outputMode
	headers bool
	// null is the text of NULL in the text modes; nullSet says whether the
	// user chose it (csv shows NULL as an empty field unless they did).
	null    string
	nullSet bool
	width   int
}

// cellWidth measures display columns of UTF-8 text, treating East Asian
// ambiguous characters as narrow whatever the locale, so output is the same
// everywhere.
var cellWidth = &runewidth.Condition{EastAsianWidth: false}

// ellipsis marks a value cut to fit the terminal.
const ellipsis = "…"

// render prints rs in the chosen mode.
func render(w io.Writer, rs resultSet, o renderOptions) error {
	bw := bufio.NewWriter(w)
	switch o.mode {
	case modeCSV:
		renderCSV(bw, rs, o)
	case modeJSON:
		renderJSON(bw, rs)
	case modeLine:
		renderLine(bw, rs, o)
	case modeMarkdown:
		renderMarkdown(bw, rs, o)
	default:
		renderTable(bw, rs, o)
	}
	return bw.Flush()
}

// textCell is the one-line text of a value in table-like modes.
func (o renderOptions) textCell(v any) string {
	if v == nil {
		return o.null
	}
	return escapeControl(formatValue(v))
}

// numericColumns marks the columns whose non-NULL values are all numbers
// (and that have at least one): they are right-aligned.
func numericColumns(rs resultSet) []bool {
	num := make([]bool, len(rs.columns))
	for c := range rs.columns {
		seen := false
		num[c] = true
		for _, row := range rs.rows {
			if c >= len(row) || row[c] == nil {
				continue
			}
			seen = true
			if !isNumber(row[c]) {
				num[c] = false
				break
			}
		}
		num[c] = num[c] && seen
	}
	return num
}

// cells formats every value of rs as one-line text.
func cells(rs resultSet, o renderOptions) [][]string {
	out := make([][]string, len(rs.rows))
	for r, row := range rs.rows {
		out[r] = make([]string, len(rs.columns))
		for c := range rs.columns {
			if c < len(row) {
				out[r][c] = o.textCell(row[c])
			}
		}
	}
	return out
}

// naturalWidths is the display width each column needs.
func naturalWidths(header []string, body [][]string, withHeader bool) []int {
	widths := make([]int, len(header))
	for c, h := range header {
		if withHeader {
			widths[c] = cellWidth.StringWidth(h)
		}
		for _, row := range body {
			widths[c] = max(widths[c], cellWidth.StringWidth(row[c]))
		}
	}
	return widths
}

// fitWidths shrinks column widths so a table with borders fits in total
// display columns: the widest columns give way first (each keeps at least 3
// columns, or its natural width if that is less), and what is left is shared
// out again. When even that does not fit, the minimum widths are returned.
func fitWidths(natural []int, total int) []int {
	n := len(natural)
	avail := total - (3*n + 1)
	sum := 0
	for _, w := range natural {
		sum += w
	}
	if sum <= avail {
		return natural
	}
	floor := func(i int) int { return min(natural[i], 3) }
	widthsAt := func(capW int) ([]int, int) {
		ws := make([]int, n)
		s := 0
		for i, w := range natural {
			ws[i] = min(w, max(capW, floor(i)))
			s += ws[i]
		}
		return ws, s
	}
	// The largest cap at which everything fits.
	lo, hi := 0, 0
	for _, w := range natural {
		hi = max(hi, w)
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if _, s := widthsAt(mid); s <= avail {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	ws, s := widthsAt(lo)
	for i := 0; i < n && s < avail; i++ {
		if ws[i] < natural[i] {
			ws[i]++
			s++
		}
	}
	return ws
}

// fit cuts s to w display columns, ending it with an ellipsis when cut, and
// pads it to exactly w columns.
func fit(s string, w int, right bool) string {
	if cellWidth.StringWidth(s) > w {
		s = cellWidth.Truncate(s, w, ellipsis)
	}
	if right {
		return cellWidth.FillLeft(s, w)
	}
	return cellWidth.FillRight(s, w)
}

// renderTable prints an ASCII table:
//
//	+----+-------+
//	| id | name  |
//	+----+-------+
//	|  1 | fiona |
//	+----+-------+
func renderTable(w *bufio.Writer, rs resultSet, o renderOptions) {
	body := cells(rs, o)
	widths := naturalWidths(rs.columns, body, o.headers)
	if o.width > 0 {
		widths = fitWidths(widths, o.width)
	}
	num := numericColumns(rs)
	border := func() {
		w.WriteByte('+')
		for _, cw := range widths {
			w.WriteString(strings.Repeat("-", cw+2))
			w.WriteByte('+')
		}
		w.WriteByte('\n')
	}
	row := func(vals []string, header bool) {
		w.WriteByte('|')
		for c, v := range vals {
			w.WriteByte(' ')
			w.WriteString(fit(v, widths[c], num[c] && !header))
			w.WriteString(" |")
		}
		w.WriteByte('\n')
	}
	border()
	if o.headers {
		row(rs.columns, true)
		border()
	}
	for _, r := range body {
		row(r, false)
	}
	if len(body) > 0 || !o.headers {
		border()
	}
}

// renderMarkdown prints a GitHub-flavoured Markdown table; it always has a
// header row, as Markdown requires, and is never cut to the terminal.
func renderMarkdown(w *bufio.Writer, rs resultSet, o renderOptions) {
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	header := make([]string, len(rs.columns))
	for c, h := range rs.columns {
		header[c] = esc(h)
	}
	body := cells(rs, o)
	for _, r := range body {
		for c := range r {
			r[c] = esc(r[c])
		}
	}
	widths := naturalWidths(header, body, true)
	for c := range widths {
		widths[c] = max(widths[c], 3) // room for the "---" of the separator
	}
	num := numericColumns(rs)
	line := func(vals []string, header bool) {
		w.WriteByte('|')
		for c, v := range vals {
			w.WriteByte(' ')
			w.WriteString(fit(v, widths[c], num[c] && !header))
			w.WriteString(" |")
		}
		w.WriteByte('\n')
	}
	line(header, true)
	w.WriteByte('|')
	for c, cw := range widths {
		if num[c] {
			w.WriteString(" " + strings.Repeat("-", cw-1) + ": |")
		} else {
			w.WriteString(" " + strings.Repeat("-", cw) + " |")
		}
	}
	w.WriteByte('\n')
	for _, r := range body {
		line(r, false)
	}
}

// renderLine prints one "column = value" line per value, a blank line
// between rows, column names right-aligned.
func renderLine(w *bufio.Writer, rs resultSet, o renderOptions) {
	nameW := 0
	for _, c := range rs.columns {
		nameW = max(nameW, cellWidth.StringWidth(c))
	}
	for r, row := range rs.rows {
		if r > 0 {
			w.WriteByte('\n')
		}
		for c, name := range rs.columns {
			var v any
			if c < len(row) {
				v = row[c]
			}
			w.WriteString(cellWidth.FillLeft(name, nameW))
			w.WriteString(" = ")
			if v == nil {
				w.WriteString(o.null)
			} else {
				w.WriteString(formatValue(v))
			}
			w.WriteByte('\n')
		}
	}
}

// renderCSV prints RFC 4180 CSV, a header record first with .headers on.
// NULL is an empty field unless .nullvalue chose a text for it.
func renderCSV(w *bufio.Writer, rs resultSet, o renderOptions) {
	cw := csv.NewWriter(w)
	if o.headers {
		cw.Write(rs.columns)
	}
	rec := make([]string, len(rs.columns))
	for _, row := range rs.rows {
		for c := range rec {
			rec[c] = ""
			switch {
			case c >= len(row):
			case row[c] == nil:
				if o.nullSet {
					rec[c] = o.null
				}
			default:
				rec[c] = formatValue(row[c])
			}
		}
		cw.Write(rec)
	}
	cw.Flush()
}

// renderJSON prints the rows as a JSON array of objects, keys in column
// order, one row per line. NULL is null, a BLOB its x'..' literal as a
// string.
func renderJSON(w *bufio.Writer, rs resultSet) {
	w.WriteByte('[')
	for r, row := range rs.rows {
		if r > 0 {
			w.WriteString(",\n")
		}
		w.WriteByte('{')
		for c, name := range rs.columns {
			if c > 0 {
				w.WriteByte(',')
			}
			w.Write(jsonString(name))
			w.WriteByte(':')
			var v any
			if c < len(row) {
				v = row[c]
			}
			w.Write(jsonValue(v))
		}
		w.WriteByte('}')
	}
	w.WriteString("]\n")
}

func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func jsonValue(v any) []byte {
	switch v := v.(type) {
	case nil:
		return []byte("null")
	case int64, bool:
		return []byte(formatValue(v))
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return []byte("null")
		}
		return []byte(formatReal(v, -1))
	default:
		return jsonString(formatValue(v))
	}
}
