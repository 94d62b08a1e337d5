package agent

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amld/amld/api"
)

func TestExtractSourceRejectsEntriesEscapingTheWorkDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		ents []tarEntry
	}{
		{"parent dir", []tarEntry{{name: "../x", body: "x"}}},
		{"nested parent dir", []tarEntry{{name: "a/../../x", body: "x"}}},
		{"absolute", []tarEntry{{name: "/tmp/x", body: "x"}}},
		{"absolute symlink", []tarEntry{{name: "l", symlink: true, link: "/etc"}}},
		{"symlink out", []tarEntry{{name: "a/l", symlink: true, link: "../../etc"}}},
		{"hard link out", []tarEntry{{name: "l", hard: true, link: "../x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			work := filepath.Join(dir, "work")
			if err := os.Mkdir(work, 0o755); err != nil {
				t.Fatal(err)
			}
			err := extractSource(bytes.NewReader(makeTarGz(t, tc.ents)), work)
			if !errors.Is(err, errEscapes) {
				t.Fatalf("extract = %v, want it rejected as escaping", err)
			}
			if _, err := os.Lstat(filepath.Join(dir, "x")); err == nil {
				t.Fatal("a file was written outside the work dir")
			}
		})
	}
}

func TestExtractSourceKeepsFilesLinksAndModes(t *testing.T) {
	dir := t.TempDir()
	err := extractSource(bytes.NewReader(makeTarGz(t, []tarEntry{
		{name: "./bin/run", body: "#!/bin/sh\n", mode: 0o755},
		{name: "data/a.txt", body: "a"},
		{name: "data/link", symlink: true, link: "a.txt"},
		{name: "data/hard", hard: true, link: "data/a.txt"},
	})), dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin/run")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Fatalf("bin/run: %v, mode %v; want executable", err, fi.Mode())
	}
	for _, name := range []string{"data/link", "data/hard"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != "a" {
			t.Fatalf("%s = %q, %v; want a link to a.txt", name, b, err)
		}
	}
}

func TestTarOutputsSkipsEmptyAndRefusesTooLarge(t *testing.T) {
	dir := t.TempDir()
	if data, err := tarOutputs(dir, api.MaxOutputsBytes); err != nil || data != nil {
		t.Fatalf("empty outputs = %d bytes, %v; want nothing", len(data), err)
	}
	big := make([]byte, 64<<10) // random: does not compress
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tarOutputs(dir, 32<<10); !errors.Is(err, errTooLarge) {
		t.Fatalf("tar past the cap = %v, want errTooLarge", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "m.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := tarOutputs(dir, api.MaxOutputsBytes)
	if err != nil {
		t.Fatal(err)
	}
	files := untar(t, data)
	if files["sub/m.json"] != "{}" || len(files["big.bin"]) != len(big) {
		t.Fatalf("outputs tar holds %d files, want big.bin and sub/m.json", len(files))
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	good := DefaultConfig()
	good.HeadAddrs, good.JoinToken, good.NodeID, good.WorkDir = []string{"h:1"}, "t", "n-1", "/tmp/w"
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for field, edit := range map[string]func(*Config){
		"HeadAddrs":        func(c *Config) { c.HeadAddrs = []string{" "} },
		"JoinToken":        func(c *Config) { c.JoinToken = "" },
		"NodeID or Target": func(c *Config) { c.NodeID = "" },
		"NodeID":           func(c *Config) { c.NodeID = "../n" },
		"WorkDir":          func(c *Config) { c.WorkDir = "" },
		"KillGrace":        func(c *Config) { c.KillGrace = -1 },
		"LogFlushInterval": func(c *Config) { c.LogFlushInterval = 0 },
		"RetryMin":         func(c *Config) { c.RetryMax = c.RetryMin / 2 },
	} {
		c := good
		edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: Validate = %v, want an error naming it", field, err)
		}
	}
}
