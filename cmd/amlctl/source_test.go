package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAmlignoreMatching(t *testing.T) {
	cases := []struct {
		name   string
		rules  string
		path   string
		isDir  bool
		ignore bool
	}{
		{"no rules", "", "a.py", false, false},
		{"blank and comment lines", "\n# data\n   \n", "data", true, false},
		{"extension at any depth", "*.ckpt", "runs/1/model.ckpt", false, true},
		{"extension no match", "*.ckpt", "model.py", false, false},
		{"bare name at any depth", "data", "sub/data", true, true},
		{"bare name matches files too", "data", "data", false, true},
		{"dir only matches dir", "data/", "data", true, true},
		{"dir only skips file", "data/", "data", false, false},
		{"anchored matches at root", "/build", "build", true, true},
		{"anchored skips deeper", "/build", "src/build", true, false},
		{"middle slash anchors", "docs/*.md", "docs/a.md", false, true},
		{"middle slash anchors, not deeper", "docs/*.md", "x/docs/a.md", false, false},
		{"star stays in segment", "docs/*", "docs/a/b.md", false, false},
		{"leading double star", "**/cache", "a/b/cache", true, true},
		{"leading double star at root", "**/cache", "cache", true, true},
		{"middle double star", "a/**/z", "a/b/c/z", false, true},
		{"middle double star zero dirs", "a/**/z", "a/z", false, true},
		{"trailing double star is inside", "logs/**", "logs/x.txt", false, true},
		{"trailing double star not the dir", "logs/**", "logs", true, false},
		{"negation re-includes", "*.txt\n!keep.txt", "keep.txt", false, false},
		{"negation order matters", "!keep.txt\n*.txt", "keep.txt", false, true},
		{"question mark", "file?.py", "file1.py", false, true},
		{"char class", "v[0-9].bin", "v7.bin", false, true},
		{"negated char class", "v[!0-9].bin", "v7.bin", false, false},
		{"escaped hash", `\#notes`, "#notes", false, true},
		{"trailing spaces trimmed", "*.log   ", "x.log", false, true},
		{"crlf line ends", "*.log\r\n", "x.log", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := parseIgnore(strings.NewReader(tc.rules))
			if err != nil {
				t.Fatal(err)
			}
			if got := rules.ignored(tc.path, tc.isDir); got != tc.ignore {
				t.Errorf("rules %q, path %q (dir %v): ignored %v, want %v", tc.rules, tc.path, tc.isDir, got, tc.ignore)
			}
		})
	}
}

func TestAmlignoreBadPatternIsAnError(t *testing.T) {
	if _, err := parseIgnore(strings.NewReader("[a-")); err == nil || !strings.Contains(err.Error(), ".amlignore") {
		t.Errorf("err = %v, want an error naming .amlignore", err)
	}
}

// writeTree creates files (name → content; a name ending in / is a dir).
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tarNames lists the entries of a gzip'd tar, with symlinks as "name -> target".
func tarNames(t *testing.T, data []byte) []string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uid != 0 || h.Uname != "" {
			t.Errorf("%s: mtime %v uid %d uname %q; want zeroed", h.Name, h.ModTime, h.Uid, h.Uname)
		}
		n := h.Name
		if h.Typeflag == tar.TypeSymlink {
			n += " -> " + h.Linkname
		}
		names = append(names, n)
	}
}

func TestSourceSnapshotHonoursAmlignoreAndSkipsGit(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".amlignore":          "data/\n*.ckpt\n!best.ckpt\n/out\n",
		"train.py":            "print(1)",
		"lib/util.py":         "x = 1",
		"lib/data/big.bin":    "zzz",
		"data/set.csv":        "1,2",
		"m.ckpt":              "w",
		"best.ckpt":           "w",
		"out/log.txt":         "l",
		"lib/out/kept.txt":    "k",
		".git/HEAD":           "ref",
		"lib/.git/config":     "x",
		"empty/":              "",
		"lib/sub/.amlkeep.py": "",
	})
	if err := os.Symlink("train.py", filepath.Join(dir, "link.py")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../etc/passwd", filepath.Join(dir, "lib", "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "abs")); err != nil {
		t.Fatal(err)
	}
	tb, err := buildSource(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".amlignore", "best.ckpt", "empty/", "lib/", "lib/out/", "lib/out/kept.txt",
		"lib/sub/", "lib/sub/.amlkeep.py", "lib/util.py", "link.py -> train.py", "train.py"}
	if got := tarNames(t, tb.Data); !reflect.DeepEqual(got, want) {
		t.Errorf("entries\n got %q\nwant %q", got, want)
	}
	if len(tb.Skipped) != 2 || !strings.Contains(strings.Join(tb.Skipped, "\n"), "outside the source directory") {
		t.Errorf("skipped = %q; want the two symlinks that point outside", tb.Skipped)
	}
}

func TestSourceSnapshotIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"b.py": "b", "a/x.py": "x", "a/y.py": "y", "c/": ""})
	first, err := buildSource(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// Touching files changes their mtimes, not the snapshot.
	later := time.Now().Add(time.Hour)
	for _, n := range []string{"b.py", "a/x.py", "a"} {
		if err := os.Chtimes(filepath.Join(dir, n), later, later); err != nil {
			t.Fatal(err)
		}
	}
	second, err := buildSource(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Data, second.Data) {
		t.Error("two snapshots of the same tree differ")
	}
	if first.Files != 3 {
		t.Errorf("files = %d, want 3", first.Files)
	}
}

func TestSourceSnapshotOverCapSaysSizeCapAndAmlignore(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 64<<10) // random: does not compress
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{"weights.bin": string(big), "train.py": "print(1)"})
	_, err := buildSource(dir, 16<<10)
	if !errors.Is(err, errOverCap) {
		t.Fatalf("err = %v, want errOverCap", err)
	}
	for _, want := range []string{"64.0 KiB", "16.0 KiB", ".amlignore", "weights.bin"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestSourceMustBeADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	writeTree(t, filepath.Dir(f), map[string]string{"file": "x"})
	if _, err := buildSource(f, 1<<20); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("err = %v", err)
	}
}

// FuzzAmlignore parses arbitrary .amlignore files and matches a few paths:
// no panics, and a file that parses matches deterministically.
func FuzzAmlignore(f *testing.F) {
	f.Add("*.ckpt\n!best.ckpt\n/out\ndata/\na/**/b\n", "a/x/b")
	f.Add("[a-\n", "a")
	f.Add("**\n!**/\n", "x/y/z")
	f.Fuzz(func(t *testing.T, rules, p string) {
		rs, err := parseIgnore(strings.NewReader(rules))
		if err != nil {
			return
		}
		if rs.ignored(p, false) != rs.ignored(p, false) {
			t.Fatal("matching is not deterministic")
		}
		_ = rs.ignored(p, true)
	})
}
