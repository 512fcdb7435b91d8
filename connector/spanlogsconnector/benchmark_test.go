package spanlogsconnector

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const benchStack = `java.lang.IllegalStateException: order %d failed
	at com.shop.Payments.charge(Payments.java:42)
	at com.shop.Checkout.pay(Checkout.java:17)
	at com.shop.Http.handle(Http.java:99)`

// mixedBatch is 10 services × 100 spans: 10% have status ERROR, a third of
// those carry an exception event (plus a non-exception event), 5% run
// longer than a second; every span has six attributes. errorRate 0 gives a
// batch no default rule matches.
func mixedBatch(errorEvery int) ptrace.Traces {
	td := ptrace.NewTraces()
	n := 0
	for s := 0; s < 10; s++ {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "service-"+strconv.Itoa(s))
		rs.Resource().Attributes().PutStr("host.name", "host-1")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("bench")
		for i := 0; i < 100; i++ {
			n++
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{byte(n), byte(n >> 8), 1})
			sp.SetSpanID(pcommon.SpanID{byte(n), byte(n >> 8), 2})
			sp.SetName("GET /api/items/" + strconv.Itoa(i%20))
			sp.SetKind(ptrace.SpanKindServer)
			start := baseTime.Add(time.Duration(n) * time.Millisecond)
			dur := 20 * time.Millisecond
			if n%20 == 0 {
				dur = 1500 * time.Millisecond
			}
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(dur)))
			a := sp.Attributes()
			a.PutStr("http.request.method", "GET")
			a.PutStr("http.route", "/api/items/{id}")
			a.PutInt("http.response.status_code", 200)
			a.PutStr("url.path", "/api/items/"+strconv.Itoa(i))
			a.PutStr("user_agent.original", "bench/1.0")
			a.PutStr("server.address", "items.internal")
			if errorEvery > 0 && n%errorEvery == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("upstream timeout")
				if n%(3*errorEvery) == 0 {
					ev := sp.Events().AppendEmpty()
					ev.SetName("log")
					ev = sp.Events().AppendEmpty()
					ev.SetName("exception")
					ev.SetTimestamp(pcommon.NewTimestampFromTime(start))
					ev.Attributes().PutStr("exception.type", "java.lang.IllegalStateException")
					ev.Attributes().PutStr("exception.message", "order "+strconv.Itoa(n)+" failed")
					ev.Attributes().PutStr("exception.stacktrace", benchStack)
				}
			}
		}
	}
	return td
}

func BenchmarkConsumeTraces(b *testing.B) {
	cases := []struct {
		name       string
		errorEvery int
		modify     func(*Config)
	}{
		// Default rules and limits: after the first batch nearly every
		// record is a duplicate and is suppressed.
		{"default", 10, func(*Config) {}},
		// No limit: every candidate becomes a record (the per-record cost).
		{"unlimited", 10, func(c *Config) { c.RatePerFingerprint = 0 }},
		{"unlimited_no_attributes", 10, func(c *Config) {
			c.RatePerFingerprint = 0
			c.Attributes.Exclude = []string{"*"}
		}},
		// Every rule type with the default limits: the `all` rule asks the
		// limiter for every span (steady state: almost all suppressed).
		{"all_rules", 10, func(c *Config) {
			c.Rules = append(c.Rules,
				RuleConfig{Type: "slow", Threshold: time.Second},
				RuleConfig{Type: "all"})
		}},
		// Every span becomes a record: 1000 records per op.
		{"all_unlimited", 10, func(c *Config) {
			c.Rules = []RuleConfig{{Type: "all", RatePerFingerprint: ptr(0.0)}}
			c.Attributes.Exclude = []string{"*"}
		}},
		// Nothing matches: must not allocate at all.
		{"no_match", 0, func(*Config) {}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			cfg := createDefaultConfig()
			tc.modify(cfg)
			comp, err := compileConfig(cfg)
			require.NoError(b, err)
			counter := new(recordCounter)
			c, err := newSpanLogs(componenttest.NewNopTelemetrySettings(), testID, comp, counter)
			require.NoError(b, err)
			td := mixedBatch(tc.errorEvery)
			spans := td.SpanCount()
			ctx := context.Background()
			require.NoError(b, c.ConsumeTraces(ctx, td)) // warm pools and fingerprints
			counter.records = 0

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := c.ConsumeTraces(ctx, td); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			n := float64(b.N)
			b.ReportMetric(float64(spans)*n/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(b.Elapsed().Seconds()*1e9/(float64(spans)*n), "ns/span")
			b.ReportMetric(float64(counter.records)/n, "records/op")
			if counter.records >= b.N { // meaningful only when every op emits
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(counter.records), "allocs/record")
			}
			require.NoError(b, c.Shutdown(ctx))
		})
	}
}

// recordCounter counts records and drops them, like a fast exporter.
type recordCounter struct {
	records int
}

func (*recordCounter) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (r *recordCounter) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	r.records += ld.LogRecordCount()
	return nil
}
