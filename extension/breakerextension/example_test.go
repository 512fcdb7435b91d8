// Copyright The otelcsp Authors
// SPDX-License-Identifier: Apache-2.0

package breakerextension_test

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/otelcsp/otelcsp/extension/breakerextension"
)

type host struct {
	exts map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.exts }

// An exporter finds the breaker extension at Start, then asks before each
// call and reports each outcome.
func ExampleFromHost() {
	f := breakerextension.NewFactory()
	id := component.NewID(f.Type())
	ext, _ := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), f.CreateDefaultConfig())
	h := host{exts: map[component.ID]component.Component{id: ext}}
	_ = ext.Start(context.Background(), h)
	defer func() { _ = ext.Shutdown(context.Background()) }()

	// In the exporter's Start:
	breakers, err := breakerextension.FromHost(h, id)
	if err != nil {
		panic(err)
	}

	// For each call to a backend:
	send := func(endpoint string) error {
		permit, err := breakers.Breaker(endpoint).Allow()
		if err != nil {
			return err // ErrOpen: try another backend, or later
		}
		err = status.Error(codes.Unavailable, "backend down") // the real call goes here
		permit.Done(err)
		return err
	}
	for i := range 6 {
		err := send("backend-1:4317")
		fmt.Println(i, errors.Is(err, breakerextension.ErrOpen), breakers.Breaker("backend-1:4317").State())
	}
	// Output:
	// 0 false closed
	// 1 false closed
	// 2 false closed
	// 3 false closed
	// 4 false open
	// 5 true open
}
