package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The files of the .deb, their modes and owners (packaging/nfpm.yaml).
var debFiles = map[string]fileMeta{
	"/usr/bin/otelcsp":                                   {0o755, "root", "root"},
	"/usr/lib/systemd/system/otelcsp.service":            {0o644, "root", "root"},
	"/etc/otelcsp/config.yaml":                           {0o640, "root", "otelcsp"},
	"/etc/otelcsp/otelcsp.conf":                          {0o640, "root", "root"},
	"/usr/share/doc/otelcsp/CHANGELOG.md":                {0o644, "root", "root"},
	"/usr/share/doc/otelcsp/examples/agent.yaml":         {0o644, "root", "root"},
	"/usr/share/doc/otelcsp/examples/gateway.yaml":       {0o644, "root", "root"},
	"/usr/share/doc/otelcsp/examples/gateway-delta.yaml": {0o644, "root", "root"},
	"/usr/share/doc/otelcsp/examples/aggregator.yaml":    {0o644, "root", "root"},
}

// Where each packaged file comes from in the repository (the binary is
// checked by running it).
var debSources = map[string]string{
	"/usr/lib/systemd/system/otelcsp.service":            "packaging/otelcsp.service",
	"/etc/otelcsp/config.yaml":                           "packaging/config.yaml",
	"/etc/otelcsp/otelcsp.conf":                          "packaging/otelcsp.conf",
	"/usr/share/doc/otelcsp/CHANGELOG.md":                "CHANGELOG.md",
	"/usr/share/doc/otelcsp/examples/agent.yaml":         "testdata/deploy/agent.yaml",
	"/usr/share/doc/otelcsp/examples/gateway.yaml":       "testdata/deploy/gateway.yaml",
	"/usr/share/doc/otelcsp/examples/gateway-delta.yaml": "testdata/deploy/gateway-delta.yaml",
	"/usr/share/doc/otelcsp/examples/aggregator.yaml":    "testdata/deploy/aggregator.yaml",
}

func TestDeb(t *testing.T) {
	arch := hostArch(t)
	r := readRelease(t)
	members := readAr(t, distFile(t, "otelcsp_"+r.Version+"_"+arch+".deb"))
	require.Equal(t, "2.0\n", string(members["debian-binary"]))
	control := tarGzOf(t, members["control.tar.gz"])
	data := tarGzOf(t, members["data.tar.gz"])

	t.Run("control", func(t *testing.T) {
		fields := controlFields(string(control["/control"].data))
		require.Equal(t, "otelcsp", fields["Package"])
		require.Equal(t, r.Version+"-1", fields["Version"], "package version (upstream-revision) against builder-config.yaml")
		require.Equal(t, arch, fields["Architecture"])
		require.Equal(t, r.Description, fields["Description"])
	})

	t.Run("conffiles", func(t *testing.T) {
		// Upgrades keep the operator's config and flags.
		require.Equal(t, []string{"/etc/otelcsp/config.yaml", "/etc/otelcsp/otelcsp.conf"},
			strings.Fields(string(control["/conffiles"].data)))
	})

	t.Run("scripts", func(t *testing.T) {
		for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
			e, ok := control["/"+s]
			require.True(t, ok, "control archive has no %s", s)
			require.Equal(t, int64(0o755), e.hdr.Mode&0o777, "%s mode", s)
			require.True(t, strings.HasPrefix(string(e.data), "#!/bin/sh\n"), "%s: no #!/bin/sh", s)
			if sh, err := exec.LookPath("sh"); err == nil {
				out, err := exec.Command(sh, "-n", "-c", string(e.data)).CombinedOutput()
				require.NoError(t, err, "%s: sh -n: %s", s, out)
			}
		}
		// The user the unit runs as exists before the files are unpacked,
		// so the config's group resolves.
		require.Contains(t, string(control["/preinst"].data), "useradd --system --gid otelcsp")
	})

	t.Run("files", func(t *testing.T) {
		require.Equal(t, sortedKeys(debFiles), slices.Sorted(slices.Values(data.regularFiles())), "regular files of the .deb")
		for f, meta := range debFiles {
			require.Equal(t, meta.String(), metaOf(data[f]).String(), "%s: mode and owners", f)
		}
		for dst, src := range debSources {
			require.Equal(t, string(readRepoFile(t, src)), string(data[dst].data), "%s is not %s", dst, src)
		}
		// Directories are root's and world-readable: only the config's
		// own mode keeps it from other users.
		for name, e := range data {
			if e.hdr.Typeflag == '5' {
				require.Equal(t, fileMeta{0o755, "root", "root"}.String(), metaOf(e).String(), "directory %s", name)
			}
		}
	})

	root := t.TempDir()
	data.extract(t, root)
	bin := filepath.Join(root, "usr/bin/otelcsp")

	t.Run("binary", func(t *testing.T) {
		requireStaticELF(t, bin, arch)
		requireVersion(t, bin, r)
	})

	t.Run("unit", func(t *testing.T) {
		unit := unitKeys(t, string(data["/usr/lib/systemd/system/otelcsp.service"].data))
		require.Equal(t, "otelcsp", unit["User"])
		require.Equal(t, "otelcsp", unit["Group"])
		require.Equal(t, "otelcsp", unit["StateDirectory"], "/var/lib/otelcsp, the agent config's queue directory")
		require.Equal(t, "/etc/otelcsp/otelcsp.conf", unit["EnvironmentFile"])
		require.Equal(t, "multi-user.target", unit["WantedBy"])
		require.Equal(t, "/usr/bin/otelcsp $OTELCSP_OPTIONS", unit["ExecStart"])

		// ExecStart as systemd runs it, with the environment file's
		// variables, and every absolute path in it mapped into the
		// unpacked package: the packaged binary must validate the
		// packaged config with no other environment.
		env := environmentFile(t, string(data["/etc/otelcsp/otelcsp.conf"].data))
		argv := execStart(unit["ExecStart"], env)
		require.Equal(t, []string{"/usr/bin/otelcsp", "--config=/etc/otelcsp/config.yaml"}, argv)
		args := make([]string, 0, len(argv))
		for _, a := range argv[1:] {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(v, "/") {
				a = k + "=" + filepath.Join(root, v)
			}
			args = append(args, a)
		}
		runBinary(t, filepath.Join(root, argv[0]), nil, append([]string{"validate"}, args...)...)

		// systemd's own check of the unit (known keys and values, the
		// commands exist), where systemd is installed: on this machine's
		// root, with the packaged binary's path mapped into the unpacked
		// package.
		if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
			unitFile := filepath.Join(t.TempDir(), "otelcsp.service")
			text := strings.ReplaceAll(string(data["/usr/lib/systemd/system/otelcsp.service"].data), "/usr/bin/otelcsp", bin)
			require.NoError(t, os.WriteFile(unitFile, []byte(text), 0o644))
			out, err := exec.Command(analyze, "verify", "--man=no", unitFile).CombinedOutput()
			require.NoError(t, err, "systemd-analyze verify: %s", out)
			require.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify")
		} else {
			t.Log("systemd-analyze not installed: the unit is not verified by systemd")
		}
	})
}

// controlFields parses a Debian control file's single-line fields.
func controlFields(control string) map[string]string {
	fields := map[string]string{}
	for _, line := range strings.Split(control, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

// unitKeys parses a systemd unit's Key=Value lines (every key occurs once
// in ours, so sections need not be told apart).
func unitKeys(t *testing.T, unit string) map[string]string {
	t.Helper()
	keys := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "unit line %q", line)
		_, dup := keys[k]
		require.False(t, dup, "unit key %s set twice", k)
		keys[k] = v
	}
	return keys
}

// environmentFile parses an EnvironmentFile= file: KEY=value lines, the
// value optionally in double quotes, # comments.
func environmentFile(t *testing.T, text string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "environment file line %q", line)
		if strings.HasPrefix(v, `"`) {
			uq, err := strconv.Unquote(v)
			require.NoError(t, err, "environment file line %q", line)
			v = uq
		}
		env[k] = v
	}
	return env
}

// execStart splits an ExecStart= command as systemd does for the forms we
// use: a word "$NAME" becomes the variable's words, split at whitespace.
func execStart(cmd string, env map[string]string) []string {
	var argv []string
	for _, w := range strings.Fields(cmd) {
		if name, ok := strings.CutPrefix(w, "$"); ok {
			argv = append(argv, strings.Fields(env[name])...)
			continue
		}
		argv = append(argv, w)
	}
	return argv
}
