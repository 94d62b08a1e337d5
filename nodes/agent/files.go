package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/amld/amld/api"
)

// maxSourceExtractBytes caps what a source snapshot may expand to.
const maxSourceExtractBytes = 1 << 30

var (
	// errEscapes marks a source snapshot entry that would land outside the
	// attempt's work dir.
	errEscapes = errors.New("escapes the work dir")
	// errTooLarge marks a download or an outputs tarball past its cap.
	errTooLarge = errors.New("too large")
)

// extractSource unpacks a gzip'd tar into dir. Entries with absolute names,
// names with "..", or links that point outside dir are rejected; devices,
// fifos and the like are skipped.
func extractSource(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("source snapshot is not gzip'd: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(gz)
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read source snapshot: %w", err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if name == "." || name == "" {
			continue
		}
		if !filepath.IsLocal(name) {
			return fmt.Errorf("source snapshot entry %q %w", hdr.Name, errEscapes)
		}
		perm := fs.FileMode(hdr.Mode) & fs.ModePerm
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, perm|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			total += hdr.Size
			if total > maxSourceExtractBytes {
				return fmt.Errorf("source snapshot expands to more than %d bytes", maxSourceExtractBytes)
			}
			if err := mkParent(root, name); err != nil {
				return err
			}
			f, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm|0o600)
			if err != nil {
				return err
			}
			_, err = io.CopyN(f, tr, hdr.Size)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("extract %s: %w", name, err)
			}
		case tar.TypeSymlink:
			target := hdr.Linkname
			if filepath.IsAbs(target) || !filepath.IsLocal(filepath.Join(filepath.Dir(name), target)) {
				return fmt.Errorf("source snapshot link %q -> %q %w", hdr.Name, target, errEscapes)
			}
			if err := mkParent(root, name); err != nil {
				return err
			}
			if err := root.Symlink(target, name); err != nil {
				return err
			}
		case tar.TypeLink:
			if !filepath.IsLocal(hdr.Linkname) {
				return fmt.Errorf("source snapshot link %q -> %q %w", hdr.Name, hdr.Linkname, errEscapes)
			}
			if err := mkParent(root, name); err != nil {
				return err
			}
			if err := root.Link(hdr.Linkname, name); err != nil {
				return err
			}
		}
	}
}

func mkParent(root *os.Root, name string) error {
	if d := filepath.Dir(name); d != "." {
		return root.MkdirAll(d, 0o755)
	}
	return nil
}

// capBuffer is a buffer that refuses to grow past limit bytes.
type capBuffer struct {
	bytes.Buffer
	limit int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		return 0, errTooLarge
	}
	return b.Buffer.Write(p)
}

// tarOutputs packs dir into a gzip'd tar whose names are relative to dir
// ("model.json", "plots/loss.png"). It returns nil data when dir holds
// nothing, and errTooLarge past limit bytes.
func tarOutputs(dir string, limit int) ([]byte, error) {
	buf := &capBuffer{limit: limit}
	gz := gzip.NewWriter(buf)
	tw := tar.NewWriter(gz)
	entries := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case !info.Mode().IsRegular() && !info.IsDir():
			return nil // sockets, fifos, devices
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		// Reading a file changes its atime: left out, the same files give
		// the same bytes (checkpoint uploads are skipped when unchanged).
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		entries++
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyN(tw, f, hdr.Size)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		return nil, err
	}
	if entries == 0 {
		return nil, nil
	}
	return buf.Bytes(), nil
}

// removeAll removes dir, first making writable any directory the command
// left read-only.
func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// record is what the agent keeps on disk about an attempt it started, so a
// restarted agent knows the attempt is not new.
type record struct {
	Key api.AttemptKey `json:"key"`
	// Done is true once the attempt ended on this node (or was fenced off).
	Done bool `json:"done,omitempty"`
	// Final is the last report, resent after a restart until acknowledged.
	Final *api.AttemptStatus `json:"final,omitempty"`
	// Runtime names the runtime that runs the command; a restarted agent
	// asks it to adopt the command when it can (docker).
	Runtime string `json:"runtime,omitempty"`
	// Started is when the command started, so that an adopted command
	// keeps its max_run_duration_seconds.
	Started time.Time `json:"started,omitzero"`
}

// records keeps attempt records in one directory.
type records struct{ dir string }

// path names k's record file; "" for a run ID that is no safe file name.
func (rs records) path(k api.AttemptKey) string {
	if !safeName(k.RunID) {
		return ""
	}
	return filepath.Join(rs.dir, fmt.Sprintf("%s.%d.%d.json", k.RunID, k.Attempt, k.NodeIndex))
}

// put writes rec, replacing any earlier record of its key.
func (rs records) put(rec record) error {
	p := rs.path(rec.Key)
	if p == "" {
		return fmt.Errorf("run ID %q is not a safe file name", rec.Key.RunID)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFileAtomic(p, b, 0o600)
}

// remove deletes k's record; a missing one is not an error.
func (rs records) remove(k api.AttemptKey) error {
	p := rs.path(k)
	if p == "" {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// load reads every record; unreadable files are returned as errors and
// skipped.
func (rs records) load() (map[api.AttemptKey]record, []error) {
	out := map[api.AttemptKey]record{}
	ents, err := os.ReadDir(rs.dir)
	if err != nil {
		return out, []error{err}
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() || path.Ext(e.Name()) != ".json" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(rs.dir, e.Name()))
		var rec record
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("attempt record %s: %w", e.Name(), err))
			continue
		}
		out[rec.Key] = rec
	}
	return out, errs
}

// writeFileAtomic writes b to name through a temporary file and a rename.
func writeFileAtomic(name string, b []byte, perm fs.FileMode) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, perm); err != nil {
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
