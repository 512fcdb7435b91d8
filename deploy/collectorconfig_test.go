package deploy

import (
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// What the deployment checks need to know about a collector config: the
// environment variables it reads, the addresses it listens on and the
// backends its fanouts resolve.

// envRef is `${env:NAME}` or `${env:NAME:-default}` as the collector's env
// provider reads it.
var envRef = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// envUse is how a config reads one variable.
type envUse struct {
	required bool // some reference has no default
}

// envVars lists the variables a config reads.
func envVars(config string) map[string]envUse {
	out := map[string]envUse{}
	for _, m := range envRef.FindAllStringSubmatch(uncommented(config), -1) {
		u := out[m[1]]
		u.required = u.required || m[2] == ""
		out[m[1]] = u
	}
	return out
}

// uncommented drops YAML comments (whole-line and trailing), which mention
// variables without reading them.
func uncommented(config string) string {
	var sb strings.Builder
	for _, l := range strings.Split(config, "\n") {
		if i := strings.Index(l, "#"); i >= 0 && (i == 0 || l[i-1] == ' ') {
			l = l[:i]
		}
		sb.WriteString(l)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// expand substitutes the variables as the collector would, from env, or
// the reference's default; unset without a default is an error.
func expand(config string, env map[string]string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(uncommented(config), func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if v, ok := env[m[1]]; ok {
			return v
		}
		if m[2] != "" {
			return m[3]
		}
		missing = append(missing, m[1])
		return ""
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("the config reads %v, which is not set and has no default", missing)
	}
	return out, nil
}

// parsedConfig is an expanded collector config.
type parsedConfig map[string]any

func parseConfig(expanded string) (parsedConfig, error) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(expanded), &m); err != nil {
		return nil, err
	}
	return m, nil
}

func (c parsedConfig) section(name string) map[string]any {
	m, _ := c[name].(map[string]any)
	return m
}

// listenAddr is one address a config serves on.
type listenAddr struct {
	where string // the key, for messages
	host  string
	port  int
}

// listens lists the addresses of every `endpoint` under receivers and
// extensions, and of the collector's own Prometheus metrics reader.
func (c parsedConfig) listens() ([]listenAddr, error) {
	var out []listenAddr
	var walk func(path string, v any) error
	walk = func(path string, v any) error {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "endpoint" {
					host, port, err := net.SplitHostPort(s)
					if err != nil {
						return fmt.Errorf("%s.endpoint %q: %w", path, s, err)
					}
					p, err := strconv.Atoi(port)
					if err != nil {
						return fmt.Errorf("%s.endpoint %q: port: %w", path, s, err)
					}
					out = append(out, listenAddr{where: path, host: host, port: p})
					continue
				}
				if err := walk(path+"."+k, x); err != nil {
					return err
				}
			}
		case []any:
			for i, x := range v {
				if err := walk(fmt.Sprintf("%s[%d]", path, i), x); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, s := range []string{"receivers", "extensions"} {
		if err := walk(s, c[s]); err != nil {
			return nil, err
		}
	}
	readers, _ := dig(map[string]any(c), "service", "telemetry", "metrics", "readers").([]any)
	for i, r := range readers {
		prom, ok := dig(r, "pull", "exporter", "prometheus").(map[string]any)
		if !ok {
			continue
		}
		host, _ := prom["host"].(string)
		port, err := asInt(prom["port"])
		if err != nil {
			return nil, fmt.Errorf("service.telemetry.metrics.readers[%d].pull.exporter.prometheus.port: %w", i, err)
		}
		out = append(out, listenAddr{where: fmt.Sprintf("service.telemetry.metrics.readers[%d]", i), host: host, port: port})
	}
	return out, nil
}

func asInt(v any) (int, error) {
	switch v := v.(type) {
	case float64:
		return int(v), nil
	case int:
		return v, nil
	case int64:
		return int(v), nil
	case string:
		return strconv.Atoi(v)
	}
	return 0, fmt.Errorf("%v is not a number", v)
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// fanoutResolver is the resolver of one fanout exporter.
type fanoutResolver struct {
	exporter string
	// dns with srv: the SRV name; k8s: the Service (name.namespace) and ports.
	srv     string
	service string
	ports   []string
	static  bool
}

func (c parsedConfig) fanoutResolvers() []fanoutResolver {
	var out []fanoutResolver
	exps := c.section("exporters")
	names := make([]string, 0, len(exps))
	for n := range exps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if name != "fanout" && !strings.HasPrefix(name, "fanout/") {
			continue
		}
		r := fanoutResolver{exporter: name}
		if dns, ok := dig(exps[name], "resolver", "dns").(map[string]any); ok {
			if srv, _ := dns["srv"].(bool); srv {
				r.srv, _ = dns["hostname"].(string)
			}
		}
		if k8s, ok := dig(exps[name], "resolver", "k8s").(map[string]any); ok {
			r.service, _ = k8s["service"].(string)
			ports, _ := k8s["ports"].([]any)
			for _, p := range ports {
				r.ports = append(r.ports, fmt.Sprint(p))
			}
			if len(ports) == 0 {
				r.ports = []string{"4317"} // the resolver's default
			}
		}
		_, r.static = dig(exps[name], "resolver", "static").(map[string]any)
		out = append(out, r)
	}
	return out
}

// srvName splits a cluster DNS SRV name,
// _<port>._<proto>.<service>.<namespace>.svc.<cluster domain>.
func srvName(name string) (port, proto, service, namespace string, err error) {
	parts := strings.Split(strings.TrimSuffix(name, "."), ".")
	if len(parts) < 5 || parts[4] != "svc" || !strings.HasPrefix(parts[0], "_") || !strings.HasPrefix(parts[1], "_") {
		return "", "", "", "", fmt.Errorf("%q is not _<port>._<proto>.<service>.<namespace>.svc.<domain>", name)
	}
	return parts[0][1:], parts[1][1:], parts[2], parts[3], nil
}
