package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/raftlite/raftlite/api"
)

// commandVersion is the first byte of every encoded Command. Raft logs and
// snapshots outlive binaries, so a node must recognise entries written by an
// older (or refuse those written by a newer) encoder: a format change bumps
// this number and DecodeCommand keeps reading every older version.
const commandVersion = 1

// Value tags of the encoding. Part of the log format: never renumber.
const (
	tagNull   = 0
	tagInt    = 1
	tagFloat  = 2
	tagFalse  = 3
	tagTrue   = 4
	tagString = 5
	tagBytes  = 6
)

// Presence and flag bits of the encoding. Part of the log format.
const (
	hasRequest  = 1 << 0
	hasNode     = 1 << 1
	hasRequests = 1 << 2
	hasChunk    = 1 << 3
	hasIndex    = 1 << 4

	flagTransaction = 1 << 0
	flagReadOnly    = 1 << 1
)

// ErrBadCommand is wrapped by every DecodeCommand error.
var ErrBadCommand = errors.New("bad command encoding")

// EncodeCommand encodes c for the Raft log. The format (version 1) is:
//
//	version byte | type byte | timestamp varint | seed uvarint | presence byte
//	[request]: flags byte | client id string | seq uvarint | n uvarint | n × statement
//	[node]:    id string | api addr string
//	[requests] (CmdBatch): n uvarint | n × request as above
//	[chunk]    (CmdChunk): id uvarint | part uvarint | total uvarint | data string
//	[index]:   compact index uvarint (CmdCompactWatch)
//	(CmdChecksum has none: presence 0)
//	statement: sql string | n uvarint | n × (name string | value)
//	string:    length uvarint | bytes
//	value:     tag byte | payload (varint int64, 8-byte LE float64 bits, or string)
//
// It is compact (an INSERT costs its SQL text plus a few bytes) and needs no
// reflection. Params must hold only the Value types (nil, int64, float64,
// bool, string, []byte); anything else is an error rather than a silent
// conversion, because every replica must bind exactly the same value.
func EncodeCommand(c *Command) ([]byte, error) {
	if c == nil {
		return nil, errors.New("encode command: nil command")
	}
	var presence byte
	switch c.Type {
	case CmdExecute:
		if c.Request == nil {
			return nil, errors.New("encode command: execute without request")
		}
		presence = hasRequest
	case CmdChecksum:
	case CmdCompactWatch:
		presence = hasIndex
	case CmdSetNode, CmdRemoveNode:
		if c.Node == nil {
			return nil, fmt.Errorf("encode command: type %d without node", c.Type)
		}
		presence = hasNode
	case CmdBatch:
		if len(c.Requests) == 0 || slices.Contains(c.Requests, nil) {
			return nil, errors.New("encode command: batch without requests")
		}
		presence = hasRequests
	case CmdChunk:
		if c.Chunk == nil || c.Chunk.Total < 2 || c.Chunk.Part >= c.Chunk.Total {
			return nil, errors.New("encode command: chunk without a part of at least two")
		}
		presence = hasChunk
	default:
		return nil, fmt.Errorf("encode command: unknown type %d", c.Type)
	}

	b := make([]byte, 0, encodedSizeHint(c))
	b = append(b, commandVersion, byte(c.Type))
	b = binary.AppendVarint(b, c.Timestamp)
	b = binary.AppendUvarint(b, c.Seed)
	b = append(b, presence)
	if presence&hasRequest != 0 {
		var err error
		if b, err = appendRequest(b, c.Request); err != nil {
			return nil, fmt.Errorf("encode command: %w", err)
		}
	}
	if presence&hasNode != 0 {
		b = appendString(b, c.Node.ID)
		b = appendString(b, c.Node.APIAddr)
	}
	if presence&hasRequests != 0 {
		b = binary.AppendUvarint(b, uint64(len(c.Requests)))
		for j, r := range c.Requests {
			var err error
			if b, err = appendRequest(b, r); err != nil {
				return nil, fmt.Errorf("encode command: request %d: %w", j, err)
			}
		}
	}
	if presence&hasChunk != 0 {
		b = binary.AppendUvarint(b, c.Chunk.ID)
		b = binary.AppendUvarint(b, uint64(c.Chunk.Part))
		b = binary.AppendUvarint(b, uint64(c.Chunk.Total))
		b = binary.AppendUvarint(b, uint64(len(c.Chunk.Data)))
		b = append(b, c.Chunk.Data...)
	}
	if presence&hasIndex != 0 {
		b = binary.AppendUvarint(b, c.CompactIndex)
	}
	return b, nil
}

// encodedSizeHint estimates the encoded size so that encoding allocates once
// in the common case.
func encodedSizeHint(c *Command) int {
	n := 32
	if c.Request != nil {
		n += RequestSize(c.Request)
	}
	for _, r := range c.Requests {
		n += RequestSize(r)
	}
	if c.Chunk != nil {
		n += len(c.Chunk.Data) + 32
	}
	if c.Node != nil {
		n += len(c.Node.ID) + len(c.Node.APIAddr) + 4
	}
	return n
}

// RequestSize bounds what r adds to an encoded command.
func RequestSize(r *api.Request) int {
	const fields = 24 // flags, the lengths of client id and statements, seq
	return fields + len(r.ClientID) + StatementsSize(r.Statements)
}

// StatementsSize bounds what stmts add to an encoded command: every length
// and number is counted at its longest varint. Callers that gather several
// requests into one entry use it to keep the entry under a size limit.
func StatementsSize(stmts []api.Statement) int {
	const varint = 10 // the longest uvarint
	n := 0
	for _, s := range stmts {
		n += len(s.SQL) + 2*varint
		for _, p := range s.Params {
			n += len(p.Name) + 3*varint
			switch v := p.Value.(type) {
			case string:
				n += len(v)
			case []byte:
				n += len(v)
			}
		}
	}
	return n
}

func appendRequest(b []byte, r *api.Request) ([]byte, error) {
	b = append(b, requestFlags(r))
	b = appendString(b, r.ClientID)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendUvarint(b, uint64(len(r.Statements)))
	for i := range r.Statements {
		var err error
		if b, err = appendStatement(b, &r.Statements[i]); err != nil {
			return nil, fmt.Errorf("statement %d %w", i, err)
		}
	}
	return b, nil
}

// requestFlags returns the request's flags byte.
func requestFlags(r *api.Request) byte {
	var flags byte
	if r.Transaction {
		flags |= flagTransaction
	}
	if r.ReadOnly {
		flags |= flagReadOnly
	}
	return flags
}

// appendStatement appends one statement's encoding.
func appendStatement(b []byte, s *api.Statement) ([]byte, error) {
	b = appendString(b, s.SQL)
	b = binary.AppendUvarint(b, uint64(len(s.Params)))
	for j, p := range s.Params {
		b = appendString(b, p.Name)
		var err error
		if b, err = appendValue(b, p.Value); err != nil {
			return nil, fmt.Errorf("parameter %d: %w", j, err)
		}
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendValue(b []byte, v api.Value) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, tagNull), nil
	case int64:
		return binary.AppendVarint(append(b, tagInt), v), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, tagFloat), math.Float64bits(v)), nil
	case bool:
		if v {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case string:
		return appendString(append(b, tagString), v), nil
	case []byte:
		b = append(b, tagBytes)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...), nil
	default:
		return nil, fmt.Errorf("unsupported value type %T", v)
	}
}

// DecodeCommand decodes an entry written by EncodeCommand. It never panics:
// any malformed input, including an unknown version, type or tag, a length
// past the end, or trailing bytes, yields an error wrapping ErrBadCommand.
// Byte-slice values are copies, so the result does not alias b.
func DecodeCommand(b []byte) (*Command, error) {
	d := decoder{b: b}
	c, err := d.command()
	if err != nil {
		return nil, fmt.Errorf("decode command: %w: %w", ErrBadCommand, err)
	}
	return c, nil
}

// decoder reads the encoding from b. Every read checks the remaining length
// first, and every count is checked against the bytes left (each element
// takes at least one byte), so garbage cannot make it allocate more than a
// small multiple of len(b).
type decoder struct {
	b   []byte
	off int
}

func (d *decoder) command() (*Command, error) {
	v, err := d.byte()
	if err != nil {
		return nil, err
	}
	if v != commandVersion {
		return nil, fmt.Errorf("unsupported version %d", v)
	}
	t, err := d.byte()
	if err != nil {
		return nil, err
	}
	c := &Command{Type: CommandType(t)}
	if c.Timestamp, err = d.varint(); err != nil {
		return nil, err
	}
	if c.Seed, err = d.uvarint(); err != nil {
		return nil, err
	}
	presence, err := d.byte()
	if err != nil {
		return nil, err
	}
	var want byte
	switch c.Type {
	case CmdExecute:
		want = hasRequest
	case CmdSetNode, CmdRemoveNode:
		want = hasNode
	case CmdCompactWatch:
		want = hasIndex
	case CmdChecksum:
	case CmdBatch:
		want = hasRequests
	case CmdChunk:
		want = hasChunk
	default:
		return nil, fmt.Errorf("unknown command type %d", t)
	}
	if presence != want {
		return nil, fmt.Errorf("command type %d with presence bits %#x", t, presence)
	}
	if presence&hasRequest != 0 {
		if c.Request, err = d.request(); err != nil {
			return nil, err
		}
	}
	if presence&hasNode != 0 {
		n := &NodeMeta{}
		if n.ID, err = d.string(); err != nil {
			return nil, err
		}
		if n.APIAddr, err = d.string(); err != nil {
			return nil, err
		}
		c.Node = n
	}
	if presence&hasRequests != 0 {
		n, err := d.count()
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, errors.New("batch without requests")
		}
		c.Requests = make([]*api.Request, n)
		for j := range c.Requests {
			if c.Requests[j], err = d.request(); err != nil {
				return nil, err
			}
		}
	}
	if presence&hasChunk != 0 {
		if c.Chunk, err = d.chunk(); err != nil {
			return nil, err
		}
	}
	if presence&hasIndex != 0 {
		if c.CompactIndex, err = d.uvarint(); err != nil {
			return nil, err
		}
	}
	if d.off != len(d.b) {
		return nil, fmt.Errorf("%d trailing bytes", len(d.b)-d.off)
	}
	return c, nil
}

func (d *decoder) request() (*api.Request, error) {
	flags, err := d.byte()
	if err != nil {
		return nil, err
	}
	if flags&^(flagTransaction|flagReadOnly) != 0 {
		return nil, fmt.Errorf("unknown request flags %#x", flags)
	}
	r := &api.Request{Transaction: flags&flagTransaction != 0, ReadOnly: flags&flagReadOnly != 0}
	if r.ClientID, err = d.string(); err != nil {
		return nil, err
	}
	if r.Seq, err = d.uvarint(); err != nil {
		return nil, err
	}
	n, err := d.count()
	if err != nil {
		return nil, err
	}
	if n > 0 {
		r.Statements = make([]api.Statement, n)
	}
	for i := range r.Statements {
		s := &r.Statements[i]
		if s.SQL, err = d.string(); err != nil {
			return nil, err
		}
		np, err := d.count()
		if err != nil {
			return nil, err
		}
		if np > 0 {
			s.Params = make([]api.Param, np)
		}
		for j := range s.Params {
			if s.Params[j].Name, err = d.string(); err != nil {
				return nil, err
			}
			if s.Params[j].Value, err = d.value(); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

func (d *decoder) chunk() (*Chunk, error) {
	id, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	part, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	total, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	if total < 2 || total > math.MaxUint32 || part >= total {
		return nil, fmt.Errorf("chunk part %d of %d", part, total)
	}
	data, err := d.bytes()
	if err != nil {
		return nil, err
	}
	return &Chunk{ID: id, Part: uint32(part), Total: uint32(total), Data: append([]byte(nil), data...)}, nil
}

func (d *decoder) value() (api.Value, error) {
	tag, err := d.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagNull:
		return nil, nil
	case tagInt:
		return d.varint()
	case tagFloat:
		if len(d.b)-d.off < 8 {
			return nil, errors.New("truncated float")
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.off:]))
		d.off += 8
		return v, nil
	case tagFalse:
		return false, nil
	case tagTrue:
		return true, nil
	case tagString:
		return d.string()
	case tagBytes:
		p, err := d.bytes()
		if err != nil {
			return nil, err
		}
		return append([]byte{}, p...), nil
	default:
		return nil, fmt.Errorf("unknown value tag %d", tag)
	}
}

func (d *decoder) byte() (byte, error) {
	if d.off >= len(d.b) {
		return 0, errors.New("truncated")
	}
	v := d.b[d.off]
	d.off++
	return v, nil
}

func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		return 0, errors.New("bad uvarint")
	}
	d.off += n
	return v, nil
}

func (d *decoder) varint() (int64, error) {
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		return 0, errors.New("bad varint")
	}
	d.off += n
	return v, nil
}

// count reads an element count and rejects one larger than the bytes left.
func (d *decoder) count() (int, error) {
	n, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.b)-d.off) {
		return 0, fmt.Errorf("count %d exceeds remaining %d bytes", n, len(d.b)-d.off)
	}
	return int(n), nil
}

func (d *decoder) bytes() ([]byte, error) {
	n, err := d.count()
	if err != nil {
		return nil, err
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p, nil
}

func (d *decoder) string() (string, error) {
	p, err := d.bytes()
	return string(p), err
}

// isLastChunk reports whether data encodes the last part of a command in
// parts, reading only the header and the part numbers (not the part's
// data).
func isLastChunk(data []byte) bool {
	if len(data) < 2 || data[0] != commandVersion || CommandType(data[1]) != CmdChunk {
		return false
	}
	d := &decoder{b: data, off: 2}
	if _, err := d.varint(); err != nil { // timestamp
		return false
	}
	if _, err := d.uvarint(); err != nil { // seed
		return false
	}
	if presence, err := d.byte(); err != nil || presence != hasChunk {
		return false
	}
	if _, err := d.uvarint(); err != nil { // id
		return false
	}
	part, err := d.uvarint()
	if err != nil {
		return false
	}
	total, err := d.uvarint()
	return err == nil && part+1 == total
}
