package fanoutexporter

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// newDNSLookup resolves the hostname's A/AAAA records (with the configured
// port) or its SRV records (hosts, ports and weights from the records).
// Repeated records count once; an answer with more than maxBackends
// backends is refused (the last good set stays), like a file that long.
func newDNSLookup(cfg DNSResolverConfig) func(context.Context) ([]backendSpec, error) {
	r := net.DefaultResolver
	if cfg.Server != "" {
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, cfg.Server)
		}}
	}
	return func(ctx context.Context) ([]backendSpec, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		var specs []backendSpec
		if cfg.SRV {
			_, records, err := r.LookupSRV(ctx, "", "", cfg.Hostname)
			if err != nil {
				return nil, fmt.Errorf("SRV lookup of %q: %w", cfg.Hostname, err)
			}
			specs = srvSpecs(records)
		} else {
			addrs, err := r.LookupIPAddr(ctx, cfg.Hostname)
			if err != nil {
				return nil, fmt.Errorf("lookup of %q: %w", cfg.Hostname, err)
			}
			specs = make([]backendSpec, 0, len(addrs))
			for _, a := range addrs {
				specs = append(specs, backendSpec{endpoint: net.JoinHostPort(a.IP.String(), cfg.Port), weight: 1})
			}
		}
		specs = dedupSpecs(specs)
		if len(specs) > maxBackends {
			return nil, fmt.Errorf("%q: at most %d backends, got %d", cfg.Hostname, maxBackends, len(specs))
		}
		return specs, nil
	}
}

// srvSpecs keeps the records of the most preferred (lowest) priority, as
// RFC 2782 asks, each weighted by its SRV weight (a weight of 0, "no
// preference", counts as 1).
func srvSpecs(records []*net.SRV) []backendSpec {
	if len(records) == 0 {
		return nil
	}
	best := records[0].Priority
	for _, rec := range records {
		best = min(best, rec.Priority)
	}
	specs := make([]backendSpec, 0, len(records))
	for _, rec := range records {
		if rec.Priority != best {
			continue
		}
		host := strings.TrimSuffix(rec.Target, ".")
		specs = append(specs, backendSpec{
			endpoint: net.JoinHostPort(host, strconv.Itoa(int(rec.Port))),
			weight:   float64(max(rec.Weight, 1)),
		})
	}
	return specs
}

// dedupSpecs keeps the first of repeated endpoints.
func dedupSpecs(specs []backendSpec) []backendSpec {
	seen := make(map[string]bool, len(specs))
	out := specs[:0]
	for _, s := range specs {
		if !seen[s.endpoint] {
			seen[s.endpoint] = true
			out = append(out, s)
		}
	}
	return out
}
