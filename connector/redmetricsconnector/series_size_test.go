package redmetricsconnector

import (
	"testing"
	"unsafe"
)

// The memory figure in the README assumes these sizes.
func TestSeriesLayout(t *testing.T) {
	if got := unsafe.Sizeof(series{}); got > 112 {
		t.Errorf("series is %d bytes, the README says 112 (one size class)", got)
	}
	if got := unsafe.Sizeof(tableSlot{}); got != 16 {
		t.Errorf("an index slot is %d bytes, the README says 16", got)
	}
	if got := unsafe.Sizeof(pending{}); got != 80 {
		t.Errorf("a pending span is %d bytes, the README says 80", got)
	}
	if got := unsafe.Sizeof(dimVal{}); got != 32 {
		t.Errorf("dimVal is %d bytes, want 32", got)
	}
}
