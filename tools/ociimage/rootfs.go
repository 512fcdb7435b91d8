package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// rootFile is one regular file of the image's filesystem.
type rootFile struct {
	path string // absolute, in the image
	src  string // on this machine
	mode int64
}

// compressedLayer is a gzip-compressed layer tarball held in memory, so it is
// compressed once rather than on every read of the layer.
type compressedLayer []byte

func (c compressedLayer) opener() func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(c)), nil }
}

// rootfsTar is the layer: every file owned by root with its mode, each parent
// directory (0755) before its files, in path order, every time set to mtime,
// so the same inputs give the same digest.
func rootfsTar(files []rootFile, mtime time.Time) (compressedLayer, error) {
	sorted := append([]rootFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].path < sorted[j].path })

	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	dirs := map[string]bool{}
	for _, f := range sorted {
		name := strings.TrimPrefix(path.Clean(f.path), "/")
		if err := writeParents(tw, dirs, path.Dir(name), mtime); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(f.src)
		if err != nil {
			return nil, err
		}
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     name,
			Mode:     f.mode,
			Size:     int64(len(data)),
			ModTime:  mtime,
			Uname:    "root",
			Gname:    "root",
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeParents writes the directory entries of dir and its parents that are
// not written yet, outermost first.
func writeParents(tw *tar.Writer, written map[string]bool, dir string, mtime time.Time) error {
	if dir == "." || dir == "/" || written[dir] {
		return nil
	}
	if err := writeParents(tw, written, path.Dir(dir), mtime); err != nil {
		return err
	}
	written[dir] = true
	return tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeDir,
		Name:     dir + "/",
		Mode:     0o755,
		ModTime:  mtime,
		Uname:    "root",
		Gname:    "root",
		Format:   tar.FormatPAX,
	})
}
