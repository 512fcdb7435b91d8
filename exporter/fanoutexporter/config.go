package fanoutexporter

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/pipeline"
)

// Routing keys. Which ones a signal accepts is in routingKeys.
const (
	keyTraceID    = "traceID"
	keyService    = "service"
	keyAttributes = "attributes"
	keyResource   = "resource"
	keyMetric     = "metric"
	keyStreamID   = "streamID"
)

// routingKeys lists the keys each signal accepts, its default first.
var routingKeys = map[pipeline.Signal][]string{
	pipeline.SignalTraces:  {keyTraceID, keyService, keyAttributes},
	pipeline.SignalMetrics: {keyService, keyResource, keyMetric, keyStreamID, keyAttributes},
	pipeline.SignalLogs:    {keyTraceID, keyService, keyResource, keyAttributes},
}

// Config is the fanout exporter's configuration.
type Config struct {
	// RoutingKey is what items are routed by. Empty means the signal's
	// default: traceID for traces and logs, service for metrics.
	RoutingKey string `mapstructure:"routing_key"`
	// RoutingAttributes are the attributes hashed when RoutingKey is
	// "attributes": looked up on the item first, then on its resource.
	RoutingAttributes []string `mapstructure:"routing_attributes"`
	// StreamIDExclude are attributes (resource or data point) left out of
	// the stream identity with routing_key streamID: by default the
	// writer's collector.instance.id, so every writer's points of one
	// series reach the same backend, where deltamerge merges them.
	StreamIDExclude []string `mapstructure:"stream_id_exclude"`

	Resolver ResolverConfig `mapstructure:"resolver"`
	// Handover, when the backend set changes, keeps sending keys that were
	// already flowing to their previous owner for this long (0: off), so
	// that traces in flight stay whole; tail sampling's decision_wait is
	// the value to use.
	Handover time.Duration  `mapstructure:"handover"`
	Protocol ProtocolConfig `mapstructure:"protocol"`

	// Breaker is the ID of a breaker extension; each backend endpoint is a
	// breaker key. Without it, backends are never ejected.
	Breaker *component.ID `mapstructure:"breaker"`
	// MaxEjectedPercent caps how many backends open breakers may eject.
	// Past it, data goes to its owners anyway (panic mode), rather than
	// piling onto the few backends left.
	MaxEjectedPercent int `mapstructure:"max_ejected_percent"`

	// QueueConfig is the fanout's sending queue (exporterhelper's: in
	// memory, or persistent through `storage`). It sits in front of the
	// routing, so what it holds is routed when it is sent, to the backends
	// healthy then.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// RetryConfig paces the retries of the part of a batch that no backend
	// took; the part already delivered is never resent. Without a queue,
	// max_elapsed_time bounds how long the caller waits.
	RetryConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`
	// MaxWait, with a queue, bounds how long a batch taken from the queue
	// waits for a backend before it is dropped (and counted); 0 is no
	// limit: the queue's size bounds what waits.
	MaxWait time.Duration `mapstructure:"max_wait"`
	// DrainTimeout bounds the drain at shutdown: queued and in-flight data
	// keeps going to the backends (open breakers no longer stop it) until
	// then; what is left is counted, logged once, and kept on disk by a
	// persistent queue. Keep it below the orchestrator's grace period.
	DrainTimeout time.Duration `mapstructure:"drain_timeout"`

	_ struct{}
}

// ResolverConfig holds exactly one way of finding the backends.
type ResolverConfig struct {
	Static configoptional.Optional[StaticResolverConfig] `mapstructure:"static"`
	DNS    configoptional.Optional[DNSResolverConfig]    `mapstructure:"dns"`
	File   configoptional.Optional[FileResolverConfig]   `mapstructure:"file"`
	K8s    configoptional.Optional[K8sResolverConfig]    `mapstructure:"k8s"`
}

// StaticResolverConfig is a fixed list of backends.
type StaticResolverConfig struct {
	Endpoints []string `mapstructure:"endpoints"`
	// Weights gives some endpoints a weight other than 1: a backend of
	// weight 2 gets twice the keys of one of weight 1.
	Weights map[string]float64 `mapstructure:"weights"`
}

// DNSResolverConfig finds backends in DNS.
type DNSResolverConfig struct {
	// Hostname is resolved to A/AAAA records, or with SRV to SRV records.
	Hostname string `mapstructure:"hostname"`
	// Port is used with A/AAAA records (SRV records carry their own).
	Port string `mapstructure:"port"`
	// SRV resolves Hostname as an SRV name (for example
	// _otlp._tcp.collectors.ns.svc.cluster.local).
	SRV      bool          `mapstructure:"srv"`
	Interval time.Duration `mapstructure:"interval"`
	Timeout  time.Duration `mapstructure:"timeout"`
	// Server is a DNS server (host:port) to ask instead of the system's.
	Server string `mapstructure:"server"`
}

// FileResolverConfig reads backends from a file, one `endpoint [weight]`
// a line, re-read whenever it changes.
type FileResolverConfig struct {
	Path     string        `mapstructure:"path"`
	Interval time.Duration `mapstructure:"interval"`
}

// K8sResolverConfig watches a Kubernetes Service's EndpointSlices.
type K8sResolverConfig struct {
	// Service is name.namespace (or name, for the collector's own
	// namespace).
	Service string `mapstructure:"service"`
	// Ports are the Service ports to send to, by name or number; each ready
	// endpoint is a backend on each of them.
	Ports []string `mapstructure:"ports"`
	// Timeout bounds the wait, at start, for the first list of endpoints.
	Timeout time.Duration `mapstructure:"timeout"`
	// Resync is the informer's periodic resync (0: none); an unchanged set
	// is not applied again.
	Resync time.Duration `mapstructure:"resync"`
}

// Unmarshal lets ports mix numbers and names (`ports: [4317, otlp-grpc]`).
func (k *K8sResolverConfig) Unmarshal(conf *confmap.Conf) error {
	raw := conf.ToStringMap()
	if ports, ok := raw["ports"].([]any); ok {
		for i, p := range ports {
			switch p.(type) {
			case int, int32, int64, uint, uint32, uint64:
				ports[i] = fmt.Sprint(p)
			}
		}
	}
	type plain K8sResolverConfig // without this method, so no recursion
	return confmap.NewFromStringMap(raw).Unmarshal((*plain)(k))
}

// ProtocolConfig is the template of the per-backend exporter: exactly one of
// otlp (gRPC) and otlphttp. The resolver fills in the endpoint.
type ProtocolConfig struct {
	OTLP     configoptional.Optional[OTLPConfig]     `mapstructure:"otlp"`
	OTLPHTTP configoptional.Optional[OTLPHTTPConfig] `mapstructure:"otlphttp"`
}

// OTLPConfig is the core otlp exporter's connection settings (TLS,
// compression, headers, auth, keepalive, balancer, timeout). Its queue and
// retry are the fanout's own, so they are not part of the template.
type OTLPConfig struct {
	exporterhelper.TimeoutConfig `mapstructure:",squash"`
	configgrpc.ClientConfig      `mapstructure:",squash"`
}

// OTLPHTTPConfig is the core otlphttp exporter's connection settings.
type OTLPHTTPConfig struct {
	confighttp.ClientConfig `mapstructure:",squash"`
	Encoding                otlphttpexporter.EncodingType `mapstructure:"encoding"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration, naming the key and value at fault.
func (cfg *Config) Validate() error {
	var errs []error
	if err := cfg.validateRouting(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Resolver.validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Protocol.OTLP.HasValue() && cfg.Protocol.OTLPHTTP.HasValue() {
		errs = append(errs, errors.New(`"protocol": set only one of otlp and otlphttp`))
	}
	if o := cfg.Protocol.OTLP.Get(); o != nil && o.Endpoint != "" {
		errs = append(errs, fmt.Errorf(`"protocol.otlp.endpoint": the resolver sets each backend's endpoint; remove %q`, o.Endpoint))
	}
	if o := cfg.Protocol.OTLPHTTP.Get(); o != nil && o.Endpoint != "" {
		errs = append(errs, fmt.Errorf(`"protocol.otlphttp.endpoint": the resolver sets each backend's endpoint; remove %q`, o.Endpoint))
	}
	if cfg.Handover < 0 {
		errs = append(errs, fmt.Errorf(`"handover": must be >= 0, got %s`, cfg.Handover))
	}
	if cfg.MaxWait < 0 {
		errs = append(errs, fmt.Errorf(`"max_wait": must be >= 0, got %s`, cfg.MaxWait))
	}
	if cfg.MaxWait > 0 && !cfg.QueueConfig.HasValue() {
		errs = append(errs, fmt.Errorf(`"max_wait": only applies with "sending_queue" (without one, "retry_on_failure.max_elapsed_time" bounds the wait), got %s`, cfg.MaxWait))
	}
	if cfg.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf(`"drain_timeout": must be > 0, got %s`, cfg.DrainTimeout))
	}
	if cfg.MaxEjectedPercent < 0 || cfg.MaxEjectedPercent > 100 {
		errs = append(errs, fmt.Errorf(`"max_ejected_percent": must be between 0 and 100, got %d`, cfg.MaxEjectedPercent))
	}
	return errors.Join(errs...)
}

func (cfg *Config) validateRouting() error {
	if cfg.RoutingKey != "" {
		valid := false
		for _, keys := range routingKeys {
			for _, k := range keys {
				valid = valid || k == cfg.RoutingKey
			}
		}
		if !valid {
			return fmt.Errorf(`"routing_key": unknown key %q (traces: traceID, service, attributes; metrics: service, resource, metric, streamID, attributes; logs: traceID, service, resource, attributes)`, cfg.RoutingKey)
		}
	}
	switch {
	case cfg.RoutingKey == keyAttributes && len(cfg.RoutingAttributes) == 0:
		return errors.New(`"routing_attributes": required when "routing_key" is "attributes"`)
	case cfg.RoutingKey != keyAttributes && len(cfg.RoutingAttributes) > 0:
		return fmt.Errorf(`"routing_attributes": only used with "routing_key: attributes", but routing_key is %q`, cfg.RoutingKey)
	}
	return nil
}

// routingKeyFor returns the routing key for a signal, or an error when the
// configured key does not apply to it.
func (cfg *Config) routingKeyFor(signal pipeline.Signal) (string, error) {
	keys := routingKeys[signal]
	if cfg.RoutingKey == "" {
		return keys[0], nil
	}
	for _, k := range keys {
		if k == cfg.RoutingKey {
			return k, nil
		}
	}
	return "", fmt.Errorf(`"routing_key": %q does not apply to %s (use one of %v)`, cfg.RoutingKey, signal, keys)
}

func (r *ResolverConfig) validate() error {
	n := 0
	for _, set := range []bool{r.Static.HasValue(), r.DNS.HasValue(), r.File.HasValue(), r.K8s.HasValue()} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf(`"resolver": configure exactly one of static, dns, file and k8s (got %d)`, n)
	}
	switch {
	case r.Static.HasValue():
		return r.Static.Get().validate()
	case r.DNS.HasValue():
		return r.DNS.Get().validate()
	case r.K8s.HasValue():
		return r.K8s.Get().validate()
	default:
		return r.File.Get().validate()
	}
}

func (s *StaticResolverConfig) validate() error {
	if len(s.Endpoints) == 0 {
		return errors.New(`"resolver.static.endpoints": at least one endpoint is required`)
	}
	seen := map[string]bool{}
	for _, e := range s.Endpoints {
		if err := validateEndpoint(e); err != nil {
			return fmt.Errorf(`"resolver.static.endpoints": %w`, err)
		}
		if seen[e] {
			return fmt.Errorf(`"resolver.static.endpoints": %q is listed twice`, e)
		}
		seen[e] = true
	}
	if len(s.Endpoints) > maxBackends {
		return fmt.Errorf(`"resolver.static.endpoints": at most %d endpoints, got %d`, maxBackends, len(s.Endpoints))
	}
	for e, w := range s.Weights {
		if !seen[e] {
			return fmt.Errorf(`"resolver.static.weights": %q is not one of the endpoints`, e)
		}
		if err := validateWeight(w); err != nil {
			return fmt.Errorf(`"resolver.static.weights.%s": %w`, e, err)
		}
	}
	return nil
}

func (d *DNSResolverConfig) validate() error {
	if d.Hostname == "" {
		return errors.New(`"resolver.dns.hostname": required`)
	}
	if !d.SRV {
		if p, err := strconv.Atoi(d.Port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf(`"resolver.dns.port": must be a port number, got %q`, d.Port)
		}
	}
	if d.Interval <= 0 {
		return fmt.Errorf(`"resolver.dns.interval": must be > 0, got %s`, d.Interval)
	}
	if d.Timeout <= 0 {
		return fmt.Errorf(`"resolver.dns.timeout": must be > 0, got %s`, d.Timeout)
	}
	if d.Server != "" {
		if _, _, err := net.SplitHostPort(d.Server); err != nil {
			return fmt.Errorf(`"resolver.dns.server": must be host:port, got %q`, d.Server)
		}
	}
	return nil
}

var errK8sNoService = errors.New(`"resolver.k8s.service": required, as name.namespace (or name, for this pod's namespace)`)

func (k *K8sResolverConfig) validate() error {
	if k.Service == "" {
		return errK8sNoService
	}
	name, ns, _ := strings.Cut(k.Service, ".")
	if name == "" || strings.Contains(ns, ".") {
		return fmt.Errorf(`"resolver.k8s.service": must be name.namespace (or name), got %q`, k.Service)
	}
	if len(k.Ports) == 0 {
		return errors.New(`"resolver.k8s.ports": at least one port name or number is required`)
	}
	for _, p := range k.Ports {
		if n, err := strconv.Atoi(p); err == nil && (n < 1 || n > 65535) {
			return fmt.Errorf(`"resolver.k8s.ports": %q is not a port number`, p)
		}
		if p == "" {
			return errors.New(`"resolver.k8s.ports": empty port name`)
		}
	}
	if k.Timeout <= 0 {
		return fmt.Errorf(`"resolver.k8s.timeout": must be > 0, got %s`, k.Timeout)
	}
	if k.Resync < 0 {
		return fmt.Errorf(`"resolver.k8s.resync": must be >= 0, got %s`, k.Resync)
	}
	return nil
}

func (f *FileResolverConfig) validate() error {
	if f.Path == "" {
		return errors.New(`"resolver.file.path": required`)
	}
	if f.Interval <= 0 {
		return fmt.Errorf(`"resolver.file.interval": must be > 0, got %s`, f.Interval)
	}
	return nil
}

func validateEndpoint(e string) error {
	host, port, err := net.SplitHostPort(e)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port", e)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q has an invalid port", e)
	}
	return nil
}

func validateWeight(w float64) error {
	if !(w > 0) || w > 1e6 {
		return fmt.Errorf("weight must be > 0 and <= 1e6, got %v", w)
	}
	return nil
}
