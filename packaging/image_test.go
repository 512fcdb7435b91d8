package packaging

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The parts of the OCI image spec the test reads.
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type ociIndex struct {
	MediaType string          `json:"mediaType"`
	Manifests []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	MediaType string          `json:"mediaType"`
	Config    ociDescriptor   `json:"config"`
	Layers    []ociDescriptor `json:"layers"`
}

type ociConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		User         string              `json:"User"`
		Env          []string            `json:"Env"`
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Labels       map[string]string   `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// ociLayout reads the blobs of an image layout, checking each blob's
// digest and size against its descriptor.
type ociLayout string

func (l ociLayout) blob(t *testing.T, d ociDescriptor) []byte {
	t.Helper()
	algo, hexDigest, ok := strings.Cut(d.Digest, ":")
	require.True(t, ok && algo == "sha256", "digest %q", d.Digest)
	data, err := os.ReadFile(filepath.Join(string(l), "blobs", "sha256", hexDigest))
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	require.Equal(t, hexDigest, hex.EncodeToString(sum[:]), "blob %s: content does not match its digest", d.Digest)
	require.Equal(t, d.Size, int64(len(data)), "blob %s: size", d.Digest)
	return data
}

func (l ociLayout) json(t *testing.T, d ociDescriptor, mediaType string, v any) {
	t.Helper()
	require.Equal(t, mediaType, d.MediaType, "descriptor %s", d.Digest)
	require.NoError(t, json.Unmarshal(l.blob(t, d), v), "blob %s", d.Digest)
}

func TestImage(t *testing.T) {
	host := hostArch(t)
	r := readRelease(t)
	layout := ociLayout(filepath.Dir(distFile(t, "image/index.json")))
	require.JSONEq(t, `{"imageLayoutVersion": "1.0.0"}`, string(readDist(t, filepath.Join(string(layout), "oci-layout"))))

	// index.json: one multi-platform index, tagged with the version.
	var top ociIndex
	require.NoError(t, json.Unmarshal(readDist(t, filepath.Join(string(layout), "index.json")), &top))
	require.Len(t, top.Manifests, 1, "index.json entries")
	require.Equal(t, r.Version, top.Manifests[0].Annotations["org.opencontainers.image.ref.name"], "the image's tag against builder-config.yaml")
	var platforms ociIndex
	layout.json(t, top.Manifests[0], mediaIndex, &platforms)

	docker := readDockerfile(t)
	arches := map[string]bool{}
	for _, m := range platforms.Manifests {
		require.NotNil(t, m.Platform, "platform of %s", m.Digest)
		require.Equal(t, "linux", m.Platform.OS)
		arch := m.Platform.Architecture
		arches[arch] = true
		t.Run(arch, func(t *testing.T) {
			var manifest ociManifest
			layout.json(t, m, mediaManifest, &manifest)
			var cfg ociConfig
			layout.json(t, manifest.Config, mediaConfig, &cfg)
			require.Equal(t, "linux", cfg.OS)
			require.Equal(t, arch, cfg.Architecture)

			c := cfg.Config
			require.Equal(t, r.Version, c.Labels["org.opencontainers.image.version"], "version label against builder-config.yaml")
			require.Equal(t, []string{"/otelcsp"}, c.Entrypoint)
			require.Equal(t, []string{"--config", "/etc/otelcsp/config.yaml"}, c.Cmd)
			require.Contains(t, c.Env, "OTELCSP_LISTEN_HOST=0.0.0.0", "a container's loopback is not reachable through a published port")
			require.ElementsMatch(t, []string{"4317/tcp", "4318/tcp", "8888/tcp", "8889/tcp", "13133/tcp"}, sortedKeys(c.ExposedPorts))
			uid, gid, ok := strings.Cut(c.User, ":")
			require.True(t, ok && uid != "0" && uid != "" && gid != "0", "the image must run as a numeric non-root uid:gid, not %q", c.User)

			// The Dockerfile describes the same image.
			require.Equal(t, docker.user, c.User, "USER of distribution/Dockerfile")
			require.ElementsMatch(t, docker.env, c.Env, "ENV of distribution/Dockerfile")
			require.ElementsMatch(t, docker.ports, sortedKeys(c.ExposedPorts), "EXPOSE of distribution/Dockerfile")
			require.Equal(t, docker.entrypoint, c.Entrypoint, "ENTRYPOINT of distribution/Dockerfile")
			require.Equal(t, docker.cmd, c.Cmd, "CMD of distribution/Dockerfile")
			require.ElementsMatch(t, sortedKeys(docker.labels), sortedKeys(c.Labels), "LABEL keys of distribution/Dockerfile")

			// One layer on an empty base, matching the config's diff ID.
			require.Len(t, manifest.Layers, 1, "layers")
			require.Equal(t, mediaLayerGz, manifest.Layers[0].MediaType)
			layerGz := layout.blob(t, manifest.Layers[0])
			files := tarGzOf(t, layerGz)
			requireDiffID(t, layerGz, cfg.RootFS.DiffIDs)

			require.ElementsMatch(t, sortedKeys(docker.copies), files.regularFiles(), "files of the layer against the Dockerfile's COPY destinations")
			for dst, src := range docker.copies {
				meta := metaOf(files[dst])
				require.Equal(t, "root", meta.uname, "%s owner", dst)
				if src != "" {
					require.Equal(t, string(readRepoFile(t, src)), string(files[dst].data), "%s is not %s", dst, src)
				}
			}
			require.Equal(t, int64(0o755), metaOf(files["/otelcsp"]).mode, "/otelcsp mode")
			require.Contains(t, string(files["/etc/ssl/certs/ca-certificates.crt"].data), "-----BEGIN CERTIFICATE-----")
			requirePasswdEntry(t, string(files["/etc/passwd"].data), string(files["/etc/group"].data), uid, gid)

			root := t.TempDir()
			files.extract(t, root)
			bin := filepath.Join(root, "otelcsp")
			requireStaticELF(t, bin, arch)
			if arch != host {
				t.Logf("linux/%s binary not run on this %s machine", arch, host)
				return
			}
			requireVersion(t, bin, r)
			// The entrypoint and command as the container runs them, with
			// the image's environment only and the config path mapped into
			// the unpacked layer.
			runBinary(t, bin, c.Env, "validate", "--config", filepath.Join(root, c.Cmd[1]))
		})
	}
	require.True(t, arches[host], "the image has no linux/%s platform", host)

	// A real consumer reads the layout and the archive by the version tag
	// and picks this machine's platform, where skopeo is installed.
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Log("skopeo not installed: the layout is not read by a container tool")
		return
	}
	archive := distFile(t, "otelcsp_"+r.Version+"_image.tar")
	for _, ref := range []string{"oci:" + string(layout) + ":" + r.Version, "oci-archive:" + archive} {
		out, err := exec.Command(skopeo, "inspect", "--override-os", "linux", "--override-arch", host, ref).CombinedOutput()
		require.NoError(t, err, "skopeo inspect %s: %s", ref, out)
		var inspect struct {
			Architecture string
			Labels       map[string]string
		}
		require.NoError(t, json.Unmarshal(out, &inspect), "skopeo inspect %s: %s", ref, out)
		require.Equal(t, host, inspect.Architecture, "skopeo inspect %s", ref)
		require.Equal(t, r.Version, inspect.Labels["org.opencontainers.image.version"], "skopeo inspect %s", ref)
	}
}

func readDist(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

// requireDiffID checks the layer's uncompressed digest against the
// config's only diff ID, which engines check when they unpack it.
func requireDiffID(t *testing.T, layerGz []byte, diffIDs []string) {
	t.Helper()
	require.Len(t, diffIDs, 1)
	h := sha256.New()
	_, err := h.Write(gunzip(t, layerGz))
	require.NoError(t, err)
	require.Equal(t, "sha256:"+hex.EncodeToString(h.Sum(nil)), diffIDs[0], "diff ID")
}

// requirePasswdEntry checks that the image's user and group have entries,
// so tools that look the user up (and the Go runtime's os/user) find it.
func requirePasswdEntry(t *testing.T, passwd, group, uid, gid string) {
	t.Helper()
	found := false
	for _, line := range strings.Split(passwd, "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[2] == uid {
			require.Equal(t, gid, f[3], "/etc/passwd: group of uid %s", uid)
			found = true
		}
	}
	require.True(t, found, "/etc/passwd has no entry for uid %s", uid)
	require.Regexp(t, `(?m)^[a-z]+:x:`+gid+`:`, group, "/etc/group has no entry for gid %s", gid)
}

// dockerfile is what the final stage of distribution/Dockerfile sets.
type dockerfile struct {
	user            string
	env, ports      []string
	entrypoint, cmd []string
	labels          map[string]string
	// copies maps each COPY destination to its source in the repository,
	// or "" for a file from the build stage.
	copies map[string]string
}

// readDockerfile reads the final stage's instructions. It knows the forms
// our Dockerfile uses (KEY=value ENV and LABEL, JSON ENTRYPOINT and CMD,
// two-argument COPY) and fails on anything else in that stage, so a new
// instruction is added to the comparison rather than ignored.
func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	d := dockerfile{labels: map[string]string{}, copies: map[string]string{}}
	var stage []string
	sc := bufio.NewScanner(bytes.NewReader(readRepoFile(t, "distribution/Dockerfile")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			stage = nil
		}
		stage = append(stage, line)
	}
	require.NotEmpty(t, stage)
	require.Equal(t, "FROM scratch", stage[0], "the image's base is empty")
	for _, line := range stage[1:] {
		instr, args, _ := strings.Cut(line, " ")
		switch instr {
		case "ARG":
		case "USER":
			d.user = args
		case "ENV":
			d.env = append(d.env, strings.Fields(args)...)
		case "EXPOSE":
			d.ports = append(d.ports, strings.Fields(args)...)
		case "ENTRYPOINT":
			require.NoError(t, json.Unmarshal([]byte(args), &d.entrypoint), line)
		case "CMD":
			require.NoError(t, json.Unmarshal([]byte(args), &d.cmd), line)
		case "LABEL":
			for _, kv := range strings.Fields(args) {
				k, v, ok := strings.Cut(kv, "=")
				require.True(t, ok, line)
				d.labels[k] = v
			}
		case "COPY":
			f := strings.Fields(args)
			if strings.HasPrefix(f[0], "--from=") {
				require.Len(t, f, 3, line)
				d.copies[f[2]] = ""
			} else {
				require.Len(t, f, 2, line)
				d.copies[f[1]] = f[0]
			}
		default:
			t.Fatalf("distribution/Dockerfile: %q is not compared with the image: add it to readDockerfile", line)
		}
	}
	return d
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
