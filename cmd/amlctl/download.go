package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/spf13/cobra"
)

// jobDownloadCmd is `amlctl job download RUN --dir out/ [--attempt N]`.
func (a *app) jobDownloadCmd() *cobra.Command {
	var dir string
	var attempt int
	cmd := &cobra.Command{
		Use:   "download RUN --dir DIR",
		Short: "Download a run's outputs (its ./outputs directory) into DIR",
		Args:  exactArgs("RUN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usagef("--dir is required")
			}
			if attempt < 0 {
				return usagef("--attempt must be 0 or more, not %d", attempt)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := c.DownloadOutputs(cmd.Context(), args[0], attempt, &buf); err != nil {
				return fmt.Errorf("download %s: %w", args[0], err)
			}
			files, err := extractTarball(&buf, dir)
			if err != nil {
				return fmt.Errorf("download %s: %w", args[0], err)
			}
			if a.jsonOut() {
				return a.printJSON(map[string]any{"run": args[0], "dir": dir, "files": orEmpty(files)})
			}
			fmt.Fprintf(a.stdout, "Downloaded %d file(s) of run %s to %s.\n", len(files), args[0], dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to extract the outputs into (created if missing)")
	cmd.Flags().IntVar(&attempt, "attempt", 0, "attempt number (default: the last one with outputs)")
	return cmd
}

// extractTarball extracts the gzip'd tar r into dir and returns the regular
// files written. Every operation goes through an os.Root of dir, so no entry
// can write outside it, not even through a symlink; entries whose names or
// link targets escape dir are refused with an error.
func extractTarball(r io.Reader, dir string) ([]string, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("outputs are not a gzip'd tar: %w", err)
	}
	defer gz.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var files []string
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return files, fmt.Errorf("read outputs: %w", err)
		}
		name, ok := localName(hdr.Name)
		if !ok {
			return files, fmt.Errorf("refusing entry %q: it escapes %s", hdr.Name, dir)
		}
		if name == "." {
			continue
		}
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return files, err
			}
		}
		perm := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, perm|0o700); err != nil {
				return files, err
			}
		case tar.TypeReg:
			if err := writeEntry(root, name, perm, tr); err != nil {
				return files, err
			}
			files = append(files, name)
		case tar.TypeSymlink:
			if path.IsAbs(hdr.Linkname) || !linkInside(name, hdr.Linkname) {
				return files, fmt.Errorf("refusing symlink %q -> %q: it points outside %s", hdr.Name, hdr.Linkname, dir)
			}
			_ = root.Remove(name)
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return files, err
			}
		default:
			// Hard links, devices and the like have no place in outputs.
		}
	}
}

// localName cleans a tar entry name; ok is false when it is absolute or
// climbs out of the extraction directory.
func localName(name string) (string, bool) {
	name = strings.ReplaceAll(name, `\`, "/")
	if path.IsAbs(name) {
		return "", false
	}
	name = path.Clean(name)
	if name == ".." || strings.HasPrefix(name, "../") {
		return "", false
	}
	return name, true
}

// writeEntry writes one regular file under root, replacing what was there.
func writeEntry(root *os.Root, name string, perm fs.FileMode, r io.Reader) error {
	_ = root.Remove(name) // a symlink left there must not be followed
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
