package e2e_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

// The stores a gateway (testdata/deploy/gateway.yaml) writes to, in the test
// process: a Prometheus remote-write receiver for its RED metrics and an
// OTLP/HTTP logs receiver for its span logs. (Its sampled traces go to a
// countingServer.) Both are one HTTP server on a 127.0.0.1 port.

const (
	remoteWritePath = "/api/v1/push"
	logStorePath    = "/otlp" // the gateway appends /v1/logs
	// redCallsSeries is the RED calls counter as prometheus_remote_write
	// names it: traces.span.metrics.calls, a monotonic cumulative sum,
	// with dots turned into underscores and the counter suffix added.
	redCallsSeries = "traces_span_metrics_calls_total"
)

// storeSink is the HTTP server of the remote-write and logs stores.
type storeSink struct {
	t *testing.T
	httpSink

	mu sync.Mutex
	// series keeps, per remote-write series (all its labels, __name__
	// included), the sample with the latest timestamp.
	series      map[string]promSample
	names       map[string]int         // series per metric name
	writes      int                    // remote-write requests decoded
	staleNaNs   int                    // samples that were stale markers (ignored)
	logs        map[pcommon.SpanID]int // log records per span ID
	logRecords  int
	logRequests int
	logSev      map[plog.SeverityNumber]int
	logBodies   map[string]int // records per body kind (the part after the span name)
	suppressed  int64          // sum of the spanlogs.suppressed_count attributes
}

type promSample struct {
	labels map[string]string
	ts     int64 // ms
	value  float64
}

func startStoreSink(t *testing.T) *storeSink {
	t.Helper()
	s := &storeSink{
		t:      t,
		series: map[string]promSample{}, names: map[string]int{},
		logs: map[pcommon.SpanID]int{}, logSev: map[plog.SeverityNumber]int{}, logBodies: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+remoteWritePath, s.remoteWrite)
	mux.HandleFunc("POST "+logStorePath+"/v1/logs", s.otlpLogs)
	s.serve(t, "store sink", mux)
	return s
}

// httpSink is the HTTP server of a store in the test process. A request it
// cannot decode is answered 400 and fails the test at cleanup.
type httpSink struct {
	url string // http://127.0.0.1:port
	srv *http.Server

	badMu sync.Mutex
	bad   []string
}

func (h *httpSink) serve(t *testing.T, name string, mux *http.ServeMux) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.url = "http://" + lis.Addr().String()
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = h.srv.Serve(lis) }()
	t.Cleanup(func() {
		_ = h.srv.Close()
		<-done
		h.badMu.Lock()
		defer h.badMu.Unlock()
		if len(h.bad) > 0 {
			t.Errorf("%s got %d requests it could not decode; first: %s", name, len(h.bad), h.bad[0])
		}
	})
}

func (h *httpSink) fail(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.badMu.Lock()
	h.bad = append(h.bad, msg)
	h.badMu.Unlock()
	http.Error(w, msg, http.StatusBadRequest)
}

// readRemoteWrite decodes a remote-write request from who, or answers it
// with a failure (ok false).
func (h *httpSink) readRemoteWrite(w http.ResponseWriter, r *http.Request, who string) (ts []promTimeSeries, ok bool) {
	if v := r.Header.Get("X-Prometheus-Remote-Write-Version"); !strings.HasPrefix(v, "0.1.") {
		h.fail(w, "%sremote write version %q, want 0.1.0 (WriteRequest v1)", who, v)
		return nil, false
	}
	b, err := storeBody(r)
	if err != nil {
		h.fail(w, "%sremote write body: %v", who, err)
		return nil, false
	}
	ts, err = prwDecode(b)
	if err != nil {
		h.fail(w, "%sremote write: %v", who, err)
		return nil, false
	}
	return ts, true
}

func (s *storeSink) remoteWriteURL() string { return s.url + remoteWritePath }
func (s *storeSink) logStoreURL() string    { return s.url + logStorePath }

// storeBody reads a request body, undoing the Content-Encoding the exporters use
// (remote write: snappy, always; OTLP/HTTP: gzip by default).
func storeBody(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
		return raw, nil
	case "snappy":
		return snappy.Decode(nil, raw)
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	default:
		return nil, fmt.Errorf("unexpected Content-Encoding %q", enc)
	}
}

func (s *storeSink) remoteWrite(w http.ResponseWriter, r *http.Request) {
	ts, ok := s.readRemoteWrite(w, r, "")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	for _, series := range ts {
		key := prwSeriesKey(series.labels)
		for _, smp := range series.samples {
			if math.IsNaN(smp.value) {
				s.staleNaNs++
				continue
			}
			prev, seen := s.series[key]
			if !seen {
				s.names[series.labels["__name__"]]++
			}
			if !seen || smp.ts >= prev.ts {
				s.series[key] = promSample{labels: series.labels, ts: smp.ts, value: smp.value}
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func prwSeriesKey(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%q,", k, labels[k])
	}
	return sb.String()
}

// promTimeSeries is one TimeSeries of a remote-write v1 WriteRequest: its
// labels and samples (exemplars and histograms are skipped).
type promTimeSeries struct {
	labels  map[string]string
	samples []promSample
}

// prwDecode decodes a prometheus.WriteRequest (remote write 1.0)
// by hand:
//
//	WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
//	TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
//	Label        { string name = 1; string value = 2; }
//	Sample       { double value = 1; int64 timestamp = 2; }
func prwDecode(b []byte) ([]promTimeSeries, error) {
	var out []promTimeSeries
	err := protoFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != 1 || typ != protowire.BytesType {
			return nil // metadata, or a field a later version adds
		}
		ts := promTimeSeries{labels: map[string]string{}}
		err := protoFields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			switch {
			case num == 1 && typ == protowire.BytesType:
				var name, value string
				if err := protoFields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
					if typ == protowire.BytesType {
						switch num {
						case 1:
							name = string(v)
						case 2:
							value = string(v)
						}
					}
					return nil
				}); err != nil {
					return fmt.Errorf("label: %w", err)
				}
				ts.labels[name] = value
			case num == 2 && typ == protowire.BytesType:
				var smp promSample
				if err := protoFields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
					switch {
					case num == 1 && typ == protowire.Fixed64Type:
						smp.value = math.Float64frombits(binary.LittleEndian.Uint64(v))
					case num == 2 && typ == protowire.VarintType:
						n, _ := protowire.ConsumeVarint(v)
						smp.ts = int64(n)
					}
					return nil
				}); err != nil {
					return fmt.Errorf("sample: %w", err)
				}
				ts.samples = append(ts.samples, smp)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("timeseries: %w", err)
		}
		if ts.labels["__name__"] == "" {
			return errors.New("timeseries without __name__")
		}
		out = append(out, ts)
		return nil
	})
	return out, err
}

// protoFields calls fn with every field of a protobuf message: its number, wire
// type and raw value (the payload for length-delimited fields, the encoded
// bytes otherwise).
func protoFields(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			payload, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			v, n = payload, m
		} else {
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			v, n = b[:m], m
		}
		if err := fn(num, typ, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (s *storeSink) otlpLogs(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		s.fail(w, "logs Content-Type %q, want application/x-protobuf", ct)
		return
	}
	b, err := storeBody(r)
	if err != nil {
		s.fail(w, "logs body: %v", err)
		return
	}
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		s.fail(w, "logs: %v", err)
		return
	}
	s.mu.Lock()
	s.logRequests++
	for _, rl := range req.Logs().ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				s.logs[lr.SpanID()]++
				s.logRecords++
				s.logSev[lr.SeverityNumber()]++
				s.logBodies[spanlogsBodyKind(lr.Body().Str())]++
				if v, ok := lr.Attributes().Get("spanlogs.suppressed_count"); ok {
					s.suppressed += v.Int()
				}
			}
		}
	}
	s.mu.Unlock()
	resp, err := plogotlp.NewExportResponse().MarshalProto()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

// spanlogsBodyKind tells spanlogs' default bodies apart: errors ("… failed after
// …"), slow spans ("… took …") and exceptions ("…: type: message").
func spanlogsBodyKind(b string) string {
	switch {
	case strings.Contains(b, " failed after "):
		return "errors"
	case strings.Contains(b, " took ") && strings.Contains(b, "(threshold "):
		return "slow"
	default:
		return "other: " + b
	}
}

// redSums adds up the latest value of every series of the RED calls
// counter: all of them, those with status_code STATUS_CODE_ERROR, and per
// collector_instance_id.
func (s *storeSink) redSums() (calls, errs float64, byInstance map[string]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byInstance = map[string]float64{}
	for _, p := range s.series {
		if p.labels["__name__"] != redCallsSeries {
			continue
		}
		calls += p.value
		byInstance[p.labels["collector_instance_id"]] += p.value
		if p.labels["status_code"] == "STATUS_CODE_ERROR" {
			errs += p.value
		}
	}
	return calls, errs, byInstance
}

// redLabels lists the label names of the RED calls series.
func (s *storeSink) redLabels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return callsLabelNames(s.series)
}

// callsLabelNames lists, sorted, the label names of the RED calls series
// among the given sets of series.
func callsLabelNames(sets ...map[string]promSample) []string {
	names := map[string]bool{}
	for _, series := range sets {
		for _, p := range series {
			if p.labels["__name__"] == redCallsSeries {
				for k := range p.labels {
					names[k] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(names))
}

// logSnapshot is a copy of what the logs store holds.
type logSnapshot struct {
	bySpan     map[pcommon.SpanID]int
	records    int
	requests   int
	severity   map[plog.SeverityNumber]int
	bodies     map[string]int
	suppressed int64
}

func (s *storeSink) logSnapshot() logSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := logSnapshot{bySpan: make(map[pcommon.SpanID]int, len(s.logs)), records: s.logRecords, requests: s.logRequests,
		severity: map[plog.SeverityNumber]int{}, bodies: map[string]int{}, suppressed: s.suppressed}
	for k, v := range s.logs {
		snap.bySpan[k] = v
	}
	for k, v := range s.logSev {
		snap.severity[k] = v
	}
	for k, v := range s.logBodies {
		snap.bodies[k] = v
	}
	return snap
}

func (s *storeSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("remote write: %d requests, %d series (by name %v), %d stale markers; logs: %d requests, %d records",
		s.writes, len(s.series), s.names, s.staleNaNs, s.logRequests, s.logRecords)
}
