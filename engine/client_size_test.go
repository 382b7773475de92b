package engine

import (
	"testing"
	"unsafe"
)

// An idle connection's cost is dominated by a few structs; this keeps the
// engine's share from creeping up unnoticed.
func TestClientSize(t *testing.T) {
	if s := unsafe.Sizeof(client{}); s > 128 {
		t.Fatalf("client is %d bytes, want <= 128 (one size class)", s)
	}
}
