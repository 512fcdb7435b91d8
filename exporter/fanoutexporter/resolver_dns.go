package fanoutexporter

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// newDNSLookup resolves the hostname's A/AAAA records (with the configured
// port) or its SRV records (hosts and ports from the records).
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
		if cfg.SRV {
			_, records, err := r.LookupSRV(ctx, "", "", cfg.Hostname)
			if err != nil {
				return nil, fmt.Errorf("SRV lookup of %q: %w", cfg.Hostname, err)
			}
			specs := make([]backendSpec, 0, len(records))
			for _, rec := range records {
				host := strings.TrimSuffix(rec.Target, ".")
				specs = append(specs, backendSpec{endpoint: net.JoinHostPort(host, strconv.Itoa(int(rec.Port))), weight: 1})
			}
			return specs, nil
		}
		addrs, err := r.LookupIPAddr(ctx, cfg.Hostname)
		if err != nil {
			return nil, fmt.Errorf("lookup of %q: %w", cfg.Hostname, err)
		}
		specs := make([]backendSpec, 0, len(addrs))
		for _, a := range addrs {
			specs = append(specs, backendSpec{endpoint: net.JoinHostPort(a.IP.String(), cfg.Port), weight: 1})
		}
		return specs, nil
	}
}
