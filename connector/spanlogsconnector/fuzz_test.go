package spanlogsconnector

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// FuzzTemplate: any template either fails to parse with an error naming the
// key, or renders without panicking; literal-only templates render as
// written (up to the trailing trim).
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"", "{service}", "{{x}}", "{attr:a} {resource:b}", "{", "}", "{nope}", "a {duration} b"} {
		f.Add(s)
	}
	span := ptrace.NewSpan()
	span.SetName("op")
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(baseTime))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(baseTime.Add(time.Second)))
	span.Attributes().PutStr("a", "A")
	r := &rule{name: "r"}
	f.Fuzz(func(t *testing.T, src string) {
		tpl, err := parseTemplate("body", src)
		if err != nil {
			if !strings.HasPrefix(err.Error(), `"body": `) {
				t.Fatalf("error does not name the key: %v", err)
			}
			return
		}
		out := tpl.render(nil, &renderInput{rule: r, service: "svc", resource: pcommon.NewMap(), span: span})
		if !strings.ContainsAny(src, "{}") && !strings.HasPrefix(src, string(out)) {
			t.Fatalf("literal %q rendered as %q", src, out)
		}
	})
}
