package fanoutexporter

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// fileLookup reads a backend list: one `endpoint [weight]` a line; blank
// lines and lines starting with # are ignored. Re-reading it every interval
// follows the file whatever replaced it (an editor's rename, a Kubernetes
// ConfigMap's symlink swap, a Consul template).
func fileLookup(path string) func(context.Context) ([]backendSpec, error) {
	return func(context.Context) ([]backendSpec, error) {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return parseBackendList(raw, path)
	}
}

func parseBackendList(raw []byte, name string) ([]backendSpec, error) {
	var specs []backendSpec
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) > 2 {
			return nil, fmt.Errorf("%s:%d: want `endpoint [weight]`, got %q", name, line, text)
		}
		spec := backendSpec{endpoint: fields[0], weight: 1}
		if err := validateEndpoint(spec.endpoint); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if len(fields) == 2 {
			w, err := strconv.ParseFloat(fields[1], 64)
			if err == nil {
				err = validateWeight(w)
			} else {
				err = fmt.Errorf("weight %q is not a number", fields[1])
			}
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			spec.weight = w
		}
		if seen[spec.endpoint] {
			return nil, fmt.Errorf("%s:%d: %q is listed twice", name, line, spec.endpoint)
		}
		seen[spec.endpoint] = true
		specs = append(specs, spec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(specs) > maxBackends {
		return nil, fmt.Errorf("%s: at most %d backends, got %d", name, maxBackends, len(specs))
	}
	return specs, nil
}
