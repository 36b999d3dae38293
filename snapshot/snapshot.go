// Package snapshot defines raftlite's snapshot stream: the byte format in
// which a consistent copy of the SQLite database file travels through a
// raft.SnapshotSink and back.
//
// The package owns only that format: writing a stream from a database copy
// and reading one back into a new file, verifying it on the way. It does not
// know about Raft, SQLite or the live database: producing a consistent copy
// and swapping the restored file in belong to package fsm, and storing
// snapshots belongs to the raft.SnapshotStore the cluster package chose.
//
// A stream is
//
//	header  "RAFTLITE-SNAP" | version (1 byte) | index (8 bytes BE) | length (8 bytes BE)
//	body    one zstd stream holding the database file (length bytes)
//	        followed by a CRC-32C (4 bytes BE) of header and database bytes
//
// The checksum travels inside the compressed stream because a zstd decoder
// reads ahead of the end of its frame: a trailer after the compressed bytes
// could not be found reliably. The CRC-32C guards the whole stream end to
// end, header included, so a flipped bit in the index is caught as well;
// zstd's own frame checksum would check the same bytes a second time, so
// the writer leaves it out and the reader ignores it.
package snapshot

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// Magic opens every snapshot stream.
const Magic = "RAFTLITE-SNAP"

// Version is the stream format this package writes. Read rejects others.
const Version = 1

// headerSize is the length of the uncompressed header.
const headerSize = len(Magic) + 1 + 8 + 8

// maxWindow bounds the zstd window a reader accepts, and so the memory a
// corrupt or hostile stream can make it allocate. The writer's default level
// uses an 8 MiB window; the writer here uses encoderWindow.
const maxWindow = 64 << 20

// encoderWindow is the zstd window the writer uses: small, so that writing
// a snapshot (and a /db/load, which goes through the same path) costs a
// few MB of memory whatever the database's size. Database pages repeat
// little beyond a page or two, so a larger window gains almost nothing.
// The writer uses zstd's fastest level: on database pages it compresses
// about as well as the default level (2.04:1 both on half-random pages) at
// 1.5-3x the speed, and compression is the CPU cost of every snapshot.
const encoderWindow = 1 << 20

// readBuffer is the read buffer in front of the decompressor.
const readBuffer = 256 << 10

// ErrCorrupt is wrapped by every error Read returns for a stream that is not
// a well-formed snapshot: bad magic, unknown version, truncation, checksum
// mismatch or trailing data.
var ErrCorrupt = errors.New("corrupt snapshot")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header describes a snapshot stream.
type Header struct {
	// Version is the stream format version.
	Version uint8
	// Index is the state machine's applied index that the database copy
	// reflects (not necessarily Raft's snapshot index, which may be higher
	// when entries the state machine never sees, such as no-ops, follow).
	Index uint64
	// Length is the size of the database file in bytes.
	Length uint64
}

func (h Header) encode() []byte {
	b := make([]byte, 0, headerSize)
	b = append(b, Magic...)
	b = append(b, h.Version)
	b = binary.BigEndian.AppendUint64(b, h.Index)
	return binary.BigEndian.AppendUint64(b, h.Length)
}

// WriteFile writes the database file at path, which must not change while it
// is read, as a snapshot stream at index.
func WriteFile(w io.Writer, path string, index uint64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("write snapshot %d: %w", index, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("write snapshot %d: %w", index, err)
	}
	return Write(w, f, st.Size(), index)
}

// Write writes size bytes read from src as a snapshot stream at index. It
// fails if src holds fewer or more than size bytes, so a database copy that
// changed under it is not sent as if it were whole.
func Write(w io.Writer, src io.Reader, size int64, index uint64) error {
	if size < 0 {
		return fmt.Errorf("write snapshot %d: negative size %d", index, size)
	}
	h := Header{Version: Version, Index: index, Length: uint64(size)}
	hdr := h.encode()
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("write snapshot %d header: %w", index, err)
	}
	crc := crc32.New(castagnoli)
	crc.Write(hdr)

	// One encoder goroutine keeps memory bounded and predictable; snapshot
	// throughput is bounded by the disk and the network anyway.
	zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(encoderWindow), zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	if err != nil {
		return fmt.Errorf("write snapshot %d: %w", index, err)
	}
	n, err := io.Copy(io.MultiWriter(zw, crc), src)
	if err == nil && n != size {
		err = fmt.Errorf("database copy has %d bytes, expected %d", n, size)
	}
	if err == nil {
		// A longer source means the copy changed while being read.
		var one [1]byte
		if m, _ := io.ReadFull(src, one[:]); m != 0 {
			err = fmt.Errorf("database copy is longer than %d bytes", size)
		}
	}
	if err == nil {
		_, err = zw.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
	}
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write snapshot %d: %w", index, err)
	}
	return nil
}

// ReadHeader reads and validates a stream's header, consuming only the
// header's bytes. The cluster package uses it to learn which index a stored
// snapshot holds without decompressing it.
func ReadHeader(r io.Reader) (Header, error) {
	var b [headerSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Header{}, fmt.Errorf("read snapshot header: %w: %w", ErrCorrupt, err)
	}
	if !bytes.Equal(b[:len(Magic)], []byte(Magic)) {
		return Header{}, fmt.Errorf("read snapshot header: %w: bad magic", ErrCorrupt)
	}
	h := Header{
		Version: b[len(Magic)],
		Index:   binary.BigEndian.Uint64(b[len(Magic)+1:]),
		Length:  binary.BigEndian.Uint64(b[len(Magic)+9:]),
	}
	if h.Version != Version {
		return Header{}, fmt.Errorf("read snapshot header: %w: unsupported version %d", ErrCorrupt, h.Version)
	}
	return h, nil
}

// Read reads a snapshot stream from r into a new file at destPath, which it
// creates or truncates, and syncs it to disk. It returns the stream's header
// once the whole stream has been verified. On any error it removes destPath,
// so a partial or corrupt database is never left behind for the caller to
// mistake for a good one.
func Read(r io.Reader, destPath string) (Header, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return Header{}, err
	}
	if err := ReadBody(r, h, destPath); err != nil {
		return Header{}, err
	}
	if err := SyncFile(destPath); err != nil {
		os.Remove(destPath)
		return Header{}, fmt.Errorf("read snapshot %d: %w", h.Index, err)
	}
	return h, nil
}

// ReadBody is Read for a stream whose header h has already been read
// from r (by ReadHeader), except that it leaves syncing the file to the
// caller (SyncFile): a caller whose copy of the stream is durable already
// can let the decoded file reach the disk after it is put to use.
func ReadBody(r io.Reader, h Header, destPath string) (err error) {
	f, err := os.OpenFile(destPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("read snapshot %d: %w", h.Index, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("read snapshot %d: %w", h.Index, cerr)
		}
		if err != nil {
			os.Remove(destPath)
		}
	}()

	crc := crc32.New(castagnoli)
	crc.Write(h.encode())
	if err := readBody(r, f, h, crc); err != nil {
		return fmt.Errorf("read snapshot %d: %w", h.Index, err)
	}
	return nil
}

// readBody decompresses the body into w, checking length and checksum.
func readBody(r io.Reader, w io.Writer, h Header, crc hash.Hash32) error {
	// A large buffer: r is often a pipe from a network transfer
	// (cluster's snapshot store), where each read is a goroutine hand-off.
	zr, err := zstd.NewReader(bufio.NewReaderSize(r, readBuffer),
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderLowmem(true),
		zstd.IgnoreChecksum(true))
	if err != nil {
		return err
	}
	defer zr.Close()

	// Large writes: a database of hundreds of megabytes in io.Copy's
	// 32 KB would cost tens of thousands of system calls.
	n, err := io.CopyBuffer(io.MultiWriter(w, crc), io.LimitReader(zr, int64(h.Length)), make([]byte, readBuffer))
	if err != nil {
		var perr *os.PathError
		if errors.As(err, &perr) {
			return err // writing the file failed: not the stream's fault
		}
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if uint64(n) != h.Length {
		return fmt.Errorf("%w: truncated: %d of %d bytes", ErrCorrupt, n, h.Length)
	}
	var sum [4]byte
	if _, err := io.ReadFull(zr, sum[:]); err != nil {
		return fmt.Errorf("%w: missing checksum: %w", ErrCorrupt, err)
	}
	if got, want := binary.BigEndian.Uint32(sum[:]), crc.Sum32(); got != want {
		return fmt.Errorf("%w: checksum mismatch: stream says %08x, data has %08x", ErrCorrupt, got, want)
	}
	var extra [1]byte
	switch _, err := io.ReadFull(zr, extra[:]); err {
	case io.EOF:
		return nil
	case nil:
		return fmt.Errorf("%w: data after checksum", ErrCorrupt)
	default:
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
}
