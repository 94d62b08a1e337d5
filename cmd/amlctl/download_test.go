package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// entry is one tar entry to build: a file, a dir (name ending in /) or a
// symlink (link set).
type entry struct{ name, body, link string }

func makeTarball(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractOutputs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	tgz := makeTarball(t, entry{name: "./"}, entry{name: "model.json", body: `{"epochs":5}`},
		entry{name: "plots/"}, entry{name: "plots/loss.csv", body: "1,0.5"}, entry{name: "latest", link: "model.json"})
	files, err := extractTarball(bytes.NewReader(tgz), dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"model.json", "plots/loss.csv"}; !reflect.DeepEqual(files, want) {
		t.Errorf("files = %q, want %q", files, want)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "latest")); err != nil || string(b) != `{"epochs":5}` {
		t.Errorf("latest -> model.json: %q %v", b, err)
	}
}

func TestExtractRefusesEntriesThatEscape(t *testing.T) {
	cases := []struct {
		name    string
		entries []entry
	}{
		{"dot-dot", []entry{{name: "../evil", body: "x"}}},
		{"dot-dot inside", []entry{{name: "a/../../evil", body: "x"}}},
		{"absolute", []entry{{name: "/tmp/evil", body: "x"}}},
		{"symlink out", []entry{{name: "l", link: "../../etc"}}},
		{"absolute symlink", []entry{{name: "l", link: "/etc"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "out")
			_, err := extractTarball(bytes.NewReader(makeTarball(t, tc.entries...)), dir)
			if err == nil || !strings.Contains(err.Error(), "refusing") {
				t.Errorf("err = %v, want a refusal", err)
			}
			if _, err := os.Lstat(filepath.Join(base, "evil")); err == nil {
				t.Error("a file was written outside the directory")
			}
		})
	}
}

func TestExtractNeverWritesThroughASymlinkOutside(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "out")
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Left there before the download: links that point outside.
	if err := os.Symlink(outside, filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(base, filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	if _, err := extractTarball(bytes.NewReader(makeTarball(t, entry{name: "f", body: "overwritten"})), dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Errorf("the file outside was overwritten through a symlink: %q", b)
	}
	if _, err := extractTarball(bytes.NewReader(makeTarball(t, entry{name: "d/evil", body: "x"})), dir); err == nil {
		t.Error("writing through a directory symlink that points outside succeeded")
	}
	if _, err := os.Lstat(filepath.Join(base, "evil")); err == nil {
		t.Error("a file was written outside the directory")
	}
}

func TestDownloadCommandExtractsIntoDir(t *testing.T) {
	f := newFakeHead(t)
	tgz := makeTarball(t, entry{name: "model.json", body: "{}"})
	f.mux.HandleFunc("GET /v1/runs/{id}/outputs", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("attempt") != "2" {
			t.Errorf("attempt = %q", r.URL.Query().Get("attempt"))
		}
		_, _ = w.Write(tgz)
	})
	dir := t.TempDir()
	res := f.runCLI(t.Context(), "job", "download", "r-1", "--dir", dir, "--attempt", "2")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "model.json")); err != nil || string(b) != "{}" {
		t.Errorf("model.json: %q %v", b, err)
	}
}
