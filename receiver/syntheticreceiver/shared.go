package syntheticreceiver // import "github.com/otelcsp/otelcsp/receiver/syntheticreceiver"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
)

// The collector asks the factory for a traces receiver and for a logs
// receiver separately, even when both pipelines list the same receiver ID.
// Both must be one generator, or the logs would describe traces that were
// never sent. The collector hands both calls the same *Config for one ID, so
// instances are shared per *Config, as otlpreceiver shares its servers.
type sharedReceivers struct {
	mu sync.Mutex
	m  map[*Config]*sharedReceiver
}

var receivers = &sharedReceivers{m: map[*Config]*sharedReceiver{}}

// loadOrStore returns the receiver for cfg, creating it with create on
// first use.
func (s *sharedReceivers) loadOrStore(cfg *Config, create func() (*syntheticReceiver, error)) (*sharedReceiver, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[cfg]; ok {
		return r, nil
	}
	r, err := create()
	if err != nil {
		return nil, err
	}
	sr := &sharedReceiver{syntheticReceiver: r, remove: func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.m, cfg)
	}}
	s.m[cfg] = sr
	return sr, nil
}

// sharedReceiver starts and stops the receiver once however many pipelines
// use it, and forgets it once stopped so the same config can build a fresh
// one (the collector rebuilds on a config reload).
type sharedReceiver struct {
	*syntheticReceiver
	startOnce sync.Once
	startErr  error
	stopOnce  sync.Once
	stopErr   error
	remove    func()
}

func (s *sharedReceiver) Start(ctx context.Context, host component.Host) error {
	s.startOnce.Do(func() { s.startErr = s.syntheticReceiver.Start(ctx, host) })
	return s.startErr
}

func (s *sharedReceiver) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopErr = s.syntheticReceiver.Shutdown(ctx)
		s.remove()
	})
	return s.stopErr
}
