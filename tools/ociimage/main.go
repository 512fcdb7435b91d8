// Command ociimage writes the otelcsp container image as an OCI image layout
// without a container engine or a base image: one layer on an empty base
// holding the static binaries and the files named on the command line, one
// image per platform, under one image index. `make package` runs it; the
// Dockerfile (distribution/Dockerfile) describes the same image for users
// with an engine, and packaging/image_test.go checks that both agree.
//
// go-containerregistry's crane could append a layer to an empty base, but
// it sets the entrypoint, user and ports only on images in a registry, so it
// would need a registry running during the build; this program writes the
// layout directly, with the layer's bytes fixed by SOURCE_DATE_EPOCH.
//
//	ociimage -layout dist/image -version 0.1.0 \
//	    -binary linux/amd64=dist/linux_amd64/otelcsp -binary-path /otelcsp \
//	    -file /etc/otelcsp/config.yaml=distribution/container.yaml \
//	    -user 10001:10001 -entrypoint /otelcsp -cmd --config -cmd /etc/otelcsp/config.yaml \
//	    -env OTELCSP_LISTEN_HOST=0.0.0.0 -port 4317/tcp
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// listFlag collects a repeatable flag's values in order.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	layoutDir  string
	version    string
	title      string
	binaries   listFlag // os/arch=path
	binaryPath string
	files      listFlag // /dst=src
	user       string
	entrypoint listFlag
	cmd        listFlag
	env        listFlag
	ports      listFlag
}

func main() {
	var o options
	flag.StringVar(&o.layoutDir, "layout", "", "directory of the OCI image layout to write (replaced)")
	flag.StringVar(&o.version, "version", "", "image version: the org.opencontainers.image.version label and the index's ref name")
	flag.StringVar(&o.title, "title", "", "org.opencontainers.image.title label")
	flag.Var(&o.binaries, "binary", "os/arch=path of a static binary, one image per platform (repeatable)")
	flag.StringVar(&o.binaryPath, "binary-path", "", "where the binary goes in the image, mode 0755")
	flag.Var(&o.files, "file", "/dst=src: a file for every platform, mode 0644 (repeatable)")
	flag.StringVar(&o.user, "user", "", "uid:gid the container runs as")
	flag.Var(&o.entrypoint, "entrypoint", "entrypoint, one argument per flag (repeatable)")
	flag.Var(&o.cmd, "cmd", "default arguments, one per flag (repeatable)")
	flag.Var(&o.env, "env", "KEY=value of the environment (repeatable)")
	flag.Var(&o.ports, "port", "exposed port, e.g. 4317/tcp (repeatable)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.layoutDir == "" || o.version == "" || o.binaryPath == "" || len(o.binaries) == 0 {
		return errors.New("-layout, -version, -binary and -binary-path are required")
	}
	created, err := sourceDate()
	if err != nil {
		return err
	}
	files, err := parseFiles(o.files)
	if err != nil {
		return err
	}

	platformIndex := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, b := range o.binaries {
		platform, binary, ok := strings.Cut(b, "=")
		goos, arch, ok2 := strings.Cut(platform, "/")
		if !ok || !ok2 || binary == "" {
			return fmt.Errorf("-binary %q: want os/arch=path", b)
		}
		img, err := platformImage(o, created, v1.Platform{OS: goos, Architecture: arch},
			append([]rootFile{{path: o.binaryPath, src: binary, mode: 0o755}}, files...))
		if err != nil {
			return fmt.Errorf("%s: %w", platform, err)
		}
		platformIndex = mutate.AppendManifests(platformIndex, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				Platform: &v1.Platform{OS: goos, Architecture: arch},
			},
		})
	}

	// index.json names one entry, the multi-platform index, tagged with the
	// version: what `skopeo copy oci:dist/image:0.1.0 ...` and `crane push
	// --index` pick.
	if err := os.RemoveAll(o.layoutDir); err != nil {
		return err
	}
	p, err := layout.Write(o.layoutDir, mutate.IndexMediaType(empty.Index, types.OCIImageIndex))
	if err != nil {
		return err
	}
	return p.AppendIndex(platformIndex, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": o.version,
	}))
}

// platformImage is one platform's image: the layer and its config.
func platformImage(o options, created time.Time, platform v1.Platform, files []rootFile) (v1.Image, error) {
	layerBytes, err := rootfsTar(files, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(layerBytes.opener(), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "ociimage: " + o.binaryPath + " and the configs",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = platform.OS
	cf.Architecture = platform.Architecture
	cf.Created = v1.Time{Time: created}
	cf.Config.User = o.user
	cf.Config.Entrypoint = o.entrypoint
	cf.Config.Cmd = o.cmd
	cf.Config.Env = o.env
	cf.Config.ExposedPorts = map[string]struct{}{}
	for _, p := range o.ports {
		cf.Config.ExposedPorts[p] = struct{}{}
	}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.version": o.version,
		"org.opencontainers.image.title":   o.title,
	}
	return mutate.ConfigFile(img, cf)
}

// sourceDate is SOURCE_DATE_EPOCH (reproducible builds), or the Unix epoch.
func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

func parseFiles(specs []string) ([]rootFile, error) {
	files := make([]rootFile, 0, len(specs))
	for _, s := range specs {
		dst, src, ok := strings.Cut(s, "=")
		if !ok || !strings.HasPrefix(dst, "/") || src == "" {
			return nil, fmt.Errorf("-file %q: want /dst=src", s)
		}
		files = append(files, rootFile{path: dst, src: src, mode: 0o644})
	}
	return files, nil
}
