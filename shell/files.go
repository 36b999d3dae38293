package shell

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/raftlite/raftlite/client"
)

// maxReadDepth bounds .read files that read other files.
const maxReadDepth = 16

// writeFileAtomic writes data to a temporary file beside name and renames
// it into place, so a failed backup never leaves half a file.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (s *session) cmdBackup(ctx context.Context, args []string) error {
	data, err := s.c.Backup(ctx, client.BackupBinary)
	s.checkFailover()
	if err != nil {
		return &cmdError{"backup", err}
	}
	if err := writeFileAtomic(args[0], data); err != nil {
		return &cmdError{"backup", err}
	}
	s.info("backup: wrote %s to %s", plural(len(data), "byte"), args[0])
	return nil
}

func (s *session) cmdDump(ctx context.Context, args []string) error {
	data, err := s.c.Backup(ctx, client.BackupSQL)
	s.checkFailover()
	if err != nil {
		return &cmdError{"dump", err}
	}
	if len(args) == 1 {
		if err := writeFileAtomic(args[0], data); err != nil {
			return &cmdError{"dump", err}
		}
		s.info("dump: wrote %s to %s", plural(len(data), "byte"), args[0])
		return nil
	}
	_, err = s.out.Write(data)
	return err
}

func (s *session) cmdRestore(ctx context.Context, args []string) error {
	data, err := os.ReadFile(args[0])
	if err != nil {
		return &cmdError{"restore", err}
	}
	s.forgetSchema()
	resp, err := s.c.Load(ctx, data)
	s.checkFailover()
	if err != nil {
		return &cmdError{"restore", err}
	}
	if err := resp.Err(); err != nil {
		var se *client.StatementError
		if errors.As(err, &se) {
			return fmt.Errorf("restore: %s", se.Message)
		}
		return &cmdError{"restore", err}
	}
	s.info("restore: loaded %s", args[0])
	return nil
}

func (s *session) cmdRead(ctx context.Context, args []string) error {
	if s.readDepth >= maxReadDepth {
		return fmt.Errorf(".read: files nested more than %d deep", maxReadDepth)
	}
	f, err := os.Open(args[0])
	if err != nil {
		return &cmdError{".read", err}
	}
	defer f.Close()
	s.readDepth++
	defer func() { s.readDepth-- }()
	return s.runReader(ctx, f, &input{name: args[0], showLines: true})
}

func (s *session) cmdOutput(_ context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-" || args[0] == "stdout" {
		s.closeOutput()
		return nil
	}
	f, err := os.Create(args[0])
	if err != nil {
		return &cmdError{".output", err}
	}
	s.closeOutput()
	s.outFile, s.out = f, f
	return nil
}

// closeOutput ends an .output redirection.
func (s *session) closeOutput() {
	if s.outFile != nil {
		s.outFile.Close()
		s.outFile = nil
	}
	s.out = s.stdout
}

// cmdBoot loads the SQLite file FILE into a node that is the whole
// cluster, without the log (rqlite's .boot).
func (s *session) cmdBoot(ctx context.Context, args []string) error {
	data, err := os.ReadFile(args[0])
	if err != nil {
		return &cmdError{"boot", err}
	}
	err = s.c.Boot(ctx, data)
	s.checkFailover()
	if err != nil {
		return &cmdError{"boot", err}
	}
	s.info("Node booted successfully")
	return nil
}
