package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ignoreFile names the file in a source directory that lists what to leave
// out of the snapshot, in gitignore syntax.
const ignoreFile = ".amlignore"

// ignoreRule is one pattern line of an .amlignore.
type ignoreRule struct {
	negate  bool     // "!pattern": include again what an earlier rule left out
	dirOnly bool     // "pattern/": matches directories only
	segs    []string // path segments to match; "**" matches any number of them
}

// ignoreRules is a parsed .amlignore. The last rule that matches a path
// decides, as in git.
type ignoreRules []ignoreRule

// parseIgnore parses gitignore-style rules: blank lines and # comments are
// skipped; "dir/" matches directories only; a pattern with a slash at its
// start or middle is anchored to the source directory, one without matches
// at any depth; "*", "?" and "[...]" match within a segment, "**" across
// segments; "!" negates; "\#" and "\!" escape.
func parseIgnore(r io.Reader) (ignoreRules, error) {
	var rules ignoreRules
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		// Trailing spaces are ignored unless escaped with a backslash.
		for strings.HasSuffix(line, " ") && !strings.HasSuffix(line, `\ `) {
			line = line[:len(line)-1]
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var rule ignoreRule
		if strings.HasPrefix(line, "!") {
			rule.negate = true
			line = line[1:]
		} else if strings.HasPrefix(line, `\!`) || strings.HasPrefix(line, `\#`) {
			line = line[1:]
		}
		if strings.HasSuffix(line, "/") {
			rule.dirOnly = true
			line = strings.TrimRight(line, "/")
		}
		if line == "" {
			continue
		}
		anchored := strings.Contains(line, "/")
		line = strings.TrimPrefix(line, "/")
		for _, s := range strings.Split(line, "/") {
			if s == "" {
				continue // "a//b" is "a/b"
			}
			s = strings.ReplaceAll(s, "[!", "[^") // gitignore's class negation
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf("%s: bad pattern %q: %w", ignoreFile, sc.Text(), err)
			}
			rule.segs = append(rule.segs, s)
		}
		if !anchored {
			rule.segs = append([]string{"**"}, rule.segs...)
		}
		rules = append(rules, rule)
	}
	return rules, sc.Err()
}

// ignored reports whether rel (slash-separated, relative to the source
// directory) is left out. The caller checks parents first: a path inside a
// left-out directory is never reached.
func (rs ignoreRules) ignored(rel string, isDir bool) bool {
	segs := strings.Split(rel, "/")
	out := false
	for _, r := range rs {
		if r.dirOnly && !isDir {
			continue
		}
		if matchSegs(r.segs, segs) {
			out = !r.negate
		}
	}
	return out
}

// matchSegs matches path segments against pattern segments. A "**" matches
// any number of segments; a trailing "**" at least one ("dir/**" is what is
// inside dir, not dir itself).
func matchSegs(pat, segs []string) bool {
	if len(pat) == 0 {
		return len(segs) == 0
	}
	if pat[0] == "**" {
		if len(pat) == 1 {
			return len(segs) > 0
		}
		for i := 0; i <= len(segs); i++ {
			if matchSegs(pat[1:], segs[i:]) {
				return true
			}
		}
		return false
	}
	if len(segs) == 0 {
		return false
	}
	if ok, _ := path.Match(pat[0], segs[0]); !ok {
		return false
	}
	return matchSegs(pat[1:], segs[1:])
}

// sourceTarball is a source snapshot ready to upload.
type sourceTarball struct {
	Data    []byte
	Files   int
	Skipped []string // entries left out, with why (not .amlignore's work)
}

// errOverCap is wrapped by the error of a snapshot past the size cap.
var errOverCap = errors.New("source snapshot too large")

// buildSource makes a deterministic gzip'd tar of dir: entries in sorted
// order with zeroed times and owners, honouring dir/.amlignore and always
// leaving out .git. Only directories, regular files and symlinks that stay
// inside dir are kept; other entries are listed in Skipped. A snapshot past
// maxBytes (compressed) is an error naming its size, the cap and .amlignore.
func buildSource(dir string, maxBytes int64) (*sourceTarball, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("source %s is not a directory", dir)
	}
	var rules ignoreRules
	if f, err := os.Open(filepath.Join(dir, ignoreFile)); err == nil {
		rules, err = parseIgnore(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", dir, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("source: %w", err)
	}

	out := &capWriter{max: maxBytes}
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	res := &sourceTarball{}
	var total int64
	var files []sizedFile
	epoch := time.Unix(0, 0)

	walkErr := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.Name() == ".git" || rules.ignored(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: rel, ModTime: epoch, Mode: int64(info.Mode().Perm()), Format: tar.FormatPAX}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
		case info.Mode().IsRegular():
			hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
			total += info.Size()
			files = append(files, sizedFile{rel, info.Size()})
			res.Files++
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if !linkInside(rel, target) {
				res.Skipped = append(res.Skipped, rel+": symlink to "+target+" points outside the source directory")
				return nil
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, filepath.ToSlash(target)
		default:
			res.Skipped = append(res.Skipped, rel+": not a regular file, directory or symlink")
			return nil
		}
		if out.over {
			return nil // past the cap: only count sizes for the error
		}
		err = tw.WriteHeader(hdr)
		if err == nil && hdr.Typeflag == tar.TypeReg {
			err = copyFile(tw, p, hdr.Size)
		}
		if out.over {
			return nil // keep walking to size the rest for the error
		}
		return err
	})
	if walkErr != nil {
		return nil, fmt.Errorf("source %s: %w", dir, walkErr)
	}
	if err := tw.Close(); err != nil && !errors.Is(err, errOverCap) {
		return nil, err
	}
	if err := gz.Close(); err != nil && !errors.Is(err, errOverCap) {
		return nil, err
	}
	if out.over {
		return nil, overCapError(dir, total, maxBytes, files)
	}
	res.Data = out.buf.Bytes()
	return res, nil
}

// sizedFile is a file of a snapshot and its size, for the over-cap error.
type sizedFile struct {
	name string
	size int64
}

// overCapError explains a snapshot past the cap and how to shrink it.
func overCapError(dir string, total, maxBytes int64, files []sizedFile) error {
	sort.SliceStable(files, func(i, j int) bool { return files[i].size > files[j].size })
	var big []string
	for _, f := range files[:min(3, len(files))] {
		big = append(big, fmt.Sprintf("%s (%s)", f.name, humanBytes(f.size)))
	}
	return fmt.Errorf("%w: %s holds %s of files, more than the %s cap on a compressed snapshot (api.MaxSourceBytes); list what to leave out in %s (gitignore syntax); largest: %s",
		errOverCap, dir, humanBytes(total), humanBytes(maxBytes), filepath.Join(dir, ignoreFile), strings.Join(big, ", "))
}

// copyFile writes exactly size bytes of the file at p to w.
func copyFile(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(w, f, size); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s changed while being read", p)
		}
		return err
	}
	return nil
}

// linkInside reports whether a symlink at rel pointing to target resolves
// inside the directory (lexically; every symlink in a snapshot is checked,
// so chains stay inside too).
func linkInside(rel, target string) bool {
	target = filepath.ToSlash(target)
	if path.IsAbs(target) {
		return false
	}
	p := path.Clean(path.Join(path.Dir(rel), target))
	return p != ".." && !strings.HasPrefix(p, "../")
}

// capWriter buffers up to max bytes; past that it keeps nothing more and
// fails every write with errOverCap.
type capWriter struct {
	buf  bytes.Buffer
	max  int64
	over bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	if w.over || int64(w.buf.Len()+len(p)) > w.max {
		w.over = true
		return 0, errOverCap
	}
	return w.buf.Write(p)
}

// humanBytes formats n in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n), "B"
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}
