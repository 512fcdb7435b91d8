package packaging

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// archiveEntry is one entry of a tar archive, with its content for regular
// files.
type archiveEntry struct {
	hdr  *tar.Header
	data []byte
}

// archive is a tar archive's entries by cleaned absolute path ("/etc/x").
type archive map[string]archiveEntry

// readTarGz reads a gzip-compressed tar archive.
func readTarGz(t *testing.T, r io.Reader) archive {
	t.Helper()
	gz, err := gzip.NewReader(r)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	entries := archive{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		name := "/" + strings.TrimPrefix(strings.TrimPrefix(filepath.Clean(hdr.Name), "."), "/")
		entries[filepath.Clean(name)] = archiveEntry{hdr: hdr, data: data}
	}
	return entries
}

// regularFiles lists the paths of the regular files.
func (a archive) regularFiles() []string {
	var files []string
	for name, e := range a {
		if e.hdr.Typeflag == tar.TypeReg {
			files = append(files, name)
		}
	}
	return files
}

// extract writes the regular files under dir with their modes, so the
// packaged binary can run on the packaged config.
func (a archive) extract(t *testing.T, dir string) {
	t.Helper()
	for name, e := range a {
		if e.hdr.Typeflag != tar.TypeReg {
			continue
		}
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, e.data, os.FileMode(e.hdr.Mode).Perm()))
	}
}

// readAr reads the members of an ar archive (the container of a .deb):
// "!<arch>\n", then per member a 60-byte header (name, mtime, uid, gid,
// mode, decimal size, "`\n") and the data, padded to an even length.
func readAr(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close()) }()
	r := bufio.NewReader(f)
	magic := make([]byte, 8)
	_, err = io.ReadFull(r, magic)
	require.NoError(t, err)
	require.Equal(t, "!<arch>\n", string(magic), "%s is not an ar archive", path)
	members := map[string][]byte{}
	var order []string
	for {
		hdr := make([]byte, 60)
		if _, err := io.ReadFull(r, hdr); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, "`\n", string(hdr[58:60]), "%s: bad ar member header %q", path, hdr)
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		require.NoError(t, err)
		data := make([]byte, size)
		_, err = io.ReadFull(r, data)
		require.NoError(t, err)
		if size%2 == 1 {
			_, err = r.Discard(1)
			require.NoError(t, err)
		}
		members[name] = data
		order = append(order, name)
	}
	// dpkg reads the members in this order and refuses any other.
	require.Equal(t, []string{"debian-binary", "control.tar.gz", "data.tar.gz"}, order, "%s: ar members", path)
	return members
}

// fileMeta is what a packaged file must be: mode and owners.
type fileMeta struct {
	mode         int64
	uname, gname string
}

func (m fileMeta) String() string { return fmt.Sprintf("%04o %s:%s", m.mode, m.uname, m.gname) }

func metaOf(e archiveEntry) fileMeta {
	return fileMeta{mode: e.hdr.Mode & 0o7777, uname: e.hdr.Uname, gname: e.hdr.Gname}
}

func tarGzOf(t *testing.T, data []byte) archive {
	return readTarGz(t, bytes.NewReader(data))
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	out, err := io.ReadAll(gz)
	require.NoError(t, err)
	return out
}
