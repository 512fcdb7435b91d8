package deploy

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The collector configs of testdata/deploy are copied into the manifests
// (ConfigMap data, Helm values, operator resources) so that each file can
// be applied on its own. A copy is marked by the comment line right above
// the key that holds it:
//
//	# otelcsp:embed testdata/deploy/agent.yaml
//	agent.yaml: |
//	  ...the file, indented...
//
// TestEmbeddedConfigsMatchSources regenerates every marked copy from its
// source and fails on any difference; with -update it rewrites the files.
// A copy can also name variants (transforms of the source, applied in
// order, joined by +):
//
//	# otelcsp:embed testdata/deploy/agent.yaml k8s-resolver+no-nulls

var update = flag.Bool("update", false, "rewrite the configs embedded in deploy/ from testdata/deploy")

// repoRoot is the repository root, from this package's directory.
const repoRoot = ".."

var embedMarker = regexp.MustCompile(`^(\s*)# otelcsp:embed (\S+)(?: (\S+))?\s*$`)

// variants are the configs derived from a shipped one.
var variants = map[string]func(src string) (string, error){
	"k8s-resolver": k8sResolverVariant,
	"no-nulls":     noNullsVariant,
}

// emptyKey is a mapping key with nothing after its colon (but perhaps a
// comment): its value is null unless deeper lines follow.
var emptyKey = regexp.MustCompile(`^(\s*)([^\s#-][^#]*?):\s*(#.*)?$`)

// noNullsVariant gives every key whose value is null (a component without
// settings, such as `forward/sampling:`) an empty mapping instead. Helm
// deletes keys whose value is null when it merges values, and a pipeline
// that names a component missing from the config does not start.
func noNullsVariant(src string) (string, error) {
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		m := emptyKey.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		null := true
		for _, next := range lines[i+1:] {
			trimmed := strings.TrimSpace(next)
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			null = len(next)-len(strings.TrimLeft(next, " ")) <= len(m[1])
			break
		}
		if null {
			lines[i] = m[1] + m[2] + ": {}"
			if m[3] != "" {
				lines[i] += " " + m[3]
			}
		}
	}
	return strings.Join(lines, "\n"), nil
}

// dnsResolver is the gateways' resolver of testdata/deploy/agent.yaml: the
// anchored block every fanout of the agent shares.
var dnsResolver = regexp.MustCompile(`(?m)^    resolver: &gateways\n      dns:\n(?:        .*\n)+`)

// k8sResolverVariant is agent.yaml with its fanouts' resolver replaced by
// the k8s resolver (EndpointSlices of the gateways' Service, through the
// API): everything else, queue, breaker, routing, stays as shipped.
func k8sResolverVariant(src string) (string, error) {
	if n := len(dnsResolver.FindAllStringIndex(src, -1)); n != 1 {
		return "", fmt.Errorf("k8s-resolver variant: want exactly one `resolver: &gateways` dns block in the agent's config, found %d", n)
	}
	header := `# Generated from testdata/deploy/agent.yaml (go test ./deploy/ -update):
# the same agent, whose fanouts find the gateways with the k8s resolver
# (the EndpointSlices of a Service, watched through the Kubernetes API)
# instead of DNS SRV records. It needs list and watch on endpointslices
# (discovery.k8s.io) in the Service's namespace: deploy/k8s/agent.yaml.
#   OTELCSP_GATEWAY_SERVICE  the gateways' Service, name.namespace (otelcsp-gateway-headless.observability)
#   OTELCSP_GATEWAY_PORT     the Service port to send to, by name or number (otlp-grpc)
# OTELCSP_GATEWAYS and OTELCSP_DNS_SERVER, below, do not apply to it.
`
	k8s := "    resolver: &gateways\n" +
		"      k8s:\n" +
		"        service: ${env:OTELCSP_GATEWAY_SERVICE:-otelcsp-gateway-headless.observability}\n" +
		"        ports: [\"${env:OTELCSP_GATEWAY_PORT:-otlp-grpc}\"]\n"
	return header + dnsResolver.ReplaceAllLiteralString(src, k8s), nil
}

// embedded is one marked copy in a file.
type embedded struct {
	file       string // relative to the repository root
	line       int    // of the marker, 1-based
	source     string // relative to the repository root
	variant    string
	indent     string // of the content lines
	start, end int    // content lines [start, end) of the file
	key        string // the key that holds the copy
}

// sourceText is the text the copy must hold.
func (e embedded) sourceText() (string, error) {
	b, err := os.ReadFile(filepath.Join(repoRoot, e.source))
	if err != nil {
		return "", err
	}
	text := string(b)
	if e.variant == "" {
		return text, nil
	}
	for _, name := range strings.Split(e.variant, "+") {
		fn, ok := variants[name]
		if !ok {
			return "", fmt.Errorf("%s:%d: unknown variant %q", e.file, e.line, name)
		}
		if text, err = fn(text); err != nil {
			return "", err
		}
	}
	return text, nil
}

// findEmbedded lists the marked copies of one file (lines without the
// trailing newline split).
func findEmbedded(file string, lines []string) ([]embedded, error) {
	var out []embedded
	for i, l := range lines {
		m := embedMarker.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if i+1 >= len(lines) {
			return nil, fmt.Errorf("%s:%d: marker without a key below it", file, i+1)
		}
		keyLine := lines[i+1]
		keyIndent := m[1]
		if !strings.HasPrefix(keyLine, keyIndent) || strings.TrimSpace(keyLine) == "" || strings.HasPrefix(keyLine[len(keyIndent):], " ") {
			return nil, fmt.Errorf("%s:%d: the line below the marker must be a key at the marker's indentation, got %q", file, i+2, keyLine)
		}
		trimmed := strings.TrimSpace(keyLine)
		e := embedded{file: file, line: i + 1, source: m[2], variant: m[3], indent: keyIndent + "  ", start: i + 2}
		switch {
		case strings.HasSuffix(trimmed, ": |"):
			e.key = strings.TrimSuffix(trimmed, ": |")
		case strings.HasSuffix(trimmed, ":"):
			e.key = strings.TrimSuffix(trimmed, ":")
		default:
			return nil, fmt.Errorf("%s:%d: the key below the marker must end in `:` (a mapping) or `: |` (a literal block), got %q", file, i+2, keyLine)
		}
		// The content runs until the first non-empty line indented no
		// deeper than the key; blank lines right before it are not part
		// of it.
		end := e.start
		for j := e.start; j < len(lines); j++ {
			if strings.TrimSpace(lines[j]) == "" {
				continue
			}
			if !strings.HasPrefix(lines[j], e.indent) {
				break
			}
			end = j + 1
		}
		e.end = end
		out = append(out, e)
	}
	return out, nil
}

// fileLines reads a file as lines (without the final newline).
func fileLines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// embeddedIn lists the marked copies of a file.
func embeddedIn(t *testing.T, file string) []embedded {
	t.Helper()
	copies, err := findEmbedded(file, fileLines(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return copies
}

// render is the copy's lines for the source text: each line indented, blank
// lines left empty.
func (e embedded) render(text string) []string {
	text = strings.TrimSuffix(text, "\n")
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l == "" {
			out = append(out, "")
			continue
		}
		out = append(out, e.indent+l)
	}
	return out
}

// embeddingFiles are the files of deploy/ that may hold marked copies.
func embeddingFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{"k8s", "helm", "operator"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, ".yaml") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func TestEmbeddedConfigsMatchSources(t *testing.T) {
	total := 0
	for _, file := range embeddingFiles(t) {
		lines := fileLines(t, file)
		copies := embeddedIn(t, file)
		if len(copies) == 0 {
			continue
		}
		var out []string
		prev := 0
		changed := false
		for _, e := range copies {
			text, err := e.sourceText()
			if err != nil {
				t.Fatal(err)
			}
			want := e.render(text)
			got := lines[e.start:e.end]
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				changed = true
				if !*update {
					t.Errorf("%s:%d: the copy of %s %s differs from its source at line %d; run `go test ./deploy/ -run TestEmbeddedConfigsMatchSources -update`",
						file, e.line, e.source, e.variant, e.start+firstDiff(got, want)+1)
				}
			}
			out = append(out, lines[prev:e.start]...)
			out = append(out, want...)
			prev = e.end
			total++
		}
		out = append(out, lines[prev:]...)
		if changed && *update {
			if err := os.WriteFile(file, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote %s", file)
		}
	}
	if total == 0 {
		t.Fatal("no embedded config found under deploy/: the markers are gone")
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
